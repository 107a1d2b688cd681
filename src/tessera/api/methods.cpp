#include "tessera/api/methods.h"

#include <unistd.h>

#include <exception>
#include <filesystem>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "tessera/core/error.h"
#include "tessera/core/seeding.h"
#include "tessera/dist/process_group.h"
#include "tessera/metrics/memory_tracker.h"
#include "tessera/models/architecture.h"
#include "tessera/train/run_directory.h"

namespace tessera::api {
namespace {

std::unique_ptr<train::RunDirectory> open_run(const std::string& run_dir, const char* method,
                                              const models::ModelConfig& model,
                                              const train::TrainConfig& train) {
  if (run_dir.empty()) return nullptr;
  auto run = std::make_unique<train::RunDirectory>(run_dir, /*resume=*/false);
  run->write_json(
      "config.json",
      {{"method", method}, {"model", models::to_json(model)}, {"train", train::to_json(train)}});
  return run;
}

// A fresh directory for the workers' file store, removed when the run ends.
struct StoreDirectory {
  std::string path;
  StoreDirectory() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "tessera_sdp_store_XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr)
      throw Error("train_sdp: cannot create a store directory under " + pattern);
    path = pattern;
  }
  ~StoreDirectory() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
};

// One SDP worker: joins the group, runs, and (rank 0) writes summary.json.
dist::RunResult run_worker(const sdp::SdpSetup& setup, int64_t rank, int64_t workers,
                           const std::string& store_path, const data::TrainTest& data,
                           train::RunDirectory* run) {
  dist::GroupOptions options;
  dist::Store store = dist::Store::file(store_path, workers, options.timeout);
  dist::ProcessGroup group(store, rank, workers, options);
  sdp::SdpSetup mine = setup;
  mine.run = rank == 0 ? run : nullptr;
  if (rank != 0) mine.train.quiet = true;
  dist::RunResult result = sdp::run_sdp(mine, group, data);
  const nlohmann::json summary = dist::summarize_run(group, "sdp", result, /*data_parallel=*/true);
  if (run != nullptr) run->write_json("summary.json", summary);
  group.shutdown();
  return result;
}

}  // namespace

models::ModelConfig fit_to_data(models::ModelConfig model, const data::TrainTest& data) {
  model.input_shape = data.train.sample_shape();
  model.num_classes = data.train.num_classes;
  return models::architecture(model.arch).resolve(model);
}

train::TrainSummary train_conventional(const models::ModelConfig& model,
                                       const train::TrainConfig& train, const data::TrainTest& data,
                                       const std::string& run_dir) {
  metrics::install_memory_tracker();
  const models::ModelConfig resolved = fit_to_data(model, data);
  train::validate(train);
  const auto run = open_run(run_dir, "conventional", resolved, train);
  models::StagedModel network{nullptr};
  {  // the initial weights depend on the seed alone, as in `tessera train`
    const auto lock = lock_global_generator();
    torch::manual_seed(train.seed);
    network = models::build_model(resolved);
  }
  train::Trainer trainer(network, std::make_shared<train::Classification>(), train, run.get());
  const train::TrainSummary summary = trainer.fit(data.train, &data.test);
  if (run) run->write_json("summary.json", train::to_json(summary));
  return summary;
}

pnn::PnnResult train_pnn(const models::ModelConfig& model, const train::TrainConfig& train,
                         const pnn::PnnConfig& pnn, const data::TrainTest& data,
                         const std::string& run_dir) {
  require(!run_dir.empty(), "train_pnn: needs a run directory (for partitions and hand-overs)");
  require(pnn.schedule == pnn::PnnSchedule::Sequential,
          "train_pnn: runs the sequential schedule; the parallel one needs `tessera pnn`");
  metrics::install_memory_tracker();
  pnn::validate(pnn);
  train::validate(train);
  pnn::PnnSetup setup;
  setup.pnn = pnn;
  setup.model = fit_to_data(model, data);
  setup.train = train;
  setup.run_dir = run_dir;
  open_run(run_dir, "pnn", setup.model, train);
  setup.plan = pnn::choose_plan(setup);
  setup.pnn.cuts = setup.plan.cuts();
  return pnn::run_pnn(setup, data);
}

dist::RunResult train_sdp(sdp::SdpSetup setup, int64_t workers, const data::TrainTest& data,
                          const std::string& run_dir) {
  require(workers >= 1, "train_sdp: needs at least one worker");
  metrics::install_memory_tracker();
  setup.model = fit_to_data(setup.model, data);
  train::validate(setup.train);
  sdp::validate(setup);
  const auto run = open_run(run_dir, "sdp", setup.model, setup.train);
  const StoreDirectory store;
  std::vector<dist::RunResult> results(static_cast<size_t>(workers));
  std::vector<std::exception_ptr> errors(static_cast<size_t>(workers));
  std::vector<std::thread> threads;
  for (int64_t rank = 0; rank < workers; ++rank)
    threads.emplace_back([&, rank] {
      try {
        results[static_cast<size_t>(rank)] =
            run_worker(setup, rank, workers, store.path + "/store", data, run.get());
      } catch (...) {
        errors[static_cast<size_t>(rank)] = std::current_exception();
      }
    });
  for (auto& thread : threads) thread.join();
  for (const auto& error : errors)
    if (error) std::rethrow_exception(error);
  return results.front();
}

}  // namespace tessera::api
