#include "tessera/sdp/sdp_run.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "tessera/core/error.h"
#include "tessera/core/seeding.h"
#include "tessera/dist/restart_checkpoint.h"
#include "tessera/metrics/flops.h"
#include "tessera/models/architecture.h"
#include "tessera/models/staged_model.h"
#include "tessera/sdp/backward_masking.h"
#include "tessera/sdp/plan_change.h"
#include "tessera/sdp/subnet_ensemble.h"
#include "tessera/sdp/worker_model.h"
#include "tessera/train/batch_norm_statistics.h"
#include "tessera/train/checkpoint.h"
#include "tessera/train/optimizer_state.h"

namespace tessera::sdp {

Masking parse_masking(const std::string& name) {
  if (name == "forward") return Masking::Forward;
  if (name == "backward") return Masking::Backward;
  throw UsageError("--sdp-masking must be forward or backward, got '" + name + "'");
}

const char* to_string(Masking masking) {
  return masking == Masking::Backward ? "backward" : "forward";
}

Evaluation parse_evaluation(const std::string& name) {
  if (name == "assembled") return Evaluation::Assembled;
  if (name == "ensemble") return Evaluation::Ensemble;
  throw UsageError("--sdp-eval must be assembled or ensemble, got '" + name + "'");
}

const char* to_string(Evaluation evaluation) {
  return evaluation == Evaluation::Ensemble ? "ensemble" : "assembled";
}

void validate(const SdpSetup& setup) {
  const bool backward = setup.masking == Masking::Backward;
  require(!(backward && setup.rescale),
          "--sdp-rescale scales the masked units of a model whose workers trained without them; "
          "with --sdp-masking backward every worker trains the full forward, so there is nothing "
          "to rescale");
  require(setup.rescale_factor >= 0, "--sdp-rescale-factor must be positive");
  require(!(setup.rescale_factor > 0 && !setup.rescale),
          "--sdp-rescale-factor sets the factor of --sdp-rescale, which is off (--no-sdp-rescale, "
          "or backward masking)");
  require(!(setup.bf16_comm && setup.sync == SyncMode::Params), kBf16ParamsMessage);
  require(setup.redraw_epochs >= 0, "--sdp-redraw-epochs must be non-negative");
  require(setup.redraw_steps >= 0, "--sdp-redraw-steps must be non-negative");
  require(!(setup.redraw_epochs > 0 && setup.redraw_steps > 0),
          "--sdp-redraw-epochs and --sdp-redraw-steps both set a redraw period: give one");
  require(!(backward && (setup.redraw_epochs > 0 || setup.redraw_steps > 0)),
          "--sdp-redraw-epochs / --sdp-redraw-steps move units between forward-masked "
          "subnetworks; with --sdp-masking backward every worker has every unit already");
  require(!(backward && setup.evaluation == Evaluation::Ensemble),
          "--sdp-eval ensemble averages the workers' different subnetworks; with --sdp-masking "
          "backward every worker ends with the same full model, so there is no ensemble");
}

namespace {

// The worker's model under SDP and the synchronisation that trains it. Forward masking: the
// worker's physically smaller subnetwork. Backward masking: the full model (the same on every
// worker), of which the optimizer updates only the held units.
struct SdpWorker {
  std::unique_ptr<train::Trainer> trainer;
  std::shared_ptr<SubnetSync> forward;
  std::shared_ptr<BackwardMasking> backward;
  SyncStats stats() const { return backward ? backward->stats() : forward->stats(); }
};

// `checkpoint`: this worker's restart checkpoint to continue from (empty: a fresh start).
SdpWorker make_worker(const SdpSetup& setup, const train::TrainConfig& config,
                      dist::ProcessGroup& group, const MaskPlan& plan,
                      const models::ModelConfig& full,
                      const std::shared_ptr<train::Objective>& objective,
                      const std::string& checkpoint) {
  const bool backward = setup.masking == Masking::Backward;
  const models::Subnet subnet = backward ? models::Subnet{} : plan.subnet(group.rank());
  models::StagedModel model = build_worker_model(full, subnet, config.seed);
  SdpWorker worker;
  // The Trainer moves the model to its device before the masking copies any of it.
  worker.trainer = std::make_unique<train::Trainer>(model, objective, config, setup.run);
  // Backward masking copies the held entries out of the model: load the weights first (the
  // optimizer state, over those copies, once they exist).
  if (!checkpoint.empty()) train::load_checkpoint(checkpoint, *worker.trainer->model(), nullptr);
  if (backward) {
    worker.backward = std::make_shared<BackwardMasking>(group, plan, setup.sync,
                                                        *worker.trainer->model(), setup.bf16_comm);
    worker.trainer->set_worker_sync(worker.backward);
    worker.trainer->set_trained_parameters(worker.backward->trained_parameters());
  } else {
    worker.forward = std::make_shared<SubnetSync>(group, plan, setup.sync, setup.bf16_comm);
    worker.trainer->set_worker_sync(worker.forward);
  }
  if (!checkpoint.empty())
    worker.trainer->resume_from_meta(
        train::load_checkpoint(checkpoint, *worker.trainer->model(), &worker.trainer->optimizer()));
  return worker;
}

int64_t numel_of(const std::vector<torch::Tensor>& tensors) {
  int64_t n = 0;
  for (const auto& t : tensors) n += t.numel();
  return n;
}

// What training under a sequence of plans adds up to (one plan without redraws).
struct PlanSequence {
  PlanConfig first;  // the run's plan settings; redraw r mixes r into their seed
  MaskPlan plan;     // the last one, which the assembly uses
  int64_t redraws = 0;
  PlanChangeStats changes;  // summed, with the largest peak
};

void add(PlanChangeStats& total, const PlanChangeStats& change) {
  total.comm_bytes += change.comm_bytes;
  total.received_entries += change.received_entries;
  total.peak_tensor_bytes = std::max(total.peak_tensor_bytes, change.peak_tensor_bytes);
  total.seconds += change.seconds;
}

// One worker of the run: its trainer and sync, and the plans it trains under.
class SdpRun {
 public:
  SdpRun(const SdpSetup& setup, dist::ProcessGroup& group, const data::TrainTest& data)
      : setup_(setup), group_(group), data_(data) {}

