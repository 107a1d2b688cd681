// `tessera pnn`: partitioned training with synthetic intermediate labels, optionally compared with
// conventional training on the same data, seed and epoch budget (--compare); and `tessera
// pnn-worker`, the hidden subcommand the parallel schedule starts for each partition.
#include <cstdio>
#include <optional>
#include <sstream>

#include "tessera/cli/checked_flags.h"
#include "tessera/cli/commands.h"
#include "tessera/cli/options.h"
#include "tessera/core/error.h"
#include "tessera/data/load.h"
#include "tessera/dist/local_launcher.h"
#include "tessera/models/architecture.h"
#include "tessera/models/regularizers.h"
#include "tessera/models/staged_model.h"
#include "tessera/pnn/comparison.h"
#include "tessera/pnn/pnn_run.h"
#include "tessera/report/report.h"
#include "tessera/train/run_directory.h"

namespace tessera::cli {
namespace {

// The flags of `tessera pnn` and of its workers, as given.
struct PnnFlags {
  CommonOptions options;
  pnn::PnnConfig config;
  std::string cuts;
  std::string schedules = "sequential";
  std::string partition_epochs;
  std::string partition_batch_sizes;
  std::string partition_lrs;
};

void add_pnn_flags(CLI::App& app, pnn::PnnConfig& config, PnnFlags& o) {
  app.add_option("--cuts", o.cuts, "stage indices to cut at, comma-separated (e.g. 3)")
      ->check(list_of(integer_in(1, 1 << 16)));
  app.add_option("--partitions", config.partitions,
                 "without --cuts: this many partitions, balanced by measured memory")
      ->capture_default_str()
      ->check(integer_in(2, 1 << 16));
  app.add_option("--pnn-schedule", o.schedules, "sequential, parallel, or both comma-separated")
      ->capture_default_str();
  app.add_option("--sil", config.sil.generator, "SIL generator: uniform, gaussian, orthogonal")
      ->capture_default_str();
  app.add_option("--sil-kappa", config.sil.kappa, "SIL scale kappa")
      ->capture_default_str()
      ->check(positive_real());
  app.add_option("--sil-seed", config.sil.seed, "SIL seed (default: --seed)")->check(seed_value());
  app.add_option("--sil-space", config.sil_space.kind,
                 "space the SIL regression happens in: full (the cut's activation), pooled "
                 "(each channel averaged to size x size cells), projected (a seeded random "
                 "projection to size dimensions)")
      ->capture_default_str();
  app.add_option("--sil-space-size", config.sil_space.size,
                 "pooled: cells per side (must divide the cut's height and width); projected: "
                 "dimensions")
      ->check(integer_in(1, 1 << 30));
  app.add_option("--sil-loss", config.sil_loss, "regression loss to SIL: mse, cosine")
      ->capture_default_str();
  app.add_option("--sil-noise", config.sil_noise,
                 "parallel: std of the noise on a later partition's SIL inputs")
      ->capture_default_str()
      ->check(non_negative_real());
  app.add_option("--partition-epochs", o.partition_epochs, "epochs per partition, comma-separated")
      ->check(list_of(integer_in(0, 1000000)));
  app.add_option("--partition-batch-size", o.partition_batch_sizes,
                 "batch size per partition, comma-separated")
      ->check(list_of(integer_in(1)));
  app.add_option("--partition-lr", o.partition_lrs, "learning rate per partition, comma-separated")
      ->check(list_of(positive_real()));
  app.add_option("--recovery-epochs", config.recovery_epochs,
                 "end-to-end epochs of the joined model")
      ->capture_default_str()
      ->check(integer_in(0, 1000000));
  app.add_option("--recovery-lr", config.recovery_lr, "recovery learning rate (0: lr / 10)")
      ->capture_default_str()
      ->check(non_negative_real());
  app.add_option("--pnn-bn-batches", config.bn_batches,
                 "re-estimate the joined model's batch-norm statistics over this many training "
                 "batches before evaluating or recovering it (0: keep the partitions')")
      ->capture_default_str();
  app.add_option("--handover", config.handover,
                 "sequential hand-over: memory, file, auto (file if larger than half the free "
                 "memory)")
      ->capture_default_str();
}

std::unique_ptr<CLI::App> make_pnn_app(PnnFlags& flags, const std::string& description,
                                       const std::string& name) {
  auto app = make_app(description, name);
  add_data_flags(*app, flags.options);
  add_model_flags(*app, flags.options);
  add_train_flags(*app, flags.options);
  add_runtime_flags(*app, flags.options);
  add_pnn_flags(*app, flags.config, flags);
  app->add_option("--run-dir", flags.options.run_dir,
                  "directory for the partitions, SILs, joined checkpoint and summaries");
  return app;
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

// After parsing: the list flags, the defaults that follow other flags, and validation. Returns
// the schedules to run.
std::vector<std::string> finish(const CLI::App& app, PnnFlags& flags) {
  CommonOptions& options = flags.options;
  pnn::PnnConfig& config = flags.config;
  apply_family_defaults(app, options);
  options.finish();
  train::validate(options.train);
  models::require_cuttable(options.model, "PNN");
  if (app.count("--sil-seed") == 0) config.sil.seed = options.train.seed;
  // Evaluation in training-size batches, for every run here: otherwise a diagnostic pass over the
  // test set (e.g. a partition's regression loss on 1000-sample batches) can set a worker's peak.
  if (app.count("--eval-batch-size") == 0) options.train.eval_batch_size = options.train.batch_size;
  config.cuts = optional_int_list(flags.cuts, "--cuts");
  config.partition_epochs = optional_int_list(flags.partition_epochs, "--partition-epochs");
  config.partition_batch_sizes =
      optional_int_list(flags.partition_batch_sizes, "--partition-batch-size");
  config.partition_lrs = optional_double_list(flags.partition_lrs, "--partition-lr");
  const std::vector<std::string> schedules = split(flags.schedules);
  require(!schedules.empty(), "--pnn-schedule needs sequential and/or parallel");
  for (const auto& schedule : schedules) pnn::parse_pnn_schedule(schedule);
  pnn::validate(config);
  require(!options.run_dir.empty(),
          "tessera pnn needs --run-dir (partitions, SILs and the joined model are written there)");
  return schedules;
}

// The run's settings once the data set is loaded (the model fitted to it); no plan yet.
pnn::PnnSetup make_setup(PnnFlags& flags) {
  flags.options.model = models::architecture(flags.options.model.arch).resolve(flags.options.model);
  pnn::PnnSetup setup;
  setup.pnn = flags.config;
  setup.model = flags.options.model;
  setup.train = flags.options.train;
  return setup;
}

// The plan, decided once for every schedule (and handed to the parallel workers in plan.json).
pnn::PartitionPlan decide_plan(pnn::PnnSetup& setup, int64_t threads) {
  std::vector<int64_t> stage_bytes;
  const pnn::PartitionPlan plan = pnn::choose_plan(setup, &stage_bytes);
  setup.pnn.cuts = plan.cuts();
  if (!setup.train.quiet)
    std::fprintf(stderr, "model: %s%s, %lld stages, %d threads; plan (cuts %s):\n%s",
                 setup.model.arch.c_str(), models::regularizer_summary(setup.model).c_str(),
                 static_cast<long long>(plan.boundaries.back()), static_cast<int>(threads),
                 join_ints(plan.cuts()).c_str(),
                 pnn::describe(plan, setup.model, stage_bytes).c_str());
  return plan;
}

// The command that starts partition `partition`'s worker of the parallel schedule in `run_dir`:
// this binary's hidden `pnn-worker` with our flags (but --compare).
dist::WorkerCommand worker_command(const Args& args, const std::string& run_dir, int64_t partition,
                                   int64_t partitions) {
  dist::WorkerCommand command;
  command.argv = {dist::current_executable(), "pnn-worker"};
  for (const auto& a : args)
    if (a != "--compare") command.argv.push_back(a);
  command.argv.push_back("--run-dir=" + run_dir);
  command.argv.push_back("--partition=" + std::to_string(partition));
  command.env = {{"LOCAL_WORLD_SIZE", std::to_string(partitions)}};
  return command;
}

// Runs each schedule in <run-dir>/<schedule>, adds its row to the comparison, prints its line.
nlohmann::json run_schedules(const Args& args, const std::vector<std::string>& schedules,
                             pnn::PnnSetup setup, const data::TrainTest& data,
                             const std::string& run_dir, pnn::Comparison* comparison) {
  nlohmann::json results = nlohmann::json::object();
  for (const auto& schedule : schedules) {
    if (!setup.train.quiet) std::fprintf(stderr, "== pnn %s ==\n", schedule.c_str());
    setup.pnn.schedule = pnn::parse_pnn_schedule(schedule);
    setup.run_dir = run_dir + "/" + schedule;
    setup.worker_command = [&args, &setup](int64_t partition) {
      return worker_command(args, setup.run_dir, partition, setup.plan.size());
    };
    const pnn::PnnResult result = pnn::run_pnn(setup, data);
    results[schedule] = pnn::to_json(result);
    if (comparison) comparison->rows.push_back(pnn::pnn_row(result, comparison->target));
    std::printf(
        "pnn %s: joined %.2f%%, after %lld recovery epoch(s) %.2f%%  |  %.3g training "
        "FLOPs  |  largest partition peak %.1f MiB  |  %.1f s\n",
        schedule.c_str(), 100.0 * result.joined.accuracy,
        static_cast<long long>(setup.pnn.recovery_epochs), 100.0 * result.recovered.accuracy,
        static_cast<double>(result.train_flops),
        static_cast<double>(result.max_partition_peak_tensor_bytes) / (1 << 20),
        result.wall_seconds);
  }
  return results;
}

void print_comparison(const pnn::Comparison& comparison) {
  std::printf("\n%s", pnn::format_table(comparison.rows, comparison.target).c_str());
  const pnn::ModelParallelBytes& model_parallel = comparison.model_parallel;
  std::printf(
      "model parallel (a pipeline cut at the same stages, measured over %lld steps): %lld bytes "
      "per step, %.1f MiB over the %lld steps of conventional training\n",
      static_cast<long long>(model_parallel.steps),
      static_cast<long long>(model_parallel.bytes_per_step),
      static_cast<double>(model_parallel.bytes_per_step * comparison.conventional_steps) /
          (1 << 20),
      static_cast<long long>(comparison.conventional_steps));
}

}  // namespace

int pnn_command(const Args& raw_args) {
  const Args args = expand_config_files(raw_args);
  PnnFlags flags;
  bool compare = false;
  auto app = make_pnn_app(
      flags,
      "Partitioned training with synthetic intermediate labels (PNN/SIL): cut the model, train "
      "the partitions without exchanging activations, join them, run recovery epochs.",
      "tessera pnn");
  app->add_flag("--compare", compare,
                "also train conventionally with the same budget and print a comparison table");
  if (!parse(*app, args)) return 0;
  const std::vector<std::string> schedules = finish(*app, flags);
  const CommonOptions& options = flags.options;
  const int64_t threads = configure_threads(options.threads);
  train::parse_device(options.train.device);
  const data::TrainTest data = load_data_for_model(flags.options, !options.train.quiet);
  pnn::PnnSetup setup = make_setup(flags);
  setup.plan = decide_plan(setup, threads);

  train::RunDirectory run(options.run_dir, /*resume=*/false);
  run.write_json("config.json", {{"command", "pnn"},
                                 {"args", args},
                                 {"threads", threads},
                                 {"model", models::to_json(setup.model)},
                                 {"train", train::to_json(options.train)},
                                 {"pnn", pnn::to_json(setup.pnn)},
                                 {"data", options.data.name}});
  std::optional<pnn::Comparison> comparison;
  if (compare) {
    if (!options.train.quiet) std::fprintf(stderr, "== conventional training ==\n");
    comparison = pnn::compare_with_conventional(setup, data, options.run_dir + "/conventional");
  }
  nlohmann::json summary = {{"pnn", run_schedules(args, schedules, setup, data, options.run_dir,
                                                  comparison ? &*comparison : nullptr)}};
  if (comparison) {
    pnn::measure_model_parallel(*comparison, setup, data.train,
                                options.run_dir + "/model-parallel-scratch");
    print_comparison(*comparison);
    summary.update(pnn::to_json(*comparison));
  }
  summary["precision"] = train::precision_name(options.train.precision);
  run.write_json("summary.json", summary);
  std::printf("run directory: %s\n", options.run_dir.c_str());
  if (comparison) {
    // The comparison's curves and table as a page (tessera report on this run directory).
    const std::string page = options.run_dir + "/report.html";
    report::write_report({options.run_dir}, page);
    std::printf("report: %s\n", page.c_str());
  }
  return 0;
}

int pnn_worker_command(const Args& raw_args) {
  const Args args = expand_config_files(raw_args);
  PnnFlags flags;
  int64_t partition = -1;
  auto app = make_pnn_app(flags, "(internal) one partition of `tessera pnn`'s parallel schedule",
                          "tessera pnn-worker");
  app->add_option("--partition", partition, "the partition to train")
      ->required()
      ->check(integer_in(0, 1 << 16));
  if (!parse(*app, args)) return 0;
  finish(*app, flags);
  configure_threads(flags.options.threads);
  train::parse_device(flags.options.train.device);
  const data::TrainTest data = load_data_for_model(flags.options, /*verbose=*/false);
  pnn::PnnSetup setup = make_setup(flags);
  setup.pnn.schedule = pnn::PnnSchedule::Parallel;
  setup.run_dir = flags.options.run_dir;
  // The plan the coordinator decided, not one of our own.
  setup.plan = pnn::plan_from_json(train::read_json_file(pnn::plan_path(setup.run_dir)));
  pnn::run_parallel_worker(setup, partition, data);
  return 0;
}

}  // namespace tessera::cli
