#include "tessera/cli/dist_train.h"

#include <algorithm>
#include <cstdio>

#include "tessera/core/error.h"
#include "tessera/data/load.h"
#include "tessera/dist/data_parallel.h"
#include "tessera/dist/pipeline.h"
#include "tessera/dist/rendezvous.h"
#include "tessera/dist/worker_metrics.h"
#include "tessera/metrics/flops.h"
#include "tessera/models/staged_model.h"
#include "tessera/sdp/backward_masking.h"
#include "tessera/sdp/mask_plan.h"
#include "tessera/sdp/plan_change.h"
#include "tessera/sdp/subnet_sync.h"
#include "tessera/sdp/worker_model.h"
#include "tessera/train/batch_norm_statistics.h"
#include "tessera/train/checkpoint.h"
#include "tessera/train/run_directory.h"
#include "tessera/train/trainer.h"

namespace tessera::cli {
namespace {

// Adds the run-wide view of the per-rank metrics: throughput of all workers together (data
// parallel workers train different samples; pipeline workers all pass the same ones) and the bytes
// all workers sent per optimizer step.
void add_totals(nlohmann::json& summary, const nlohmann::json& ranks, int64_t steps,
                bool data_parallel) {
  double samples_per_second = 0.0;
  int64_t comm_bytes = 0;
  int64_t step_bytes = 0;
  for (const auto& r : ranks) {
    if (data_parallel || samples_per_second == 0.0)
      samples_per_second += r.at("samples_per_second").get<double>();
    comm_bytes += r.at("comm_bytes").get<int64_t>();
    step_bytes += r.at("step_comm_bytes").get<int64_t>();
  }
  summary["ranks"] = ranks;
  summary["total_samples_per_second"] = samples_per_second;
  summary["total_comm_bytes"] = comm_bytes;
  // Training steps only (no start-up broadcast, evaluation or checkpoint gathering).
  summary["comm_bytes_per_step"] = steps > 0 ? step_bytes / steps : 0;
}

struct SdpOutcome {
  train::TrainSummary summary;
  nlohmann::json extra;
  int64_t step_comm_bytes = 0;
};

// The worker's model under SDP and the synchronisation that trains it. Forward masking: the
// worker's physically smaller subnetwork. Backward masking: the full model (the same on every
// worker), of which the optimizer updates only the held units.
struct SdpWorker {
  std::unique_ptr<train::Trainer> trainer;
  std::shared_ptr<sdp::SubnetSync> forward;
  std::shared_ptr<sdp::BackwardMasking> backward;
  sdp::SyncStats stats() const { return backward ? backward->stats() : forward->stats(); }
};

SdpWorker make_sdp_worker(const CommonOptions& options, bool backward, dist::ProcessGroup& group,
                          const sdp::MaskPlan& plan, sdp::SyncMode mode,
                          const models::ModelConfig& full, train::RunDirectory* run,
                          std::shared_ptr<train::Objective> objective) {
  const models::Subnet subnet = backward ? models::Subnet{} : plan.subnet(group.rank());
  models::StagedModel model = sdp::build_worker_model(full, subnet, options.train.seed);
  SdpWorker worker;
  // The Trainer moves the model to its device before the masking copies any of it.
  worker.trainer = std::make_unique<train::Trainer>(model, objective, options.train, run);
  if (backward) {
    worker.backward =
        std::make_shared<sdp::BackwardMasking>(group, plan, mode, *worker.trainer->model());
    worker.trainer->set_worker_sync(worker.backward);
    worker.trainer->set_trained_parameters(worker.backward->trained_parameters());
  } else {
    worker.forward = std::make_shared<sdp::SubnetSync>(group, plan, mode);
    worker.trainer->set_worker_sync(worker.forward);
  }
  return worker;
}

int64_t numel_of(const std::vector<torch::Tensor>& tensors) {
  int64_t n = 0;
  for (const auto& t : tensors) n += t.numel();
  return n;
}

// When forward-masked workers move to a new plan (--sdp-redraw-epochs / --sdp-redraw-steps).
struct RedrawPeriod {
  int64_t epochs = 0;
  int64_t steps = 0;
  bool any() const { return epochs > 0 || steps > 0; }
};

// What training under a sequence of plans adds up to (one plan without redraws).
struct PlanSequence {
  sdp::PlanConfig first;  // the run's plan settings; redraw r mixes r into their seed
  sdp::MaskPlan plan;     // the last one, which the assembly uses
  int64_t redraws = 0;
  sdp::PlanChangeStats changes;  // summed, with the largest peak
};

void add(sdp::PlanChangeStats& total, const sdp::PlanChangeStats& change) {
  total.comm_bytes += change.comm_bytes;
  total.received_entries += change.received_entries;
  total.peak_tensor_bytes = std::max(total.peak_tensor_bytes, change.peak_tensor_bytes);
  total.seconds += change.seconds;
}

// Every worker moves from the sequence's plan to its next one after `step` steps (sdp/plan_change):
// the trainer continues with the new subnetwork and its optimizer state, the sync with its
// holder sets. Rank 0 saves the plan as `plan_file`.
void move_to_next_plan(SdpWorker& worker, PlanSequence& sequence, int64_t step,
                       const std::string& plan_file, dist::ProcessGroup& group,
                       const CommonOptions& options, const models::ModelConfig& full,
                       train::RunDirectory* run) {
  train::Trainer& trainer = *worker.trainer;
  ++sequence.redraws;
  sdp::MaskPlan next = sdp::redrawn_plan(full, sequence.first, sequence.redraws);
  if (group.rank() == 0 && run) run->write_json(plan_file, sdp::to_json(next));
  sdp::PlanChangeStats change;
  sdp::WorkerState moved =
      sdp::change_plan(group, sequence.plan, next, *trainer.model(), trainer.optimizer(), full,
                       options.train.optimizer, options.train.seed, step, &change);
  trainer.replace_model(moved.model, std::move(moved.optimizer));
  worker.forward->change_plan(next, *trainer.model());
  sequence.plan = std::move(next);
  add(sequence.changes, change);
}

// Forward masking: one fit, during which every worker moves to the next plan after every
// `period`, at the same step everywhere. The summary covers the whole run: the FLOPs of each
// plan's subnetwork for the samples trained under it, and a peak and bytes that include the
// changes.
train::TrainSummary fit_plan_sequence(SdpWorker& worker, const data::Dataset& train,
                                      PlanSequence& sequence, RedrawPeriod period,
                                      dist::ProcessGroup& group, const CommonOptions& options,
                                      const models::ModelConfig& full, train::RunDirectory* run) {
  train::Trainer& trainer = *worker.trainer;
  int64_t earlier_flops = 0;    // trained under the plans before the current one
  int64_t earlier_samples = 0;  // the samples of those
  auto flops_since_change = [&](int64_t samples) {
    return metrics::training_flops(trainer.model()->forward_flops()) * (samples - earlier_samples);
  };
  if (period.any())
    trainer.after_step([&](const train::StepPoint& at) {
      const int64_t steps_per_epoch = at.total_steps / options.train.epochs;
      const int64_t every = period.steps > 0 ? period.steps : period.epochs * steps_per_epoch;
      if (at.step % every != 0 || at.step >= at.total_steps) return;
      earlier_flops += flops_since_change(at.train_samples);
      earlier_samples = at.train_samples;
      const std::string plan_file =
          period.steps > 0 ? "sdp_plan_step" + std::to_string(at.step) + ".json"
                           : "sdp_plan_epoch" + std::to_string(at.step / steps_per_epoch) + ".json";
      move_to_next_plan(worker, sequence, at.step, plan_file, group, options, full, run);
    });
  train::TrainSummary summary = trainer.fit(train, nullptr);
  trainer.after_step(nullptr);
  summary.train_flops = earlier_flops + flops_since_change(summary.train_samples);
  return summary;
}

// SDP: every worker trains its own subnetwork of the plan; rank 0 then assembles the full model
// (with backward masking it has it already), evaluates it and saves it as the run's (ordinary,
// world-size independent) checkpoint.
SdpOutcome train_sdp(CommonOptions& options, const DistFlags& flags, dist::ProcessGroup& group,
                     const data::TrainTest& data, train::RunDirectory* run,
                     std::shared_ptr<train::Objective> objective) {
  require(flags.sdp_masking == "forward" || flags.sdp_masking == "backward",
          "--sdp-masking must be forward or backward, got '" + flags.sdp_masking + "'");
  const bool backward = flags.sdp_masking == "backward";
  require(!(backward && flags.sdp_rescale),
          "--sdp-rescale scales the masked units of a model whose workers trained without them; "
          "with --sdp-masking backward every worker trains the full forward, so there is nothing "
          "to rescale");
  const models::ModelConfig full = models::architecture(options.model.arch).resolve(options.model);
  require(full.subnet.empty(), "--dist sdp: the model must be the full network");
  require(flags.sdp_redraw_epochs >= 0, "--sdp-redraw-epochs must be non-negative");
  require(flags.sdp_redraw_steps >= 0, "--sdp-redraw-steps must be non-negative");
  const RedrawPeriod redraw{flags.sdp_redraw_epochs, flags.sdp_redraw_steps};
  require(!(redraw.epochs > 0 && redraw.steps > 0),
          "--sdp-redraw-epochs and --sdp-redraw-steps both set a redraw period: give one");
  require(!(backward && redraw.any()),
          "--sdp-redraw-epochs / --sdp-redraw-steps move units between forward-masked "
          "subnetworks; with --sdp-masking backward every worker has every unit already");
  sdp::PlanConfig plan_config;
  plan_config.level = sdp::parse_level(flags.sdp_level);
  plan_config.workers = group.size();
  plan_config.coverage = flags.coverage;
  plan_config.seed = options.train.seed;
  const sdp::MaskPlan plan = sdp::make_mask_plan(full, plan_config);
  const sdp::SyncMode mode = sdp::parse_sync_mode(flags.sdp_sync);
  const bool leader = group.rank() == 0;
  if (leader) {
    if (!options.train.quiet) std::fprintf(stderr, "%s", sdp::describe(plan, full).c_str());
    if (run) run->write_json("sdp_plan.json", sdp::to_json(plan));
  }
  options.train.rank = group.rank();
  options.train.world_size = group.size();
  // Rank 0's trainer would checkpoint its subnetwork every epoch; the assembled model is saved
  // once at the end instead.
  options.train.checkpoint_every = 0;
  SdpWorker worker = make_sdp_worker(options, backward, group, plan, mode, full, run, objective);
  train::Trainer& trainer = *worker.trainer;
  SdpOutcome outcome;
  PlanSequence sequence{plan.config, plan, 0, {}};
  outcome.summary =
      backward ? trainer.fit(data.train, nullptr)
               : fit_plan_sequence(worker, data.train, sequence, redraw, group, options, full, run);
  const sdp::SyncStats& stats = worker.stats();
  // Moving units to a new plan is training traffic too.
  outcome.step_comm_bytes = stats.comm_bytes + sequence.changes.comm_bytes;

  // With backward masking every worker ends with the same full model (refreshed after every
  // step): rank 0's is the result, and nothing needs to travel.
  models::StagedModel assembled =
      backward ? (leader ? trainer.model() : models::StagedModel(nullptr))
               : sdp::assemble_full_model(group, *trainer.model(), sequence.plan, full,
                                          options.train.seed, flags.sdp_rescale);
  outcome.extra = {{"level", flags.sdp_level},
                   {"coverage", flags.coverage},
                   {"holders_per_unit", plan.holders_per_unit},
                   {"masking", flags.sdp_masking},
                   {"sync", flags.sdp_sync},
                   {"rescale", flags.sdp_rescale},
                   {"holder_sets", stats.holder_sets},
                   {"sync_seconds", stats.wait_seconds},
                   {"worker_parameters", models::parameter_count(*trainer.model())},
                   {"trained_parameters", numel_of(backward ? worker.backward->trained_parameters()
                                                            : trainer.model()->parameters())}};
  if (backward) outcome.extra["refresh_comm_bytes"] = worker.backward->refresh_bytes();
  if (redraw.any())
    outcome.extra["redraw"] = {{redraw.steps > 0 ? "every_steps" : "every_epochs",
                                redraw.steps > 0 ? redraw.steps : redraw.epochs},
                               {"redraws", sequence.redraws},
                               {"comm_bytes", sequence.changes.comm_bytes},
                               {"received_entries", sequence.changes.received_entries},
                               {"peak_tensor_bytes", sequence.changes.peak_tensor_bytes},
                               {"seconds", sequence.changes.seconds}};
  if (leader) {
    // Forward masking: the subnetwork rank 0 trained, on its own: how much the assembly adds (or
    // loses). Backward masking: the full model with rank 0's own batch-norm statistics, before
    // they are re-estimated below.
    const double own_accuracy = trainer.evaluate(data.test).accuracy;
    std::fprintf(stderr, "sdp: %s: test accuracy %.2f%%\n",
                 backward ? "rank 0's model with its own batch-norm statistics"
                          : "worker 0's subnetwork alone",
                 100.0 * own_accuracy);
    outcome.extra[backward ? "worker0_own_bn_test_accuracy" : "worker0_subnet_test_accuracy"] =
        own_accuracy;
    outcome.extra["bn_recalibration_samples"] = train::recompute_batch_norm_statistics(
        assembled, data.train, flags.sdp_bn_batches, options.train.batch_size, options.train.seed,
        train::parse_device(options.train.device));
    outcome.extra["full_parameters"] = models::parameter_count(*assembled);
    train::Trainer evaluator(assembled, objective, options.train, nullptr);
    outcome.summary.test = evaluator.evaluate(data.test);
    if (run) {
      nlohmann::json meta = trainer.checkpoint_meta();
      meta["model"] = models::to_json(full);
      meta["begin_stage"] = 0;
      meta["end_stage"] = assembled->end_stage();
      meta["sdp"] = {{"level", flags.sdp_level},
                     {"coverage", flags.coverage},
                     {"workers", group.size()},
                     {"masking", flags.sdp_masking},
                     {"rescale", flags.sdp_rescale}};
      train::save_checkpoint(run->checkpoint_path(), *assembled, nullptr, meta);
    }
  }
  return outcome;
}

}  // namespace

int train_distributed(const Args& args, CommonOptions& options, const DistFlags& flags,
                      bool resume) {
  require(flags.mode == "ddp" || flags.mode == "pipeline" || flags.mode == "sdp",
          "--dist must be none, ddp, pipeline or sdp, got '" + flags.mode + "'");
  require(flags.bucket_mb > 0, "--bucket-mb must be positive");
  require(!(resume && flags.mode != "ddp"),
          "--resume is not supported with --dist " + flags.mode + " (only ddp)");
  dist::DistConfig config = flags.config;
  config.device = options.train.device;
  const dist::Rendezvous rendezvous = dist::resolve_rendezvous(config, dist::process_environment());
  const bool leader = rendezvous.rank == 0;
  if (!leader) options.train.quiet = true;
  const int64_t threads = configure_threads(options.threads);
  train::parse_device(options.train.device);

  dist::ProcessGroup group = dist::init_process_group(rendezvous);
  if (!options.train.quiet)
    std::fprintf(stderr, "dist: %s, %lld workers, timeout %.0f s\n", flags.mode.c_str(),
                 static_cast<long long>(group.size()), config.timeout_seconds);
  const data::TrainTest data = load_data_for_model(options, /*verbose=*/false);

  std::unique_ptr<train::RunDirectory> run;
  if (leader && !options.run_dir.empty()) {
    run = std::make_unique<train::RunDirectory>(options.run_dir, resume);
    Args recorded;
    for (const auto& a : args)
      if (a != "--resume") recorded.push_back(a);
    run->write_json("config.json", {{"command", "train"},
                                    {"args", recorded},
                                    {"threads", threads},
                                    {"dist", flags.mode},
                                    {"world_size", group.size()},
                                    {"model", models::to_json(options.model)},
                                    {"train", train::to_json(options.train)},
                                    {"data", options.data.name}});
  }
  auto objective = std::make_shared<train::Classification>();
  train::TrainSummary summary;
  nlohmann::json extra;
  int64_t step_comm_bytes = 0;
  if (flags.mode == "ddp") {
    options.train.rank = group.rank();
    options.train.world_size = group.size();
    torch::manual_seed(options.train.seed);
    models::StagedModel model = models::build_model(options.model);
    train::Trainer trainer(model, objective, options.train, run.get());
    dist::ReducerOptions reducer;
    reducer.bucket_bytes = static_cast<int64_t>(flags.bucket_mb * (1 << 20));
    reducer.overlap = !flags.no_overlap;
    auto ddp = std::make_shared<dist::DataParallel>(group, reducer);
    trainer.set_worker_sync(ddp);
    // Every worker loads the same checkpoint; start() then verifies that they agree.
    if (resume) trainer.resume(options.run_dir + "/checkpoint.pt");
    summary = trainer.fit(data.train, leader ? &data.test : nullptr);
    const dist::ReducerStats& stats = ddp->reducer()->stats();
    extra = {{"buckets", stats.buckets},
             {"bucket_bytes", reducer.bucket_bytes},
             {"overlap", reducer.overlap},
             {"exposed_comm_seconds", stats.wait_seconds}};
    step_comm_bytes = stats.comm_bytes;
  } else if (flags.mode == "sdp") {
    SdpOutcome outcome = train_sdp(options, flags, group, data, run.get(), objective);
    summary = outcome.summary;
    extra = outcome.extra;
    step_comm_bytes = outcome.step_comm_bytes;
  } else {
    dist::PipelineTrainer pipeline(group, options.model, objective, options.train,
                                   flags.micro_batches, run.get());
    summary = pipeline.fit(data.train, &data.test);
    step_comm_bytes = pipeline.step_comm_bytes();
    const auto ranges = dist::split_stages(options.model, group.size());
    nlohmann::json stages = nlohmann::json::array();
    for (const auto& [begin, end] : ranges) stages.push_back({begin, end});
    extra = {{"micro_batches", flags.micro_batches}, {"stages", stages}};
  }
  const nlohmann::json ranks = dist::gather_worker_metrics(group, summary, step_comm_bytes);
  if (leader) {
    nlohmann::json json = train::to_json(summary);
    json["threads"] = threads;
    json["dist"] = flags.mode;
    json["world_size"] = group.size();
    json[flags.mode] = extra;
    add_totals(json, ranks, summary.steps, flags.mode != "pipeline");
    if (run) run->write_json("summary.json", json);
    std::printf(
        "test accuracy %.2f%%  test loss %.4f  |  %lld epochs in %.1f s  |  %s on %lld workers: "
        "%.0f samples/s  |  %.3g bytes sent per step\n",
        100.0 * summary.test.accuracy, summary.test.loss, static_cast<long long>(summary.epochs),
        summary.wall_seconds, flags.mode.c_str(), static_cast<long long>(group.size()),
        json["total_samples_per_second"].get<double>(),
        static_cast<double>(json["comm_bytes_per_step"].get<int64_t>()));
    if (run) std::printf("run directory: %s\n", options.run_dir.c_str());
  }
  group.shutdown();
  return 0;
}

}  // namespace tessera::cli
