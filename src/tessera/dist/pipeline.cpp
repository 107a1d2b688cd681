#include "tessera/dist/pipeline.h"

#include <cmath>
#include <cstdio>

#include "tessera/core/error.h"
#include "tessera/core/fault_injection.h"
#include "tessera/core/seeding.h"
#include "tessera/dist/restart_checkpoint.h"
#include "tessera/metrics/flops.h"
#include "tessera/metrics/measurement_scope.h"
#include "tessera/metrics/memory_tracker.h"
#include "tessera/metrics/progress.h"
#include "tessera/metrics/timer.h"
#include "tessera/models/regularizers.h"
#include "tessera/train/autocast_scope.h"
#include "tessera/train/checkpoint.h"

namespace tessera::dist {
namespace {

// Parameters and buffers in registration order (the same relative order in a partition and in
// the whole model, since both register "stage<i>" modules in stage order).
std::vector<std::pair<std::string, torch::Tensor>> named_state(torch::nn::Module& module) {
  std::vector<std::pair<std::string, torch::Tensor>> state;
  for (const auto& item : module.named_parameters()) state.emplace_back(item.key(), item.value());
  for (const auto& item : module.named_buffers()) state.emplace_back(item.key(), item.value());
  return state;
}

bool in_stages(const std::string& name, int64_t begin, int64_t end) {
  for (int64_t i = begin; i < end; ++i)
    if (name.rfind("stage" + std::to_string(i) + ".", 0) == 0) return true;
  return false;
}

// Sums values over the ranks (each rank adds what it knows, e.g. only the last rank the loss).
void sum_over_ranks(ProcessGroup& group, std::vector<double>& values) {
  std::vector<torch::Tensor> tensor = {torch::tensor(values, torch::kDouble)};
  group.all_reduce(tensor);
  for (size_t i = 0; i < values.size(); ++i) values[i] = tensor[0][i].item<double>();
}

}  // namespace

std::vector<std::pair<int64_t, int64_t>> split_stages(const models::ModelConfig& config,
                                                      int64_t ranks) {
  const models::Architecture& arch = models::architecture(config.arch);
  const models::ModelConfig resolved = arch.resolve(config);
  const int64_t stages = arch.num_stages(resolved);
  require(ranks <= stages, "--dist pipeline: the model has " + std::to_string(stages) +
                               " stages, fewer than the " + std::to_string(ranks) + " workers");
  std::vector<double> cumulative = {0.0};
  for (int64_t i = 0; i < stages; ++i)
    cumulative.push_back(cumulative.back() +
                         static_cast<double>(arch.stage_forward_flops(resolved, i)));
  std::vector<std::pair<int64_t, int64_t>> ranges;
  int64_t begin = 0;
  for (int64_t r = 0; r < ranks; ++r) {
    int64_t end = stages;
    if (r + 1 < ranks) {
      // The cut closest to an equal share of the FLOPs, leaving a stage for every later rank.
      const double target = cumulative.back() * static_cast<double>(r + 1) / ranks;
      end = begin + 1;
      for (int64_t e = begin + 1; e <= stages - (ranks - 1 - r); ++e)
        if (std::abs(cumulative[e] - target) < std::abs(cumulative[end] - target)) end = e;
    }
    ranges.emplace_back(begin, end);
    begin = end;
  }
  return ranges;
}

PipelineTrainer::PipelineTrainer(ProcessGroup group, const models::ModelConfig& model,
                                 std::shared_ptr<train::Objective> objective,
                                 train::TrainConfig config, int64_t micro_batches,
                                 train::RunDirectory* run,
                                 std::vector<std::pair<int64_t, int64_t>> ranges)
    : group_(std::move(group)),
      ranges_(std::move(ranges)),
      objective_(std::move(objective)),
      config_(std::move(config)),
      micro_batches_(micro_batches),
      run_(run) {
  train::validate(config_);
  nonfinite_ = train::NonfiniteGuard(train::parse_nonfinite_policy(config_.nonfinite),
                                     config_.nonfinite_max_skips);
  scaler_ = train::LossScaler(config_.loss_scale);
  require(micro_batches_ >= 1, "--micro-batches must be at least 1");
  require(config_.device == "cpu", "--dist pipeline runs on cpu only for now");
  train::require_precision_supported(config_.precision, torch::Device(config_.device));
  if (group_.size() > 1) models::require_cuttable(model, "the pipeline");
  if (ranges_.empty()) ranges_ = split_stages(model, group_.size());
  require(static_cast<int64_t>(ranges_.size()) == group_.size(),
          "pipeline: one stage range per rank is needed");
  for (size_t i = 0; i < ranges_.size(); ++i)
    require(ranges_[i].first < ranges_[i].second &&
                ranges_[i].first == (i == 0 ? 0 : ranges_[i - 1].second),
            "pipeline: stage ranges must be non-empty and contiguous from stage 0");
  // Resolved: a config straight from the flags may leave defaults (a resnet's depth) unset.
  const models::Architecture& arch = models::architecture(model.arch);
  require(ranges_.back().second == arch.num_stages(arch.resolve(model)),
          "pipeline: the stage ranges must end at the model's last stage");
  const auto [begin, end] = ranges_[static_cast<size_t>(group_.rank())];
  first_ = group_.rank() == 0;
  last_ = group_.rank() + 1 == group_.size();
  // The whole model exists only while its share is copied, so every rank starts from exactly
  // the parameters a single worker with the same seed would have.
  const auto rng_lock = lock_global_generator();
  torch::manual_seed(config_.seed);
  models::StagedModel full = models::build_model(model);
  partition_ = models::build_model(model, begin, end);
  {
    torch::NoGradGuard no_grad;
    auto source = full->named_parameters();
    for (auto& item : partition_->named_parameters()) item.value().copy_(source[item.key()]);
    auto buffers = full->named_buffers();
    for (auto& item : partition_->named_buffers()) item.value().copy_(buffers[item.key()]);
  }
  optimizer_ = train::make_optimizer(partition_->parameters(), config_.optimizer);
}

torch::Tensor PipelineTrainer::forward_micro_batch(const torch::Tensor& inputs, int64_t tag,
                                                   bool keep_graph, torch::Tensor* stage_input) {
  torch::Tensor x = inputs;
  if (!first_) {
    x = torch::empty(with_batch(inputs.size(0), partition_->input_shape()));
    std::vector<torch::Tensor> buffer = {x};
    group_.recv(buffer, group_.rank() - 1, tag);
    if (keep_graph) x.requires_grad_(true);
  }
  if (stage_input != nullptr) *stage_input = x;
  torch::Tensor out;
  {
    train::AutocastScope autocast(config_.precision, torch::Device(config_.device));
    out = partition_->forward(x);
  }
  // Activations travel, and the loss is computed, in fp32 whatever the stage computed in.
  out = out.to(torch::kFloat);
  if (!last_) send(out.detach(), group_.rank() + 1, tag, keep_graph);
  return out;
}

void PipelineTrainer::send(const torch::Tensor& tensor, int64_t dst, int64_t tag, bool training) {
  std::vector<torch::Tensor> list = {tensor.contiguous()};
  group_.send(list, dst, tag);
  if (training) step_comm_bytes_ += tensor.numel() * static_cast<int64_t>(tensor.element_size());
}

double PipelineTrainer::train_step(const data::Batch& batch) {
  partition_->train();
  optimizer_->zero_grad();
  const int64_t n = batch.labels.size(0);
  const int64_t chunk = (n + micro_batches_ - 1) / micro_batches_;
  const std::vector<torch::Tensor> inputs =
      objective_->inputs(batch, /*training=*/true).split(chunk);
  const std::vector<torch::Tensor> labels = batch.labels.split(chunk);
  const int64_t count = static_cast<int64_t>(inputs.size());
  std::vector<torch::Tensor> stage_inputs(count), outputs(count), losses(count);
  double loss_sum = 0.0;
  for (int64_t m = 0; m < count; ++m) {  // all forwards first (GPipe)
    outputs[m] = forward_micro_batch(inputs[m], 2 * m, /*keep_graph=*/true, &stage_inputs[m]);
    if (last_) {
      const torch::Tensor loss = objective_->loss(outputs[m], data::Batch{inputs[m], labels[m]});
      const double share = static_cast<double>(labels[m].size(0)) / static_cast<double>(n);
      losses[m] = loss * share;  // the micro-batches' gradients add up to the batch mean's
      loss_sum += loss.item<double>() * share;
    }
  }
  for (int64_t m = count - 1; m >= 0; --m) {  // then all backwards, last micro-batch first
    if (last_) {
      scaler_.scale_loss(losses[m]).backward();
    } else {
      std::vector<torch::Tensor> grad = {torch::empty_like(outputs[m])};
      group_.recv(grad, group_.rank() + 1, 2 * m + 1);
      outputs[m].backward(grad[0]);
    }
    if (!first_) send(stage_inputs[m].grad(), group_.rank() - 1, 2 * m + 1, /*training=*/true);
  }
  scaler_.unscale(partition_->parameters());
  last_step_skipped_ = skip_nonfinite_step(loss_sum);
  if (last_step_skipped_) return loss_sum;
  clip_gradients();
  optimizer_->step();
  return loss_sum;
}

bool PipelineTrainer::skip_nonfinite_step(double loss) {
  const bool gradient_here = !train::gradients_finite(partition_->parameters());
  std::vector<double> ballot =
      train::nonfinite_ballot(gradient_here || !std::isfinite(loss), group_.rank());
  sum_over_ranks(group_, ballot);
  ballot_comm_bytes_ +=
      all_reduce_bytes(static_cast<int64_t>(sizeof(double) * ballot.size()), group_.size());
  const train::NonfiniteVote vote = train::count_ballots(ballot);
  if (!vote.any()) {
    scaler_.step_was_clean();
    return nonfinite_.skip({}, vote, "");  // ends a run of skipped steps
  }
  // The scaled gradients overflowed on some stage: every rank backs off and skips the step.
  if (scaler_.back_off(run_, epoch_ + 1, step_ + 1)) return true;
  const train::NonfiniteStep where{epoch_ + 1, step_ + 1, group_.rank(), loss, gradient_here};
  const std::string kept =
      run_ != nullptr ? "; " + run_->checkpoint_path() + " (if written) keeps the last good state"
                      : "";
  if (!nonfinite_.skip(where, vote, kept)) return false;
  if (run_ != nullptr)
    run_->log({{"type", "skipped_step"},
               {"epoch", where.epoch},
               {"step", where.step},
               {"reason", train::describe(where, vote)}});
  return true;
}

void PipelineTrainer::clip_gradients() {
  if (config_.clip_grad_norm <= 0) return;
  // The norm over the whole model, as a single worker would clip.
  double squares = 0.0;
  for (const auto& p : partition_->parameters())
    if (p.grad().defined()) squares += p.grad().pow(2).sum().item<double>();
  std::vector<double> total = {squares};
  sum_over_ranks(group_, total);
  const double norm = std::sqrt(total[0]);
  if (norm <= config_.clip_grad_norm) return;
  torch::NoGradGuard no_grad;
  for (auto& p : partition_->parameters())
    if (p.grad().defined()) p.grad().mul_(config_.clip_grad_norm / (norm + 1e-6));
}

train::EvalResult PipelineTrainer::evaluate(const data::Dataset& dataset) {
  torch::NoGradGuard no_grad;
  partition_->eval();
  data::BatchIterator batches(dataset, data::in_order(config_.eval_batch_size));
  // Loss sum, correct, samples, predictions (samples, or a sequence's positions) (last rank).
  std::vector<double> totals = {0.0, 0.0, 0.0, 0.0};
  data::Batch batch;
  int64_t index = 0;
  while (batches.next(batch)) {
    const torch::Tensor out = forward_micro_batch(objective_->inputs(batch, /*training=*/false),
                                                  2 * (index++), /*keep_graph=*/false, nullptr);
    if (!last_) continue;
    const double n = static_cast<double>(batch.labels.size(0));
    totals[0] += objective_->loss(out, batch).item<double>() * n;
    if (objective_->is_classification())
      totals[1] += static_cast<double>(out.argmax(-1).eq(batch.labels).sum().item<int64_t>());
    totals[2] += n;
    totals[3] += static_cast<double>(batch.labels.numel());
  }
  partition_->train();
  sum_over_ranks(group_, totals);
  train::EvalResult result;
  result.samples = static_cast<int64_t>(totals[2]);
  if (result.samples > 0) {
    result.loss = totals[0] / totals[2];
    result.accuracy = totals[1] / totals[3];
  }
  return result;
}

models::StagedModel PipelineTrainer::gather_full_model() {
  const auto& ranges = ranges_;
  if (!first_) {
    for (auto& [name, tensor] : named_state(*partition_)) {
      std::vector<torch::Tensor> list = {tensor.detach().contiguous()};
      group_.send(list, 0, 0);
    }
    return nullptr;
  }
  models::StagedModel full = models::build_model(partition_->config());
  torch::NoGradGuard no_grad;
  auto own = partition_->named_parameters();
  auto own_buffers = partition_->named_buffers();
  for (auto& [name, tensor] : named_state(*full)) {
    if (in_stages(name, ranges[0].first, ranges[0].second))
      tensor.copy_(own.contains(name) ? own[name] : own_buffers[name]);
  }
  for (int64_t r = 1; r < group_.size(); ++r)
    for (auto& [name, tensor] : named_state(*full)) {
      if (!in_stages(name, ranges[r].first, ranges[r].second)) continue;
      std::vector<torch::Tensor> list = {tensor.detach()};
      group_.recv(list, r, 0);
    }
  return full;
}

void PipelineTrainer::log_epoch(int64_t epoch, const train::EvalResult& train,
                                const std::optional<train::EvalResult>& test, double seconds,
                                double elapsed) {
  nlohmann::json record = {{"type", "epoch"},
                           {"epoch", epoch},
                           {"step", step_},
                           {"train_loss", train.loss},
                           {"epoch_seconds", seconds},
                           {"samples_per_second", static_cast<double>(train.samples) / seconds},
                           {"elapsed_seconds", elapsed}};
  char line[160];
  std::snprintf(line, sizeof line, "epoch %lld: train loss %.4f", static_cast<long long>(epoch),
                train.loss);
  std::string text = line;
  if (test) {
    record["test_loss"] = test->loss;
    record["test_accuracy"] = test->accuracy;
    std::snprintf(line, sizeof line, "  test loss %.4f  test acc %.2f%%", test->loss,
                  100.0 * test->accuracy);
    text += line;
  }
  if (run_ != nullptr) run_->log(record);
  if (!config_.quiet) std::fprintf(stderr, "%s\n", text.c_str());
}

void PipelineTrainer::save_restart_checkpoint() {
  const nlohmann::json meta = {
      {"model", models::to_json(partition_->config())},
      {"begin_stage", partition_->begin_stage()},
      {"end_stage", partition_->end_stage()},
      {"epoch", epochs_done_},
      {"step", step_},
      {"step_in_epoch", step_in_epoch_},
      {"epoch_loss_sum", epoch_totals_[0]},
      {"epoch_samples", epoch_totals_[1]},
      {"train_samples", samples_},
      {"train_seconds", train_seconds_},
      {"stochastic_generators", models::stochastic_layer_states(*partition_)},
      {"history", train::history_json(history_)},
      {"evaluation_seconds", evaluation_seconds_},
      {"elapsed_seconds", clock_.seconds()},
      {"loss_scale", scaler_.state()}};
  save_worker_checkpoint(group_, restart_dir_, *partition_, optimizer_.get(), meta);
}

void PipelineTrainer::resume() {
  require(!restart_dir_.empty(), "pipeline: resuming needs the run directory (--run-dir)");
  const std::string file = latest_worker_checkpoint(restart_dir_, group_.rank());
  require(!file.empty(), "pipeline: " + restart_dir_ +
                             "/restart holds no complete set of worker checkpoints to resume "
                             "from (they are taken with --checkpoint-every-steps, or every "
                             "--checkpoint-every epochs under tessera launch --max-restarts)");
  const nlohmann::json meta = train::load_checkpoint(file, *partition_, optimizer_.get());
  epochs_done_ = meta.at("epoch").get<int64_t>();
  step_ = meta.at("step").get<int64_t>();
  step_in_epoch_ = meta.at("step_in_epoch").get<int64_t>();
  epoch_totals_ = {meta.at("epoch_loss_sum").get<double>(), meta.at("epoch_samples").get<double>()};
  samples_ = meta.at("train_samples").get<int64_t>();
  train_seconds_ = meta.at("train_seconds").get<double>();
  resumed_generators_ = meta.at("stochastic_generators");
  history_ = train::history_from_json(meta.at("history"));
  evaluation_seconds_ = meta.value("evaluation_seconds", 0.0);
  clock_.add(meta.at("elapsed_seconds").get<double>());
  scaler_.load(meta.value("loss_scale", nlohmann::json()));
}

train::EvalResult PipelineTrainer::evaluate_into_history(const data::Dataset& test, double epoch,
                                                         int64_t samples) {
  // The time the evaluated weights were reached, before the evaluation's own cost.
  const double elapsed = clock_.seconds();
  const train::EvalResult result = evaluate(test);
  history_.push_back({epoch, samples, result, elapsed, evaluation_seconds_});
  evaluation_seconds_ += clock_.seconds() - elapsed;
  return result;
}

bool PipelineTrainer::inner_evaluation_due(int64_t steps_per_epoch) const {
  for (int64_t k = 1; k < config_.evals_per_epoch; ++k)
    if (step_in_epoch_ == steps_per_epoch * k / config_.evals_per_epoch) return true;
  return false;
}

void PipelineTrainer::run_epoch(data::BatchIterator& batches, int64_t epoch, int64_t total_steps,
                                const data::Dataset* test) {
  batches.start_epoch(epoch);
  // Rank 0's seed on every rank: they all see the same batches, and the layers, named by their
  // stage, draw distinct masks anyway.
  models::seed_stochastic_layers(*partition_,
                                 models::stochastic_layer_seed(config_.seed, 0, epoch));
  if (step_in_epoch_ > 0) {
    // Resumed mid-epoch: on with the batches and draws the uninterrupted run would have had.
    batches.skip(step_in_epoch_);
    models::restore_stochastic_layer_states(*partition_, resumed_generators_);
  } else {
    epoch_totals_ = {0.0, 0.0};
  }
  const int64_t steps_per_epoch = batches.batches_per_epoch();
  const bool restartable = !restart_dir_.empty() && config_.checkpoint_every_steps > 0;
  data::Batch batch;
  while (batches.next(batch)) {
    train::set_learning_rate(
        *optimizer_, train::scheduled_lr(config_.schedule, config_.optimizer.lr, step_, total_steps,
                                         steps_per_epoch));
    const int64_t n = batch.labels.size(0);
    const double loss = train_step(batch);
    if (!last_step_skipped_) {  // a skipped step trained on nothing
      epoch_totals_[0] += loss * static_cast<double>(n);
      epoch_totals_[1] += static_cast<double>(n);
    }
    ++step_;
    ++step_in_epoch_;
    inject_fault_at_step(group_.rank(), step_);
    if (test != nullptr && inner_evaluation_due(steps_per_epoch)) {
      const double started = clock_.seconds();
      evaluate_into_history(
          *test, static_cast<double>(epoch) + static_cast<double>(step_in_epoch_) / steps_per_epoch,
          samples_ + static_cast<int64_t>(epoch_totals_[1]));
      inner_eval_seconds_ += clock_.seconds() - started;
    }
    // The epoch's last step is checkpointed after the epoch's evaluation (fit).
    if (restartable && step_ % config_.checkpoint_every_steps == 0 &&
        step_in_epoch_ < steps_per_epoch)
      save_restart_checkpoint();
  }
  step_in_epoch_ = 0;
}

train::TrainSummary PipelineTrainer::fit(const data::Dataset& train, const data::Dataset* test) {
  metrics::install_memory_tracker();
  // As in Trainer::fit: training state is measured above what is live now, minus the partition.
  int64_t partition_bytes = 0;
  for (const auto& [name, tensor] : named_state(*partition_))
    partition_bytes += metrics::tensor_bytes(tensor);
  const int64_t baseline = metrics::live_tensor_bytes() - partition_bytes;
  const metrics::MeasurementScope measured;
  // Rank 0 alone knows whether there is a run directory; everyone must join the checkpoints.
  std::vector<double> has_run = {run_ != nullptr ? 1.0 : 0.0};
  sum_over_ranks(group_, has_run);

  data::BatchOptions options;  // every rank sees every batch: no sharding
  options.batch_size = config_.batch_size;
  options.drop_last = config_.drop_last;
  options.seed = config_.seed;
  options.augmentation = config_.augmentation;
  data::BatchIterator batches(train, options);
  const int64_t total_steps = config_.epochs * batches.batches_per_epoch();

  train::TrainSummary summary;
  metrics::Timer wall;
  const int64_t first_step = step_;  // above 0 when resumed
  for (int64_t epoch = epochs_done_; epoch < config_.epochs; ++epoch) {
    metrics::Timer epoch_timer;
    epoch_ = epoch;
    run_epoch(batches, epoch, total_steps, test);
    // Evaluations inside the epoch are not training time.
    const double seconds = epoch_timer.seconds() - inner_eval_seconds_;
    inner_eval_seconds_ = 0.0;
    train_seconds_ += seconds;
    samples_ += static_cast<int64_t>(epoch_totals_[1]);
    std::vector<double> totals = epoch_totals_;
    if (!last_) totals[0] = 0.0;  // only the last rank knows the loss
    sum_over_ranks(group_, totals);
    epoch_totals_ = {0.0, 0.0};
    epochs_done_ = epoch + 1;
    summary.last_train.samples = static_cast<int64_t>(totals[1]) / group_.size();
    summary.last_train.loss = totals[0] / std::max(1.0, summary.last_train.samples * 1.0);
    double elapsed = clock_.seconds();
    std::optional<train::EvalResult> result;
    if (test != nullptr) {
      result = evaluate_into_history(*test, static_cast<double>(epochs_done_), samples_);
      elapsed = history_.back().elapsed_seconds;
    }
    if (first_) log_epoch(epochs_done_, summary.last_train, result, seconds, elapsed);
    const bool checkpoint_now =
        (config_.checkpoint_every > 0 && epochs_done_ % config_.checkpoint_every == 0) ||
        (config_.checkpoint_every_steps > 0 && step_ % config_.checkpoint_every_steps == 0) ||
        epochs_done_ == config_.epochs;
    if (has_run[0] > 0 && checkpoint_now) {
      models::StagedModel full = gather_full_model();
      if (run_ != nullptr)
        train::save_checkpoint(run_->checkpoint_path(), *full, nullptr,
                               {{"model", models::to_json(full->config())},
                                {"begin_stage", 0},
                                {"end_stage", full->end_stage()},
                                {"epoch", epochs_done_},
                                {"step", step_},
                                {"train_samples", samples_},
                                {"train_seconds", train_seconds_}});
    }
    if (!restart_dir_.empty() && checkpoint_now) save_restart_checkpoint();
  }
  if (!history_.empty()) summary.test = history_.back().test;
  summary.history = history_;
  summary.epochs = config_.epochs;
  summary.steps = step_;
  summary.train_samples = samples_;
  summary.train_flops = metrics::training_flops(partition_->forward_flops()) * samples_;
  train::record_measurements(summary, measured, baseline, *partition_, *optimizer_);
  summary.nonfinite_skipped_steps = nonfinite_.skipped();
  summary.loss_scale = scaler_.summary();
  summary.wall_seconds = wall.seconds();
  summary.train_seconds = train_seconds_;
  summary.precision = config_.precision;
  summary.samples_per_second = train_seconds_ > 0 ? samples_ / train_seconds_ : 0.0;
  summary.extra = objective_->extra_metrics(
      summary.test.samples > 0 ? std::optional<double>(summary.test.loss) : std::nullopt,
      summary.samples_per_second);
  // A resumed run's per-step figures (bytes, seconds) cover only the steps this process took.
  if (first_step > 0) summary.extra["resumed_from_step"] = first_step;
  return summary;
}

}  // namespace tessera::dist