  dist::RunResult run();

 private:
  void move_to_next_plan(int64_t step, const std::string& plan_file);
  train::TrainSummary fit_plan_sequence();
  nlohmann::json details() const;
  // What the assembled model multiplies masked units' outputs by (0: nothing).
  double rescale_factor() const {
    if (!setup_.rescale) return 0.0;
    return setup_.rescale_factor > 0 ? setup_.rescale_factor : setup_.coverage;
  }
  models::StagedModel full_model_now(bool final);
  train::EvalResult prepare_and_evaluate(models::StagedModel& full, const data::Dataset& test,
                                         nlohmann::json* details);
  train::EvalResult evaluate_during_training(const data::Dataset& test);
  const data::Dataset* test_during_training() const {
    return setup_.evaluate_during_training ? &data_.test : nullptr;
  }
  void finish_on_rank0(models::StagedModel assembled, const train::EvalResult& ensemble,
                       dist::RunResult& result);
  std::string resume_checkpoint() const;
  nlohmann::json model_checkpoint_meta(const models::ModelConfig& model, int64_t end_stage) const;
  void save_subnetwork();
  void save_restart_checkpoint(const nlohmann::json& trainer_meta);
  void restore_sequence(const MaskPlan& first, const std::string& checkpoint);
  void restore_kept_entries(const std::string& checkpoint);

