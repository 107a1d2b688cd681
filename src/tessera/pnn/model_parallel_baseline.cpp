#include "tessera/pnn/model_parallel_baseline.h"

#include <exception>
#include <filesystem>
#include <thread>
#include <vector>

#include "tessera/core/error.h"
#include "tessera/dist/pipeline.h"
#include "tessera/dist/process_group.h"
#include "tessera/train/objective.h"

namespace tessera::pnn {

ModelParallelBytes measure_model_parallel_bytes(const models::ModelConfig& model,
                                                const PartitionPlan& plan, train::TrainConfig train,
                                                const data::Dataset& train_set, int64_t steps,
                                                const std::string& scratch_dir) {
  require(steps >= 1, "model-parallel baseline: at least one step");
  // Token windows are cut into stored samples first.
  const data::Dataset source = train_set.windows ? data::fixed_windows(train_set) : train_set;
  const int64_t samples = std::min(source.size(), steps * train.batch_size);
  const data::Dataset subset{source.name, source.inputs.narrow(0, 0, samples),
                             source.labels.narrow(0, 0, samples), source.num_classes};
  train.epochs = 1;
  train.device = "cpu";
  train.quiet = true;
  train.checkpoint_every = 0;
  train.evals_per_epoch = 1;
  std::vector<std::pair<int64_t, int64_t>> ranges;
  for (int64_t p = 0; p < plan.size(); ++p) ranges.emplace_back(plan.begin(p), plan.end(p));

  std::filesystem::remove_all(scratch_dir);
  std::filesystem::create_directories(scratch_dir);
  const std::string store_path = scratch_dir + "/store";
  const int64_t ranks = plan.size();
  std::vector<int64_t> sent(static_cast<size_t>(ranks), 0);
  std::vector<int64_t> done_steps(static_cast<size_t>(ranks), 0);
  std::vector<std::exception_ptr> errors(static_cast<size_t>(ranks));
  std::vector<std::thread> threads;
  for (int64_t rank = 0; rank < ranks; ++rank) {
    threads.emplace_back([&, rank] {
      try {
        dist::GroupOptions options;
        options.timeout = std::chrono::seconds(120);
        dist::ProcessGroup group(dist::Store::file(store_path, ranks, options.timeout), rank, ranks,
                                 options);
        dist::PipelineTrainer pipeline(group, model, std::make_shared<train::Classification>(),
                                       train, /*micro_batches=*/1, nullptr, ranges);
        done_steps[static_cast<size_t>(rank)] = pipeline.fit(subset, nullptr).steps;
        sent[static_cast<size_t>(rank)] = pipeline.step_comm_bytes();
        group.shutdown();
      } catch (...) {
        errors[static_cast<size_t>(rank)] = std::current_exception();
      }
    });
  }
  for (auto& t : threads) t.join();
  std::filesystem::remove_all(scratch_dir);
  for (const auto& e : errors)
    if (e) std::rethrow_exception(e);

  ModelParallelBytes result;
  result.steps = done_steps[0];
  int64_t total = 0;
  for (const int64_t b : sent) total += b;
  result.bytes_per_step = result.steps > 0 ? total / result.steps : 0;
  return result;
}

nlohmann::json to_json(const ModelParallelBytes& bytes) {
  return {{"steps_measured", bytes.steps}, {"bytes_per_step", bytes.bytes_per_step}};
}

}  // namespace tessera::pnn
