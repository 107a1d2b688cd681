#include "tessera/cli/dist_train.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "tessera/core/error.h"
#include "tessera/data/load.h"
#include "tessera/dist/ddp_run.h"
#include "tessera/dist/pipeline_run.h"
#include "tessera/dist/rendezvous.h"
#include "tessera/dist/restart_checkpoint.h"
#include "tessera/metrics/progress_board.h"
#include "tessera/sdp/sdp_run.h"
#include "tessera/train/checkpoint.h"
#include "tessera/train/run_directory.h"

namespace tessera::cli {
namespace {

// The SDP settings of the flags, checked before any worker joins the group (model, training
// settings and run directory come later).
sdp::SdpSetup sdp_setup(const DistFlags& flags) {
  sdp::SdpSetup setup;
  setup.level = sdp::parse_level(flags.sdp_level);
  setup.coverage = flags.coverage;
  setup.masking = sdp::parse_masking(flags.sdp_masking);
  setup.sync = sdp::parse_sync_mode(flags.sdp_sync);
  setup.rescale = flags.sdp_rescale;
  setup.rescale_factor = flags.sdp_rescale_factor;
  setup.bn_batches = flags.sdp_bn_batches;
  setup.redraw_epochs = flags.sdp_redraw_epochs;
  setup.redraw_steps = flags.sdp_redraw_steps;
  setup.evaluation = sdp::parse_evaluation(flags.sdp_eval);
  setup.bf16_comm = flags.comm_precision == "bf16";
  sdp::validate(setup);
  return setup;
}

// How this worker starts: afresh, or from the run's checkpoints (--resume, or a restart by
// `tessera launch --max-restarts` once a checkpoint exists).
struct StartPoint {
  bool resume = false;
  bool restartable = false;  // SDP and the pipeline keep per-worker checkpoints
  int64_t step = 0;          // the checkpoint's step when resuming
};

StartPoint start_point(DistMode mode, const CommonOptions& options, bool resume, int64_t rank) {
  StartPoint start;
  const std::string& dir = options.run_dir;
  start.restartable = !dir.empty() && (options.train.checkpoint_every_steps > 0 ||
                                       dist::restarts_allowed() || resume);
  const bool restarted = dist::restart_count() > 0;
  if (!resume && !restarted) return start;
  if (mode == DistMode::Ddp) {
    const std::string file = dir + "/checkpoint.pt";
    start.resume = resume || (restarted && !dir.empty() && std::filesystem::exists(file));
    if (start.resume) start.step = train::read_checkpoint_meta(file).at("step").get<int64_t>();
    return start;
  }
  const std::string file = dir.empty() ? "" : dist::latest_worker_checkpoint(dir, rank);
  require(!resume || !file.empty(),
          std::string("--resume with --dist ") + mode_name(mode) + ": " + dir +
              "/restart holds no complete set of worker checkpoints (they are taken with "
              "--checkpoint-every-steps, or every --checkpoint-every epochs under tessera launch "
              "--max-restarts)");
  start.resume = resume || (restarted && !file.empty());
  if (start.resume && !file.empty())
    start.step = train::read_checkpoint_meta(file).at("step").get<int64_t>();
  return start;
}

// Runs this worker's part of the method.
dist::RunResult run(DistMode mode, const CommonOptions& options, const DistFlags& flags,
                    const sdp::SdpSetup& sdp_settings, const StartPoint& start,
                    dist::ProcessGroup& group, const data::TrainTest& data,
                    train::RunDirectory* run_dir) {
  const std::string restart_dir = start.restartable ? options.run_dir : "";
  if (mode == DistMode::Sdp) {
    sdp::SdpSetup setup = sdp_settings;
    setup.model = options.model;
    setup.train = options.train;
    setup.run = run_dir;
    setup.restart_dir = restart_dir;
    setup.subnet_dir = options.run_dir;
    setup.resume = start.resume;
    return sdp::run_sdp(setup, group, data);
  }
  if (mode == DistMode::Pipeline)
    return dist::run_pipeline(
        {options.model, options.train, flags.micro_batches, run_dir, restart_dir, start.resume},
        group, data);
  const bool resume = start.resume;
  dist::DdpSetup setup{options.model, options.train, {}, {}, run_dir};
  setup.reducer.bucket_bytes = static_cast<int64_t>(flags.bucket_mb * (1 << 20));
  setup.reducer.overlap = !flags.no_overlap;
  setup.reducer.bf16_comm = flags.comm_precision == "bf16";
  if (resume) setup.resume_from = options.run_dir + "/checkpoint.pt";
  return dist::run_ddp(setup, group, data);
}

// Rank 0's run directory, with config.json.
std::unique_ptr<train::RunDirectory> open_run_directory(const Args& args,
                                                        const CommonOptions& options, DistMode mode,
                                                        int64_t threads, int64_t world_size,
                                                        bool resume) {
  auto run = std::make_unique<train::RunDirectory>(options.run_dir, resume);
  run->write_json("config.json", {{"command", "train"},
                                  {"args", recorded_args(args)},
                                  {"threads", threads},
                                  {"dist", mode_name(mode)},
                                  {"world_size", world_size},
                                  {"model", models::to_json(options.model)},
                                  {"train", train::to_json(options.train)},
                                  {"data", options.data.name}});
  return run;
}

void print_result(const nlohmann::json& json, DistMode mode, const std::string& run_dir) {
  std::printf(
      "test accuracy %.2f%%  test loss %.4f  |  %lld epochs in %.1f s  |  %s on %lld workers: "
      "%.0f samples/s  |  %.3g bytes sent per step\n",
      100.0 * json["test_accuracy"].get<double>(), json["test_loss"].get<double>(),
      static_cast<long long>(json["epochs"].get<int64_t>()), json["wall_seconds"].get<double>(),
      mode_name(mode), static_cast<long long>(json["world_size"].get<int64_t>()),
      json["total_samples_per_second"].get<double>(),
      static_cast<double>(json["comm_bytes_per_step"].get<int64_t>()));
  if (!run_dir.empty()) std::printf("run directory: %s\n", run_dir.c_str());
}

std::string binding_text(const dist::Rendezvous& r) {
  if (!r.group.iface.empty()) return "interface " + r.group.iface;
  if (!r.group.address.empty()) return "address " + r.group.address;
  return "the host name's address";
}

}  // namespace

int train_distributed(const Args& args, CommonOptions& options, const DistFlags& flags,
                      DistMode mode, bool resume) {
  require(flags.bucket_mb > 0, "--bucket-mb must be positive");
  require(!resume || !options.run_dir.empty(), "--resume needs --run-dir");
  const sdp::SdpSetup sdp_settings = mode == DistMode::Sdp ? sdp_setup(flags) : sdp::SdpSetup{};
  dist::DistConfig config = flags.config;
  config.device = options.train.device;
  const dist::Rendezvous rendezvous = dist::resolve_rendezvous(config, dist::process_environment());
  const bool leader = rendezvous.rank == 0;
  // Rank 0 speaks for the run; the others show only their progress, and only to a launcher that
  // draws it live (one line per rank). --quiet silences that too.
  if (options.train.quiet) ::unsetenv(metrics::kLiveProgressEnv);
  if (!leader) options.train.quiet = true;
  const int64_t threads = configure_threads(options.threads);
  train::parse_device(options.train.device);

  // Every worker, quiet or not: where a multi-host run's traffic goes is the first thing to check.
  std::fprintf(stderr, "dist: rank %lld binds Gloo to %s (%s)\n",
               static_cast<long long>(rendezvous.rank), binding_text(rendezvous).c_str(),
               rendezvous.binding_reason.empty() ? "default" : rendezvous.binding_reason.c_str());
  dist::ProcessGroup group = dist::init_process_group(rendezvous);
  if (!options.train.quiet)
    std::fprintf(stderr, "dist: %s, %lld workers, timeout %.0f s\n", mode_name(mode),
                 static_cast<long long>(group.size()), config.timeout_seconds);
  const data::TrainTest data = load_data_for_model(options, /*verbose=*/false);
  const StartPoint start = start_point(mode, options, resume, rendezvous.rank);
  std::unique_ptr<train::RunDirectory> run_dir;
  if (leader && !options.run_dir.empty()) {
    if (start.resume) {
      train::drop_metrics_after_step(options.run_dir + "/metrics.jsonl", start.step);
      std::fprintf(stderr, "dist: %s from the checkpoint of step %lld (attempt %lld)\n",
                   resume ? "resuming" : "restarting", static_cast<long long>(start.step),
                   static_cast<long long>(dist::restart_count()));
    } else if (start.restartable) {
      // A restart must not resume from an older run's checkpoints.
      dist::remove_worker_checkpoints(options.run_dir);
      std::filesystem::remove(options.run_dir + "/checkpoint.pt");
    }
    run_dir = open_run_directory(args, options, mode, threads, group.size(), start.resume);
  }
  // Nobody looks for checkpoints before rank 0 has cleared an older run's.
  group.barrier();

  const dist::RunResult result =
      run(mode, options, flags, sdp_settings, start, group, data, run_dir.get());
  nlohmann::json json =
      dist::summarize_run(group, mode_name(mode), result, mode != DistMode::Pipeline);
  if (leader) {
    json["threads"] = threads;
    if (run_dir) run_dir->write_json("summary.json", json);
    print_result(json, mode, options.run_dir);
  }
  group.shutdown();
  return 0;
}

}  // namespace tessera::cli
