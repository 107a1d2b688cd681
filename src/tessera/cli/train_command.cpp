// `tessera train`: conventional training of one model on one data set.
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "tessera/cli/commands.h"
#include "tessera/cli/dist_train.h"
#include "tessera/cli/options.h"
#include "tessera/core/error.h"
#include "tessera/data/load.h"
#include "tessera/metrics/language_model.h"
#include "tessera/metrics/memory_tracker.h"
#include "tessera/models/regularizers.h"
#include "tessera/models/staged_model.h"
#include "tessera/train/model_file.h"
#include "tessera/train/run_directory.h"
#include "tessera/train/trainer.h"

namespace tessera::cli {
namespace {

// With --resume the run's recorded arguments come first, so the new ones (e.g. a larger
// --epochs) override them.
Args with_recorded_args(const Args& args) {
  bool resume = false;
  std::string run_dir;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--resume") resume = true;
    if (args[i] == "--run-dir" && i + 1 < args.size()) run_dir = args[i + 1];
    if (args[i].rfind("--run-dir=", 0) == 0) run_dir = args[i].substr(10);
  }
  if (!resume) return args;
  require(!run_dir.empty(), "--resume needs --run-dir");
  const nlohmann::json config = train::read_json_file(run_dir + "/config.json");
  Args merged = config.at("args").get<Args>();
  merged.insert(merged.end(), args.begin(), args.end());
  return merged;
}

void print_summary(const train::TrainSummary& s, const std::string& run_dir) {
  if (s.extra.contains("test_bits_per_byte"))
    std::printf("validation %.4f bits/byte (perplexity %.3f)  |  %.0f tokens/s\n",
                s.extra["test_bits_per_byte"].get<double>(),
                s.extra["test_perplexity"].get<double>(),
                s.extra["tokens_per_second"].get<double>());
  std::printf(
      "test accuracy %.2f%%  test loss %.4f  |  %lld epochs in %.1f s (%.0f samples/s)  |  "
      "peak tensor memory %.1f MiB  |  %.3g training FLOPs\n",
      100.0 * s.test.accuracy, s.test.loss, static_cast<long long>(s.epochs), s.wall_seconds,
      s.samples_per_second, static_cast<double>(s.peak_tensor_bytes) / (1 << 20),
      static_cast<double>(s.train_flops));
  if (!run_dir.empty()) std::printf("run directory: %s\n", run_dir.c_str());
}

// --dist none: one worker.
int train_alone(const Args& args, CommonOptions& options, bool resume,
                const std::string& init_from) {
  const int64_t threads = configure_threads(options.threads);
  train::parse_device(options.train.device);

  const data::TrainTest data = load_data_for_model(options, !options.train.quiet);
  torch::manual_seed(options.train.seed);
  models::StagedModel model = models::build_model(options.model);
  if (!init_from.empty()) train::load_model_file(init_from, *model);
  if (!options.train.quiet)
    std::fprintf(stderr, "model: %s%s, %lld parameters, %d threads\n", options.model.arch.c_str(),
                 models::regularizer_summary(options.model).c_str(),
                 static_cast<long long>(models::parameter_count(*model)),
                 static_cast<int>(threads));

  std::unique_ptr<train::RunDirectory> run;
  if (!options.run_dir.empty()) {
    run = std::make_unique<train::RunDirectory>(options.run_dir, resume);
    run->write_json("config.json", {{"command", "train"},
                                    {"args", recorded_args(args)},
                                    {"threads", threads},
                                    {"model", models::to_json(model->config())},
                                    {"train", train::to_json(options.train)},
                                    {"data", options.data.name}});
  }
  train::Trainer trainer(model, std::make_shared<train::Classification>(), options.train,
                         run.get());
  if (resume) {
    const int64_t done = trainer.resume();
    if (!options.train.quiet) std::fprintf(stderr, "resumed after epoch %lld\n", (long long)done);
  }
  const train::TrainSummary summary = trainer.fit(data.train, &data.test);
  if (run) {
    nlohmann::json json = train::to_json(summary);
    json["threads"] = threads;
    json["parameters"] = models::parameter_count(*model);
    if (data.test.windows)
      json["test_unigram_bits_per_byte"] = metrics::unigram_bits(data.test.windows->tokens);
    run->write_json("summary.json", json);
  }
  print_summary(summary, options.run_dir);
  return 0;
}

}  // namespace

int train_command(const Args& raw_args) {
  const Args args = expand_config_files(with_recorded_args(raw_args));
  CommonOptions options;
  DistFlags dist_flags;
  bool resume = false;
  std::string init_from;
  auto app = make_app(
      "Train a model conventionally: on one worker, or across workers with --dist ddp|pipeline.",
      "tessera train");
  add_data_flags(*app, options);
  add_model_flags(*app, options);
  add_train_flags(*app, options);
  add_runtime_flags(*app, options);
  add_dist_flags(*app, dist_flags);
  app->add_option("--run-dir", options.run_dir, "directory for config, metrics, checkpoints");
  app->add_flag("--resume", resume, "continue the run in --run-dir from its last checkpoint");
  app->add_option(
      "--init-from", init_from,
      "start from the weights of this checkpoint or safetensors file (e.g. an assembled "
      "SDP or joined PNN model; the model flags must describe the same network), "
      "with a fresh optimizer and schedule");
  if (!parse(*app, args)) return 0;
  // Method defaults first, then the family's own (a llama's schedule is its family's choice).
  apply_measured_defaults(*app, dist_flags, options.train);
  apply_family_defaults(*app, options);
  require(init_from.empty() || !resume, "--init-from and --resume exclude each other");
  const DistMode mode = parse_dist_mode(dist_flags.mode);
  require(init_from.empty() || mode == DistMode::None,
          "--init-from is for single-worker training (--dist none)");
  options.finish();
  train::validate(options.train);
  check_dist_flags(dist_flags, options.train);
  if (mode == DistMode::Pipeline) models::require_cuttable(options.model, "the pipeline");
  if (mode != DistMode::None) return train_distributed(args, options, dist_flags, mode, resume);
  return train_alone(args, options, resume, init_from);
}

}  // namespace tessera::cli