  const SdpSetup& setup_;
  dist::ProcessGroup& group_;
  const data::TrainTest& data_;
  bool backward_ = false;
  models::ModelConfig full_;
  train::TrainConfig config_;
  std::shared_ptr<train::Objective> objective_ = std::make_shared<train::Classification>();
  SdpWorker worker_;
  PlanSequence sequence_;
  KeptEntries kept_;  // this worker's share of the entries no worker holds (after a plan change)
  int64_t earlier_flops_ = 0;         // trained under the plans before the current one
  int64_t earlier_samples_ = 0;       // the samples of those
  int64_t resumed_change_bytes_ = 0;  // plan-change bytes of the run before a resume
};

// Every worker moves from the sequence's plan to its next one after `step` steps (plan_change):
// the trainer continues with the new subnetwork and its optimizer state, the sync with its holder
// sets. Rank 0 saves the plan as `plan_file`.
void SdpRun::move_to_next_plan(int64_t step, const std::string& plan_file) {
  train::Trainer& trainer = *worker_.trainer;
  ++sequence_.redraws;
  MaskPlan next = redrawn_plan(full_, sequence_.first, sequence_.redraws);
  if (group_.rank() == 0 && setup_.run) setup_.run->write_json(plan_file, to_json(next));
  PlanChangeStats change;
  WorkerState moved =
      change_plan(group_, sequence_.plan, next, *trainer.model(), trainer.optimizer(), full_,
                  config_.optimizer, config_.seed, step, kept_, &change);
  trainer.replace_model(moved.model, std::move(moved.optimizer));
  worker_.forward->change_plan(next, *trainer.model());
  sequence_.plan = std::move(next);
  add(sequence_.changes, change);
}

// Forward masking: one fit, during which every worker moves to the next plan after every redraw
// period, at the same step everywhere. The summary covers the whole run: the FLOPs of each plan's
// subnetwork for the samples trained under it, and a peak and bytes that include the changes.
train::TrainSummary SdpRun::fit_plan_sequence() {
  train::Trainer& trainer = *worker_.trainer;
  auto flops_since_change = [&](int64_t samples) {
    return metrics::training_flops(trainer.model()->forward_flops()) * (samples - earlier_samples_);
  };
  if (setup_.redraw_epochs > 0 || setup_.redraw_steps > 0)
    trainer.after_step([&](const train::StepPoint& at) {
      const int64_t steps_per_epoch = at.total_steps / config_.epochs;
      const int64_t every =
          setup_.redraw_steps > 0 ? setup_.redraw_steps : setup_.redraw_epochs * steps_per_epoch;
      if (at.step % every != 0 || at.step >= at.total_steps) return;
      earlier_flops_ += flops_since_change(at.train_samples);
      earlier_samples_ = at.train_samples;
      move_to_next_plan(
          at.step, setup_.redraw_steps > 0
                       ? "sdp_plan_step" + std::to_string(at.step) + ".json"
                       : "sdp_plan_epoch" + std::to_string(at.step / steps_per_epoch) + ".json");
    });
  train::TrainSummary summary = trainer.fit(data_.train, test_during_training());
  trainer.after_step(nullptr);
  summary.train_flops = earlier_flops_ + flops_since_change(summary.train_samples);
  return summary;
}

nlohmann::json SdpRun::details() const {
  const SyncStats stats = worker_.stats();
  train::Trainer& trainer = *worker_.trainer;
  nlohmann::json json = {
      {"level", to_string(setup_.level)},
      {"coverage", setup_.coverage},
      {"holders_per_unit", sequence_.plan.holders_per_unit},
      {"masking", to_string(setup_.masking)},
      {"sync", to_string(setup_.sync)},
      {"comm_precision", setup_.bf16_comm ? "bf16" : "fp32"},
      {"rescale", setup_.rescale},
      {"rescale_factor", rescale_factor()},
      {"evaluation", to_string(setup_.evaluation)},
      {"holder_sets", stats.holder_sets},
      {"sync_seconds", stats.wait_seconds},
      {"worker_parameters", models::parameter_count(*trainer.model())},
      {"trained_parameters", numel_of(backward_ ? worker_.backward->trained_parameters()
                                                : trainer.model()->parameters())}};
  if (backward_) json["refresh_comm_bytes"] = worker_.backward->refresh_bytes();
  if (setup_.redraw_epochs > 0 || setup_.redraw_steps > 0) {
    const bool steps = setup_.redraw_steps > 0;
    const PlanChangeStats& changes = sequence_.changes;
    json["redraw"] = {{steps ? "every_steps" : "every_epochs",
                       steps ? setup_.redraw_steps : setup_.redraw_epochs},
                      {"redraws", sequence_.redraws},
                      {"comm_bytes", changes.comm_bytes},
                      {"received_entries", changes.received_entries},
                      {"peak_tensor_bytes", changes.peak_tensor_bytes},
                      {"seconds", changes.seconds}};
  }
  return json;
}

// The model the run stands for now, on rank 0 (other ranks: an empty holder). Forward masking:
// assembled from every worker's subnetwork (collective). Backward masking: rank 0's own full model
// (every worker's is the same); during training a copy, which the batch-norm pass may change.
models::StagedModel SdpRun::full_model_now(bool final) {
  train::Trainer& trainer = *worker_.trainer;
  if (!backward_)
    return assemble_full_model(group_, *trainer.model(), sequence_.plan, full_, config_.seed,
                               rescale_factor(), kept_);
  if (group_.rank() != 0) return models::StagedModel(nullptr);
  if (final) return trainer.model();
  models::StagedModel copy(nullptr);
  {
    const auto rng_lock = lock_global_generator();
    copy = models::build_model(full_);
  }
  copy->to(trainer.model()->parameters().front().device());
  torch::NoGradGuard no_grad;
  auto params = trainer.model()->named_parameters();
  for (auto& item : copy->named_parameters()) item.value().copy_(params[item.key()]);
  auto buffers = trainer.model()->named_buffers();
  for (auto& item : copy->named_buffers()) item.value().copy_(buffers[item.key()]);
  return copy;
}

// Rank 0: the full model's batch-norm statistics re-estimated (recorded in `details` if given),
// then its test figures.
train::EvalResult SdpRun::prepare_and_evaluate(models::StagedModel& full, const data::Dataset& test,
                                               nlohmann::json* details) {
  const int64_t bn_samples = train::recompute_batch_norm_statistics(
      full, data_.train, setup_.bn_batches, config_.batch_size, config_.seed,
      train::parse_device(config_.device));
  if (details != nullptr) (*details)["bn_recalibration_samples"] = bn_samples;
  train::Trainer evaluator(full, objective_, config_, nullptr);
  return evaluator.evaluate(test);
}

// An evaluation during training (the Trainer's test evaluator, every worker at the same step): the
// model the run would end with if it stopped here, evaluated as the final one is. Every worker
// records rank 0's figures. Nothing of the training changes: the workers' models are only read.
train::EvalResult SdpRun::evaluate_during_training(const data::Dataset& test) {
  if (setup_.evaluation == Evaluation::Ensemble)
    return evaluate_subnet_ensemble(group_, *worker_.trainer, test);
  models::StagedModel full = full_model_now(/*final=*/false);
  torch::Tensor figures = torch::zeros({3}, torch::kFloat64);
  if (group_.rank() == 0) {
    const train::EvalResult result = prepare_and_evaluate(full, test, nullptr);
    figures = torch::tensor({result.loss, result.accuracy, static_cast<double>(result.samples)},
                            torch::kFloat64);
  }
  std::vector<torch::Tensor> message = {figures};
  group_.broadcast(message, 0);
  train::EvalResult result;
  result.loss = figures[0].item<double>();
  result.accuracy = figures[1].item<double>();
  result.samples = static_cast<int64_t>(figures[2].item<double>());
  return result;
}

// Rank 0: the subnetwork's own accuracy, then the full model's batch-norm statistics, test
// figures and checkpoint; `ensemble`: the workers' subnetworks' as an ensemble (forward masking),
// the run's test figures under --sdp-eval ensemble.
void SdpRun::finish_on_rank0(models::StagedModel assembled, const train::EvalResult& ensemble,
                             dist::RunResult& result) {
  train::Trainer& trainer = *worker_.trainer;
  // Forward masking: the subnetwork rank 0 trained, on its own: how much the assembly adds (or
  // loses). Backward masking: the full model with rank 0's own batch-norm statistics, before they
  // are re-estimated below.
  const double own_accuracy = trainer.evaluate(data_.test).accuracy;
  std::fprintf(stderr, "sdp: %s: test accuracy %.2f%%\n",
               backward_ ? "rank 0's model with its own batch-norm statistics"
                         : "worker 0's subnetwork alone",
               100.0 * own_accuracy);
  result.details[backward_ ? "worker0_own_bn_test_accuracy" : "worker0_subnet_test_accuracy"] =
      own_accuracy;
  result.details["full_parameters"] = models::parameter_count(*assembled);
  result.summary.test = prepare_and_evaluate(assembled, data_.test, &result.details);
  if (!backward_) {
    result.details["subnet_ensemble_test_accuracy"] = ensemble.accuracy;
    result.details["subnet_ensemble_test_loss"] = ensemble.loss;
    std::fprintf(stderr,
                 "sdp: the %lld workers' subnetworks as an ensemble: test accuracy %.2f%%\n",
                 static_cast<long long>(group_.size()), 100.0 * ensemble.accuracy);
  }
  if (setup_.evaluation == Evaluation::Ensemble) {
    // The saved checkpoint is the assembled model: its figures stay in the record.
    result.details["assembled_test_accuracy"] = result.summary.test.accuracy;
    result.details["assembled_test_loss"] = result.summary.test.loss;
    std::fprintf(stderr, "sdp: the assembled model (saved): test accuracy %.2f%%\n",
                 100.0 * result.summary.test.accuracy);
    result.summary.test = ensemble;
  }
  if (setup_.run) {
    nlohmann::json meta = model_checkpoint_meta(full_, assembled->end_stage());
    meta["sdp"] = {{"level", to_string(setup_.level)},
                   {"coverage", setup_.coverage},
                   {"workers", group_.size()},
                   {"masking", to_string(setup_.masking)},
                   {"rescale", setup_.rescale}};
    train::save_checkpoint(setup_.run->checkpoint_path(), *assembled, nullptr, meta);
  }
}

// The trainer's checkpoint metadata for a whole model of `model` (stages 0 to end_stage), as
// `tessera eval` and `train --init-from` rebuild it.
nlohmann::json SdpRun::model_checkpoint_meta(const models::ModelConfig& model,
                                             int64_t end_stage) const {
  nlohmann::json meta = worker_.trainer->checkpoint_meta();
  meta["model"] = models::to_json(model);
  meta["begin_stage"] = 0;
  meta["end_stage"] = end_stage;
  return meta;
}

// This worker's subnetwork as an ordinary checkpoint of the (smaller) model it is, the subnet in
// its description: one member of the ensemble the run's figures are of.
void SdpRun::save_subnetwork() {
  if (setup_.subnet_dir.empty()) return;
  // Only rank 0 opens the run directory; on another host it does not exist yet.
  std::filesystem::create_directories(setup_.subnet_dir);
  train::Trainer& trainer = *worker_.trainer;
  nlohmann::json meta =
      model_checkpoint_meta(trainer.model()->config(), trainer.model()->end_stage());
  meta["sdp"] = {{"worker", group_.rank()}, {"workers", group_.size()}};
  train::save_checkpoint(setup_.subnet_dir + "/subnet" + std::to_string(group_.rank()) + ".pt",
                         *trainer.model(), nullptr, meta);
}

std::string SdpRun::resume_checkpoint() const {
  if (!setup_.resume) return {};
  require(!setup_.restart_dir.empty(), "sdp: resuming needs the run directory (--run-dir)");
  const std::string file = dist::latest_worker_checkpoint(setup_.restart_dir, group_.rank());
  require(!file.empty(), "sdp: " + setup_.restart_dir +
                             "/restart holds no complete set of worker checkpoints to resume "
                             "from (they are taken with --checkpoint-every-steps, or every "
                             "--checkpoint-every epochs under tessera launch --max-restarts)");
  return file;
}

// Every worker's subnetwork, optimizer state and place in the run, with the plan sequence's
// state: how many redraws (the current plan follows from it) and the FLOP and traffic counts.
void SdpRun::save_restart_checkpoint(const nlohmann::json& trainer_meta) {
  nlohmann::json meta = trainer_meta;
  const PlanChangeStats& changes = sequence_.changes;
  meta["sdp_sequence"] = {{"redraws", sequence_.redraws},
                          {"earlier_flops", earlier_flops_},
                          {"earlier_samples", earlier_samples_},
                          {"change_comm_bytes", changes.comm_bytes},
                          {"change_received_entries", changes.received_entries},
                          {"change_peak_tensor_bytes", changes.peak_tensor_bytes},
                          {"change_seconds", changes.seconds},
                          {"kept_entries", kept_.started}};
  // The entries this worker keeps for no holder, beside the checkpoint (written first, so that
  // a complete set has them).
  if (kept_.started)
    train::save_checkpoint(dist::worker_side_file(setup_.restart_dir, group_.rank(),
                                                  meta.at("step").get<int64_t>(), "kept"),
                           *kept_.as_module(), nullptr, {{"step", meta.at("step")}});
  train::Trainer& trainer = *worker_.trainer;
  dist::save_worker_checkpoint(group_, setup_.restart_dir, *trainer.model(), &trainer.optimizer(),
                               meta);
}

// The plan sequence where the checkpoint left it (the worker is then built under its plan).
void SdpRun::restore_sequence(const MaskPlan& first, const std::string& checkpoint) {
  sequence_ = PlanSequence{first.config, first, 0, {}};
  if (checkpoint.empty()) return;
  const nlohmann::json state = train::read_checkpoint_meta(checkpoint).at("sdp_sequence");
  sequence_.redraws = state.at("redraws").get<int64_t>();
  if (sequence_.redraws > 0) sequence_.plan = redrawn_plan(full_, first.config, sequence_.redraws);
  earlier_flops_ = state.at("earlier_flops").get<int64_t>();
  earlier_samples_ = state.at("earlier_samples").get<int64_t>();
  sequence_.changes.comm_bytes = state.at("change_comm_bytes").get<int64_t>();
  resumed_change_bytes_ = sequence_.changes.comm_bytes;
  sequence_.changes.received_entries = state.at("change_received_entries").get<int64_t>();
  sequence_.changes.peak_tensor_bytes = state.at("change_peak_tensor_bytes").get<int64_t>();
  sequence_.changes.seconds = state.at("change_seconds").get<double>();
}

// The entries this worker kept when the checkpoint was taken (after the run's first plan change),
// once the trainer exists (its optimizer tells how many state tensors each entry has).
void SdpRun::restore_kept_entries(const std::string& checkpoint) {
  if (checkpoint.empty()) return;
  const nlohmann::json meta = train::read_checkpoint_meta(checkpoint);
  if (!meta.at("sdp_sequence").value("kept_entries", false)) return;
  train::Trainer& trainer = *worker_.trainer;
  kept_ = keep_initial_entries(sequence_.plan, group_.rank(), full_, config_.seed,
                               train::parameter_state_count(trainer.optimizer()),
                               train::parse_device(config_.device));
  train::load_checkpoint(dist::worker_side_file(setup_.restart_dir, group_.rank(),
                                                meta.at("step").get<int64_t>(), "kept"),
                         *kept_.as_module(), nullptr);
}

dist::RunResult SdpRun::run() {
  validate(setup_);
  backward_ = setup_.masking == Masking::Backward;
  full_ = models::architecture(setup_.model.arch).resolve(setup_.model);
  require(full_.subnet.empty(), "--dist sdp: the model must be the full network");
  PlanConfig plan_config;
  plan_config.level = setup_.level;
  plan_config.workers = group_.size();
  plan_config.coverage = setup_.coverage;
  plan_config.seed = setup_.train.seed;
  const MaskPlan plan = make_mask_plan(full_, plan_config);
  const bool leader = group_.rank() == 0;
  if (leader) {
    if (!setup_.train.quiet) std::fprintf(stderr, "%s", describe(plan, full_).c_str());
    if (setup_.run) setup_.run->write_json("sdp_plan.json", to_json(plan));
  }
  config_ = setup_.train;
  config_.rank = group_.rank();
  config_.world_size = group_.size();
  const std::string checkpoint = resume_checkpoint();
  restore_sequence(plan, checkpoint);
  if (setup_.restart_dir.empty()) {
    // Rank 0's trainer would checkpoint its subnetwork every epoch; the assembled model is saved
    // once at the end instead.
    config_.checkpoint_every = 0;
    config_.checkpoint_every_steps = 0;
  }
  worker_ = make_worker(setup_, config_, group_, sequence_.plan, full_, objective_, checkpoint);
  restore_kept_entries(checkpoint);
  if (!setup_.restart_dir.empty())
    worker_.trainer->set_checkpoint_saver(
        [this](const nlohmann::json& meta) { save_restart_checkpoint(meta); });
  worker_.trainer->set_test_evaluator(
      [this](const data::Dataset& test) { return evaluate_during_training(test); });
  dist::RunResult result;
  result.summary =
      backward_ ? worker_.trainer->fit(data_.train, test_during_training()) : fit_plan_sequence();
  // Moving units to a new plan is training traffic too (this process's, as the sync's stats).
  result.step_comm_bytes =
      worker_.stats().comm_bytes + sequence_.changes.comm_bytes - resumed_change_bytes_;

  // With backward masking every worker ends with the same full model (refreshed after every
  // step): rank 0's is the result, and nothing needs to travel.
  models::StagedModel assembled = full_model_now(/*final=*/true);
  // Cheap (each worker's subnetwork once over the test set), so always recorded: what the
  // subnetworks give together, beside the assembled model.
  const train::EvalResult ensemble =
      backward_ ? train::EvalResult{}
                : evaluate_subnet_ensemble(group_, *worker_.trainer, data_.test);
  if (setup_.evaluation == Evaluation::Ensemble) save_subnetwork();
  result.details = details();
  if (leader) finish_on_rank0(assembled, ensemble, result);
  return result;
}

}  // namespace

dist::RunResult run_sdp(const SdpSetup& setup, dist::ProcessGroup& group,
                        const data::TrainTest& data) {
  return SdpRun(setup, group, data).run();
}

}  // namespace tessera::sdp
