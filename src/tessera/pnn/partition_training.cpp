#include "tessera/pnn/partition_training.h"

#include <optional>

#include "tessera/core/seeding.h"
#include "tessera/pnn/regression_fit.h"
#include "tessera/train/checkpoint.h"
#include "tessera/train/nonfinite.h"
#include "tessera/train/run_directory.h"

namespace tessera::pnn {

std::string snapshot_path(const std::string& partition_run_dir, int64_t evaluation) {
  return partition_run_dir + "/eval" + std::to_string(evaluation) + ".pt";
}

PartitionOutcome train_partition(const PartitionJob& job, const data::Dataset& train,
                                 const data::Dataset* test) {
  train::RunDirectory run(job.run_dir, /*resume=*/false);
  // Each partition's initialisation depends on (seed, index) only, so the sequential and the
  // parallel schedule start every partition from the same weights.
  torch::manual_seed(mix_seed(job.train.seed, static_cast<uint64_t>(job.index)));
  models::StagedModel model(job.model, job.plan.begin(job.index), job.plan.end(job.index));
  const torch::Device device = train::parse_device(job.train.device);
  auto objective = std::make_shared<PartitionObjective>(job.targets, device);
  train::Trainer trainer(model, objective, job.train, &run);
  trainer.set_run_clock(job.clock);
  if (job.keep_snapshots) {
    auto evaluations = std::make_shared<int64_t>(0);
    trainer.on_evaluation([&job, model, evaluations](const train::EvalPoint& point) mutable {
      train::save_checkpoint(snapshot_path(job.run_dir, (*evaluations)++), *model, nullptr,
                             {{"model", models::to_json(model->config())},
                              {"begin_stage", model->begin_stage()},
                              {"end_stage", model->end_stage()},
                              {"epoch", point.epoch}});
    });
  }
  train::TrainSummary summary;
  try {
    summary = trainer.fit(train, test);
  } catch (const train::NonfiniteError& e) {  // --nonfinite: which partition, too
    throw train::NonfiniteError("partition " + std::to_string(job.index) + ": " + e.what());
  }
  nlohmann::json report = train::to_json(summary);
  report["partition"] = job.index;
  report["begin_stage"] = model->begin_stage();
  report["end_stage"] = model->end_stage();
  report["forward_flops"] = model->forward_flops();
  report["parameters"] = models::parameter_count(*model);
  report["objective"] = objective->is_classification()
                            ? "cross-entropy on the true labels"
                            : "regression to SIL (" + job.targets.loss + ")";
  report["inputs"] = job.targets.input_sil.defined() ? "SIL + noise" : "data";
  // A partition regressing SIL that collapsed would make the joined model guess: say so now.
  std::optional<RegressionFit> fit;
  if (job.targets.target_sil.defined()) {
    fit = measure_regression_fit(model, *objective, job.targets.target_sil,
                                 test != nullptr ? *test : train, device);
    report["regression_fit"] = to_json(*fit);
  }
  run.write_json("summary.json", report);
  if (fit) check_regression_fit(*fit, job.index, job.targets.loss);
  return {model, report};
}

}  // namespace tessera::pnn
