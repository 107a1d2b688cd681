#include "tessera/dist/ddp_run.h"

#include "tessera/core/seeding.h"
#include "tessera/dist/data_parallel.h"
#include "tessera/models/staged_model.h"

namespace tessera::dist {

RunResult run_ddp(const DdpSetup& setup, ProcessGroup& group, const data::TrainTest& data) {
  train::TrainConfig config = setup.train;
  config.rank = group.rank();
  config.world_size = group.size();
  models::StagedModel model(nullptr);
  {
    const auto rng_lock = lock_global_generator();
    torch::manual_seed(config.seed);
    model = models::build_model(setup.model);
  }
  train::Trainer trainer(model, std::make_shared<train::Classification>(), config, setup.run);
  auto ddp = std::make_shared<DataParallel>(group, setup.reducer);
  trainer.set_worker_sync(ddp);
  // Every worker loads the same checkpoint; start() then verifies that they agree.
  if (!setup.resume_from.empty()) trainer.resume(setup.resume_from);
  RunResult result;
  result.summary = trainer.fit(data.train, group.rank() == 0 ? &data.test : nullptr);
  const ReducerStats& stats = ddp->reducer()->stats();
  result.details = {{"buckets", stats.buckets},
                    {"bucket_bytes", setup.reducer.bucket_bytes},
                    {"overlap", setup.reducer.overlap},
                    {"comm_precision", setup.reducer.bf16_comm ? "bf16" : "fp32"},
                    {"exposed_comm_seconds", stats.wait_seconds}};
  result.step_comm_bytes = stats.comm_bytes;
  return result;
}

}  // namespace tessera::dist
