// `tessera pnn`: partitioned training with synthetic intermediate labels, optionally compared with
// conventional training on the same data, seed and epoch budget (--compare).
#include <cstdio>
#include <sstream>

#include "tessera/cli/commands.h"
#include "tessera/cli/options.h"
#include "tessera/core/error.h"
#include "tessera/data/load.h"
#include "tessera/dist/local_launcher.h"
#include "tessera/models/architecture.h"
#include "tessera/models/regularizers.h"
#include "tessera/models/staged_model.h"
#include "tessera/pnn/comparison.h"
#include "tessera/pnn/model_parallel_baseline.h"
#include "tessera/pnn/pnn_run.h"
#include "tessera/train/run_directory.h"

namespace tessera::cli {
namespace {

// Steps of the model-parallel baseline measured by --compare (its bytes per step are the same in
// every step of a fixed batch size).
constexpr int64_t kModelParallelSteps = 8;

struct PnnOptions {
  std::string cuts;
  std::string schedules = "sequential";
  std::string partition_epochs;
  std::string partition_batch_sizes;
  std::string partition_lrs;
  bool compare = false;
  int64_t worker = -1;  // >= 0: this process is the parallel schedule's worker for a partition
};

void add_pnn_flags(CLI::App& app, pnn::PnnConfig& config, PnnOptions& o) {
  app.add_option("--cuts", o.cuts, "stage indices to cut at, comma-separated (e.g. 3)");
  app.add_option("--partitions", config.partitions,
                 "without --cuts: this many partitions, balanced by measured memory")
      ->capture_default_str();
  app.add_option("--pnn-schedule", o.schedules, "sequential, parallel, or both comma-separated")
      ->capture_default_str();
  app.add_option("--sil", config.sil.generator, "SIL generator: uniform, gaussian, orthogonal")
      ->capture_default_str();
  app.add_option("--sil-kappa", config.sil.kappa, "SIL scale kappa")->capture_default_str();
  app.add_option("--sil-seed", config.sil.seed, "SIL seed (default: --seed)");
  app.add_option("--sil-loss", config.sil_loss, "regression loss to SIL: mse, cosine")
      ->capture_default_str();
  app.add_option("--sil-noise", config.sil_noise,
                 "parallel: std of the noise on a later partition's SIL inputs")
      ->capture_default_str();
  app.add_option("--partition-epochs", o.partition_epochs, "epochs per partition, comma-separated");
  app.add_option("--partition-batch-size", o.partition_batch_sizes,
                 "batch size per partition, comma-separated");
  app.add_option("--partition-lr", o.partition_lrs, "learning rate per partition, comma-separated");
  app.add_option("--recovery-epochs", config.recovery_epochs,
                 "end-to-end epochs of the joined model")
      ->capture_default_str();
  app.add_option("--recovery-lr", config.recovery_lr, "recovery learning rate (0: lr / 10)")
      ->capture_default_str();
  app.add_option("--handover", config.handover,
                 "sequential hand-over: memory, file, auto (file if larger than half the free "
                 "memory)")
      ->capture_default_str();
  app.add_flag("--compare", o.compare,
               "also train conventionally with the same budget and print a comparison table");
  app.add_option("--pnn-worker", o.worker, "(internal) run one partition of the parallel schedule")
      ->group("");
}

std::vector<std::string> split(const std::string& text) {
  std::vector<std::string> items;
  std::stringstream stream(text);
  std::string item;
  while (std::getline(stream, item, ','))
    if (!item.empty()) items.push_back(item);
  return items;
}

// An optional list flag: empty when not given.
std::vector<int64_t> optional_int_list(const std::string& text, const std::string& flag) {
  return text.empty() ? std::vector<int64_t>{} : parse_int_list(text, flag);
}
std::vector<double> optional_double_list(const std::string& text, const std::string& flag) {
  return text.empty() ? std::vector<double>{} : parse_double_list(text, flag);
}

std::string join_ints(const std::vector<int64_t>& values) {
  std::string text;
  for (const int64_t v : values) text += (text.empty() ? "" : ",") + std::to_string(v);
  return text;
}

// The arguments a parallel worker gets: ours, minus what only the coordinator does.
Args worker_args(const Args& args) {
  Args forwarded;
  for (const auto& a : args)
    if (a != "--compare") forwarded.push_back(a);
  return forwarded;
}

train::TrainSummary train_conventionally(const CommonOptions& options, const data::TrainTest& data,
                                         const std::string& dir) {
  torch::manual_seed(options.train.seed);
  models::StagedModel model = models::build_model(options.model);
  train::RunDirectory run(dir, /*resume=*/false);
  train::Trainer trainer(model, std::make_shared<train::Classification>(), options.train, &run);
  const train::TrainSummary summary = trainer.fit(data.train, &data.test);
  nlohmann::json json = train::to_json(summary);
  json["forward_flops"] = model->forward_flops();
  run.write_json("summary.json", json);
  return summary;
}

}  // namespace

int pnn_command(const Args& raw_args) {
  const Args args = expand_config_files(raw_args);
  CommonOptions options;
  pnn::PnnConfig config;
  PnnOptions pnn_options;
  auto app = make_app(
      "Partitioned training with synthetic intermediate labels (PNN/SIL): cut the model, train "
      "the partitions without exchanging activations, join them, run recovery epochs.",
      "tessera pnn");
  add_data_flags(*app, options);
  add_model_flags(*app, options);
  add_train_flags(*app, options);
  add_runtime_flags(*app, options);
  add_pnn_flags(*app, config, pnn_options);
  app->add_option("--run-dir", options.run_dir,
                  "directory for the partitions, SILs, joined checkpoint and summaries");
  if (!parse(*app, args)) return 0;
  apply_family_defaults(*app, options);
  options.finish();
  train::validate(options.train);
  if (app->count("--sil-seed") == 0) config.sil.seed = options.train.seed;
  // Evaluation in training-size batches, for every run here: otherwise a diagnostic pass over the
  // test set (e.g. a partition's regression loss on 1000-sample batches) can set a worker's peak.
  if (app->count("--eval-batch-size") == 0)
    options.train.eval_batch_size = options.train.batch_size;
  config.cuts = optional_int_list(pnn_options.cuts, "--cuts");
  config.partition_epochs = optional_int_list(pnn_options.partition_epochs, "--partition-epochs");
  config.partition_batch_sizes =
      optional_int_list(pnn_options.partition_batch_sizes, "--partition-batch-size");
  config.partition_lrs = optional_double_list(pnn_options.partition_lrs, "--partition-lr");
  const std::vector<std::string> schedules = split(pnn_options.schedules);
  require(!schedules.empty(), "--pnn-schedule needs sequential and/or parallel");
  for (const auto& schedule : schedules) {
    config.schedule = schedule;
    pnn::validate(config);
  }
  require(!options.run_dir.empty(),
          "tessera pnn needs --run-dir (partitions, SILs and the joined model are written there)");
  const int64_t threads = configure_threads(options.threads);
  train::parse_device(options.train.device);
  const bool worker = pnn_options.worker >= 0;

  const data::TrainTest data = load_data_for_model(options, !options.train.quiet && !worker);
  options.model = models::architecture(options.model.arch).resolve(options.model);

  pnn::PnnSetup setup;
  setup.pnn = config;
  setup.model = options.model;
  setup.train = options.train;
  if (worker) {
    setup.pnn.schedule = "parallel";
    setup.run_dir = options.run_dir;
    require(!config.cuts.empty(), "--pnn-worker needs --cuts");
    pnn::run_parallel_worker(setup, pnn::plan_from_cuts(setup.model, config.cuts),
                             pnn_options.worker, data);
    return 0;
  }

  std::vector<int64_t> stage_bytes;
  const pnn::PartitionPlan plan = pnn::choose_plan(setup, &stage_bytes);
  setup.pnn.cuts = plan.cuts();
  if (!options.train.quiet)
    std::fprintf(stderr, "model: %s%s, %lld stages, %d threads; plan (cuts %s):\n%s",
                 options.model.arch.c_str(), models::regularizer_summary(options.model).c_str(),
                 static_cast<long long>(plan.boundaries.back()), static_cast<int>(threads),
                 join_ints(plan.cuts()).c_str(),
                 pnn::describe(plan, setup.model, stage_bytes).c_str());

  train::RunDirectory run(options.run_dir, /*resume=*/false);
  run.write_json("config.json", {{"command", "pnn"},
                                 {"args", args},
                                 {"threads", threads},
                                 {"model", models::to_json(setup.model)},
                                 {"train", train::to_json(options.train)},
                                 {"pnn", pnn::to_json(setup.pnn)},
                                 {"data", options.data.name}});

  std::vector<pnn::ComparisonRow> rows;
  double target = 0.0;
  int64_t conventional_steps = 0;
  if (pnn_options.compare) {
    if (!options.train.quiet) std::fprintf(stderr, "== conventional training ==\n");
    const train::TrainSummary conventional =
        train_conventionally(options, data, options.run_dir + "/conventional");
    target = 0.9 * conventional.test.accuracy;
    conventional_steps = conventional.steps;
    rows.push_back(pnn::conventional_row(
        conventional, models::build_model(options.model)->forward_flops(), target));
  }
  const std::string executable = dist::current_executable();
  nlohmann::json results = nlohmann::json::object();
  for (const auto& schedule : schedules) {
    if (!options.train.quiet) std::fprintf(stderr, "== pnn %s ==\n", schedule.c_str());
    setup.pnn.schedule = schedule;
    setup.run_dir = options.run_dir + "/" + schedule;
    setup.worker_command = [&](int64_t partition, const pnn::PartitionPlan& worker_plan) {
      dist::WorkerCommand command;
      command.argv = {executable, "pnn"};
      for (const auto& a : worker_args(args)) command.argv.push_back(a);
      command.argv.push_back("--run-dir=" + setup.run_dir);
      command.argv.push_back("--cuts=" + join_ints(worker_plan.cuts()));
      command.argv.push_back("--pnn-worker=" + std::to_string(partition));
      command.env = {{"LOCAL_WORLD_SIZE", std::to_string(worker_plan.size())}};
      return command;
    };
    const pnn::PnnResult result = pnn::run_pnn(setup, data);
    results[schedule] = pnn::to_json(result);
    rows.push_back(pnn::pnn_row(result, target));
    std::printf(
        "pnn %s: joined %.2f%%, after %lld recovery epoch(s) %.2f%%  |  %.3g training "
        "FLOPs  |  largest partition peak %.1f MiB  |  %.1f s\n",
        schedule.c_str(), 100.0 * result.joined.accuracy,
        static_cast<long long>(setup.pnn.recovery_epochs), 100.0 * result.recovered.accuracy,
        static_cast<double>(result.train_flops),
        static_cast<double>(result.max_partition_peak_tensor_bytes) / (1 << 20),
        result.wall_seconds);
  }
  nlohmann::json summary = {{"pnn", results}};
  if (pnn_options.compare) {
    nlohmann::json table = nlohmann::json::array();
    for (const auto& row : rows) table.push_back(pnn::to_json(row));
    summary["comparison"] = table;
    summary["target_accuracy"] = target;
    std::printf("\n%s", pnn::format_table(rows, target).c_str());
    // The bandwidth baseline: a pipeline cut at the same stages, measured over a few steps.
    const pnn::ModelParallelBytes model_parallel = pnn::measure_model_parallel_bytes(
        setup.model, plan, options.train, data.train, kModelParallelSteps,
        options.run_dir + "/model-parallel-scratch");
    const int64_t total = model_parallel.bytes_per_step * conventional_steps;
    summary["model_parallel"] = pnn::to_json(model_parallel);
    summary["model_parallel"]["bytes_over_conventional_steps"] = total;
    std::printf(
        "model parallel (a pipeline cut at the same stages, measured over %lld steps): %lld bytes "
        "per step, %.1f MiB over the %lld steps of conventional training\n",
        static_cast<long long>(model_parallel.steps),
        static_cast<long long>(model_parallel.bytes_per_step),
        static_cast<double>(total) / (1 << 20), static_cast<long long>(conventional_steps));
  }
  run.write_json("summary.json", summary);
  std::printf("run directory: %s\n", options.run_dir.c_str());
  return 0;
}

}  // namespace tessera::cli
