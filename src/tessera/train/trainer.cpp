#include "tessera/train/trainer.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "tessera/core/error.h"
#include "tessera/core/fault_injection.h"
#include "tessera/metrics/flops.h"
#include "tessera/metrics/language_model.h"
#include "tessera/metrics/measurement_scope.h"
#include "tessera/metrics/memory_tracker.h"
#include "tessera/metrics/progress.h"
#include "tessera/metrics/timer.h"
#include "tessera/models/regularizers.h"
#include "tessera/train/autocast_scope.h"
#include "tessera/train/checkpoint.h"

namespace tessera::train {

nlohmann::json to_json(const TrainConfig& config) {
  return {{"epochs", config.epochs},
          {"batch_size", config.batch_size},
          {"eval_batch_size", config.eval_batch_size},
          {"seed", config.seed},
          {"optimizer", to_json(config.optimizer)},
          {"schedule", to_json(config.schedule)},
          {"clip_grad_norm", config.clip_grad_norm},
          {"checkpoint_every", config.checkpoint_every},
          {"checkpoint_every_steps", config.checkpoint_every_steps},
          {"log_every", config.log_every},
          {"evals_per_epoch", config.evals_per_epoch},
          {"drop_last", config.drop_last},
          {"nonfinite", config.nonfinite},
          {"nonfinite_max_skips", config.nonfinite_max_skips},
          {"augment_crop_padding", config.augmentation.crop_padding},
          {"augment_flip", config.augmentation.horizontal_flip},
          {"device", config.device},
          {"precision", precision_name(config.precision)},
          {"loss_scale", to_json(config.loss_scale)},
          {"rank", config.rank},
          {"world_size", config.world_size}};
}

void validate(const TrainConfig& config) {
  require(config.epochs >= 0, "--epochs must be non-negative");
  require(config.batch_size >= 1, "--batch-size must be at least 1");
  require(config.eval_batch_size >= 1, "--eval-batch-size must be at least 1");
  require(config.clip_grad_norm >= 0, "--clip-grad-norm must be non-negative");
  require(config.checkpoint_every >= 0, "--checkpoint-every must be non-negative");
  require(config.checkpoint_every_steps >= 0, "--checkpoint-every-steps must be non-negative");
  require(config.log_every >= 1, "--log-every must be at least 1");
  require(config.evals_per_epoch >= 1, "--evals-per-epoch must be at least 1");
  require(config.augmentation.crop_padding >= 0, "--augment-crop must be non-negative");
  parse_nonfinite_policy(config.nonfinite);
  require(config.nonfinite_max_skips >= 1, "--nonfinite-max-skips must be at least 1");
  validate(config.optimizer);
  validate(config.schedule);
}

nlohmann::json history_json(const std::vector<EvalPoint>& history) {
  nlohmann::json points = nlohmann::json::array();
  for (const auto& point : history)
    points.push_back({{"epoch", point.epoch},
                      {"train_samples", point.train_samples},
                      {"test_accuracy", point.test.accuracy},
                      {"test_loss", point.test.loss},
                      {"test_samples", point.test.samples},
                      {"elapsed_seconds", point.elapsed_seconds},
                      {"evaluation_seconds", point.evaluation_seconds}});
  return points;
}

std::vector<EvalPoint> history_from_json(const nlohmann::json& json) {
  std::vector<EvalPoint> history;
  for (const auto& point : json) {
    EvalPoint p;
    p.epoch = point.at("epoch").get<double>();
    p.train_samples = point.at("train_samples").get<int64_t>();
    p.test.accuracy = point.at("test_accuracy").get<double>();
    p.test.loss = point.at("test_loss").get<double>();
    p.test.samples = point.value("test_samples", int64_t{0});
    p.elapsed_seconds = point.value("elapsed_seconds", 0.0);
    p.evaluation_seconds = point.value("evaluation_seconds", 0.0);
    history.push_back(p);
  }
  return history;
}

namespace {
nlohmann::json summary_fields(const TrainSummary& s) {
  return {{"test_accuracy", s.test.accuracy},
          {"test_loss", s.test.loss},
          {"train_accuracy", s.last_train.accuracy},
          {"train_loss", s.last_train.loss},
          {"epochs", s.epochs},
          {"steps", s.steps},
          {"train_samples", s.train_samples},
          {"train_flops", s.train_flops},
          {"peak_tensor_bytes", s.peak_tensor_bytes},
          {"train_peak_tensor_bytes", s.train_peak_tensor_bytes},
          {"eval_peak_tensor_bytes", s.eval_peak_tensor_bytes},
          {"peak_rss_bytes", s.peak_rss_bytes},
          {"param_bytes", s.param_bytes},
          {"grad_bytes", s.grad_bytes},
          {"optimizer_state_bytes", s.optimizer_state_bytes},
          {"comm_bytes", s.comm_bytes},
          {"nonfinite_skipped_steps", s.nonfinite_skipped_steps},
          {"loss_scale", s.loss_scale},
          {"wall_seconds", s.wall_seconds},
          {"train_seconds", s.train_seconds},
          {"samples_per_second", s.samples_per_second},
          {"precision", precision_name(s.precision)},
          {"matmul_kernel", s.matmul_kernel},
          {"history", history_json(s.history)}};
}
}  // namespace

nlohmann::json to_json(const TrainSummary& s) {
  nlohmann::json json = summary_fields(s);
  if (s.extra.is_object()) json.update(s.extra);  // the objective's figures
  // A language model's test figures follow test_loss, which a caller may have set after fit()
  // (SDP: the assembled model's evaluation).
  if (s.extra.contains("seq_len") && s.test.samples > 0) {
    json["test_bits_per_byte"] = metrics::bits_per_token(s.test.loss);
    json["test_perplexity"] = metrics::perplexity(s.test.loss);
  }
  return json;
}

torch::Device parse_device(const std::string& name) {
  require(name == "cpu" || name.rfind("cuda", 0) == 0,
          "unknown device '" + name + "' (known: cpu, cuda, cuda:N)");
  if (name != "cpu")
    require(torch::cuda::is_available(),
            "--device " + name + ": this libtorch build has no CUDA or no GPU is visible");
  try {
    return torch::Device(name);
  } catch (const c10::Error&) {
    throw UsageError("invalid device '" + name + "'");
  }
}

namespace {
using metrics::tensor_bytes;

int64_t state_bytes(torch::nn::Module& module) {
  int64_t bytes = 0;
  for (const auto& p : module.parameters()) bytes += tensor_bytes(p);
  for (const auto& b : module.buffers()) bytes += tensor_bytes(b);
  return bytes;
}

const char* tracker_device(const torch::Device& device) {
  return device.is_cuda() ? "cuda" : "cpu";
}
}  // namespace

Trainer::Trainer(models::StagedModel model, std::shared_ptr<Objective> objective,
                 TrainConfig config, RunDirectory* run)
    : model_(std::move(model)),
      objective_(std::move(objective)),
      config_(std::move(config)),
      run_(run),
      device_(parse_device(config_.device)),
      nonfinite_(parse_nonfinite_policy(config_.nonfinite), config_.nonfinite_max_skips),
      scaler_(config_.loss_scale) {
  validate(config_);
  require_precision_supported(config_.precision, device_);
  model_->to(device_);
  trained_ = model_->parameters();
  optimizer_ = make_optimizer(trained_, config_.optimizer);
}

void Trainer::set_trained_parameters(std::vector<torch::Tensor> parameters) {
  const std::vector<torch::Tensor> own = model_->parameters();
  copies_.clear();
  for (const auto& p : parameters) {
    const bool in_model =
        std::any_of(own.begin(), own.end(), [&](const torch::Tensor& q) { return q.is_same(p); });
    if (!in_model) copies_.push_back(p);
  }
  trained_ = std::move(parameters);
  optimizer_ = make_optimizer(trained_, config_.optimizer);
}

void Trainer::replace_model(models::StagedModel model,
                            std::unique_ptr<torch::optim::Optimizer> optimizer) {
  model_ = std::move(model);
  copies_.clear();
  trained_ = model_->parameters();
  optimizer_ = std::move(optimizer);
}

nlohmann::json Trainer::checkpoint_meta() const {
  return {{"model", models::to_json(model_->config())},
          {"begin_stage", model_->begin_stage()},
          {"end_stage", model_->end_stage()},
          {"epoch", epochs_done_},
          {"step", step_},
          {"train_samples", train_samples_},
          {"train_seconds", train_seconds_},
          {"step_in_epoch", step_in_epoch_},
          {"epoch_loss_sum", epoch_loss_sum_},
          {"epoch_samples", epoch_samples_},
          {"next_eval", next_eval_},
          {"stochastic_generators", models::stochastic_layer_states(*model_)},
          {"history", history_json(history_)},
          {"evaluation_seconds", evaluation_seconds_},
          {"elapsed_seconds", clock_.seconds()},
          {"loss_scale", scaler_.state()}};
}

int64_t Trainer::resume() {
  if (run_ == nullptr) throw UsageError("--resume needs a run directory");
  return resume(run_->checkpoint_path());
}

int64_t Trainer::resume(const std::string& checkpoint_path) {
  const nlohmann::json meta = load_checkpoint(checkpoint_path, *model_, optimizer_.get());
  return resume_from_meta(meta);
}

int64_t Trainer::resume_from_meta(const nlohmann::json& meta) {
  epochs_done_ = meta.at("epoch").get<int64_t>();
  step_ = meta.at("step").get<int64_t>();
  train_samples_ = meta.value("train_samples", int64_t{0});
  train_seconds_ = meta.value("train_seconds", 0.0);
  if (run_ != nullptr) run_->drop_records_after(step_);
  // Checkpoints written before mid-epoch checkpoints existed end at an epoch's end.
  step_in_epoch_ = meta.value("step_in_epoch", int64_t{0});
  epoch_loss_sum_ = meta.value("epoch_loss_sum", 0.0);
  epoch_samples_ = meta.value("epoch_samples", int64_t{0});
  next_eval_ = meta.value("next_eval", int64_t{1});
  resumed_generators_ = meta.value("stochastic_generators", nlohmann::json::object());
  if (meta.contains("stochastic_generators_by_rank")) {
    const nlohmann::json& by_rank = meta.at("stochastic_generators_by_rank");
    require(step_in_epoch_ == 0 || static_cast<int64_t>(by_rank.size()) == config_.world_size,
            "resuming mid-epoch needs the checkpoint's number of workers (" +
                std::to_string(by_rank.size()) + "), not " + std::to_string(config_.world_size));
    if (config_.rank < static_cast<int64_t>(by_rank.size()))
      resumed_generators_ = by_rank.at(static_cast<size_t>(config_.rank));
  }
  history_ = history_from_json(meta.value("history", nlohmann::json::array()));
  evaluation_seconds_ = meta.value("evaluation_seconds", 0.0);
  clock_.add(meta.value("elapsed_seconds", 0.0));
  scaler_.load(meta.value("loss_scale", nlohmann::json()));
  return epochs_done_;
}

torch::Tensor Trainer::forward(const data::Batch& batch, bool training) {
  torch::Tensor outputs;
  {
    AutocastScope autocast(config_.precision, device_);
    outputs = model_->forward(objective_->inputs(batch, training));
  }
  // The loss and its reductions in fp32, whatever the model computed in.
  return outputs.to(torch::kFloat);
}

double Trainer::train_step(const data::Batch& batch) {
  model_->train();
  release_gradients();
  double loss_value = 0.0;
  if (batch.labels.defined()) {
    torch::Tensor outputs = forward(batch, /*training=*/true);
    torch::Tensor loss = objective_->loss(outputs, batch);
    if (sync_) {
      // DDP needs to know before backward (its all-reduce runs during it); alone, reading the
      // loss after backward keeps a GPU busy meanwhile.
      loss_value = loss.item<double>();
      sync_->before_backward(batch.labels.size(0));
      if (!std::isfinite(loss_value)) sync_->mark_nonfinite_loss();
      scaler_.scale_loss(loss).backward();
    } else {
      scaler_.scale_loss(loss).backward();
      loss_value = loss.item<double>();
    }
  } else {
    require(sync_ != nullptr, "train_step: empty batch");
    sync_->before_backward(0);
  }
  zero_missing_gradients();
  if (sync_) sync_->after_backward();
  scaler_.unscale(trained_);
  last_step_skipped_ = skip_nonfinite_step(loss_value);
  if (last_step_skipped_) return loss_value;
  if (config_.clip_grad_norm > 0) {
    if (sync_)
      sync_->clip_gradients(trained_, config_.clip_grad_norm);
    else
      torch::nn::utils::clip_grad_norm_(trained_, config_.clip_grad_norm);
  }
  optimizer_->step();
  if (sync_) sync_->after_step();
  return loss_value;
}

void Trainer::release_gradients() {
  for (auto& p : trained_) p.mutable_grad().reset();
}

void Trainer::zero_missing_gradients() {
  for (auto& p : trained_)
    if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
}

bool Trainer::skip_nonfinite_step(double loss) {
  const bool gradient_here = !gradients_finite(trained_);
  const bool here = gradient_here || !std::isfinite(loss);
  const NonfiniteVote vote = sync_ ? sync_->agree_nonfinite(here, config_.rank)
                                   : NonfiniteVote{here ? 1 : 0, here ? config_.rank : -1};
  if (!vote.any()) {
    scaler_.step_was_clean();
    return nonfinite_.skip({}, vote, "");  // ends a run of skipped steps
  }
  // The scaled gradients overflowed: expected now and then, the step is skipped on every worker.
  if (scaler_.back_off(run_, epoch_ + 1, step_ + 1)) return true;
  const NonfiniteStep where{epoch_ + 1, step_ + 1, config_.rank, loss, gradient_here};
  if (!nonfinite_.skip(where, vote, kept_after_stop())) return false;
  if (run_ != nullptr)
    run_->log({{"type", "skipped_step"},
               {"epoch", where.epoch},
               {"step", where.step},
               {"reason", describe(where, vote)}});
  if (!config_.quiet)
    std::fprintf(stderr, "\nskipped the update: %s\n", describe(where, vote).c_str());
  return true;
}

std::string Trainer::kept_after_stop() const {
  if (run_ == nullptr) return "";
  if (!std::filesystem::exists(run_->checkpoint_path()))
    return "; no checkpoint had been written yet";
  return "; " + run_->checkpoint_path() + " keeps the last good state";
}

EvalResult Trainer::evaluate(const data::Dataset& dataset, const OutputCombiner& combine_outputs) {
  torch::NoGradGuard no_grad;
  model_->eval();
  data::BatchIterator batches(dataset, data::in_order(config_.eval_batch_size));
  double loss_sum = 0.0;
  int64_t correct = 0;
  int64_t predictions = 0;  // samples, or positions of sequences
  EvalResult result;
  data::Batch batch;
  while (batches.next(batch)) {
    batch.inputs = batch.inputs.to(device_);
    batch.labels = batch.labels.to(device_);
    torch::Tensor outputs = forward(batch, /*training=*/false);
    if (combine_outputs) outputs = combine_outputs(outputs, batch);
    const int64_t n = batch.labels.size(0);
    loss_sum += objective_->loss(outputs, batch).item<double>() * static_cast<double>(n);
    if (objective_->is_classification())
      correct += outputs.argmax(-1).eq(batch.labels).sum().item<int64_t>();
    predictions += batch.labels.numel();
    result.samples += n;
  }
  model_->train();
  if (result.samples > 0) {
    result.loss = loss_sum / static_cast<double>(result.samples);
    result.accuracy = static_cast<double>(correct) / static_cast<double>(predictions);
  }
  return result;
}

torch::Tensor Trainer::predict(const data::Batch& batch) {
  torch::NoGradGuard no_grad;
  const bool training = model_->is_training();
  model_->eval();
  torch::Tensor outputs = forward(batch, /*training=*/false);
  model_->train(training);
  return outputs;
}

EvalPoint Trainer::evaluate_point(const data::Dataset& test, double epoch, int64_t samples) {
  // The time the evaluated weights were reached, before the evaluation's own cost.
  const double elapsed = clock_.seconds();
  EvalPoint point{epoch, samples, {}, elapsed, evaluation_seconds_};
  // The evaluation's memory is measured apart from training's (TrainSummary): the training
  // stretch closes here and a new one opens after it.
  if (training_stretch_) {
    train_peak_ = std::max(train_peak_, training_stretch_->peak_tensor_bytes());
    training_stretch_.reset();
  }
  {
    const metrics::MeasurementScope evaluation(tracker_device(device_));
    point.test = test_evaluator_ ? test_evaluator_(test) : evaluate(test);
    eval_peak_ = std::max(eval_peak_, evaluation.peak_tensor_bytes());
  }
  training_stretch_.emplace(tracker_device(device_));
  if (on_evaluation_) on_evaluation_(point);
  evaluation_seconds_ += clock_.seconds() - elapsed;
  return point;
}

bool Trainer::checkpoint_due_at_step() const {
  return config_.checkpoint_every_steps > 0 && step_ % config_.checkpoint_every_steps == 0;
}

namespace {
// Every worker's `states` (a JSON value), in rank order, through the WorkerSync's sum: each worker
// adds its text's bytes at its own offset. Data-parallel workers share one checkpoint, written by
// rank 0, but each draws its own dropout masks.
nlohmann::json gather_by_rank(WorkerSync& sync, const nlohmann::json& states, int64_t rank,
                              int64_t world) {
  const std::string text = states.dump();
  std::vector<double> lengths(static_cast<size_t>(world), 0.0);
  lengths[static_cast<size_t>(rank)] = static_cast<double>(text.size());
  sync.sum(lengths);
  std::vector<size_t> offsets = {0};
  for (const double length : lengths)
    offsets.push_back(offsets.back() + static_cast<size_t>(length));
  std::vector<double> bytes(offsets.back(), 0.0);
  for (size_t i = 0; i < text.size(); ++i)
    bytes[offsets[static_cast<size_t>(rank)] + i] = static_cast<unsigned char>(text[i]);
  sync.sum(bytes);
  nlohmann::json all = nlohmann::json::array();
  for (size_t r = 0; r < lengths.size(); ++r) {
    std::string theirs;
    for (size_t i = offsets[r]; i < offsets[r + 1]; ++i)
      theirs += static_cast<char>(static_cast<unsigned char>(bytes[i]));
    all.push_back(nlohmann::json::parse(theirs));
  }
  return all;
}
}  // namespace

void Trainer::save() {
  nlohmann::json meta = checkpoint_meta();
  // One checkpoint for all the workers of a WorkerSync (DDP): it holds every rank's generators.
  if (sync_ && !checkpoint_saver_ && !meta["stochastic_generators"].empty())
    meta["stochastic_generators_by_rank"] =
        gather_by_rank(*sync_, meta["stochastic_generators"], config_.rank, config_.world_size);
  if (checkpoint_saver_)
    checkpoint_saver_(meta);
  else if (run_ != nullptr)
    save_checkpoint(run_->checkpoint_path(), *model_, optimizer_.get(), meta);
}

EvalResult Trainer::run_epoch(data::BatchIterator& batches, int64_t epoch, int64_t steps_per_epoch,
                              int64_t total_steps, const data::Dataset* test) {
  metrics::Progress progress(stderr, config_.log_every);
  // Ranks other than 0 are quiet, but a launcher that draws every rank's progress live
  // (progress_board.h) gets theirs as records.
  const bool show_progress =
      !config_.quiet || (config_.rank > 0 && progress.mode() == metrics::ProgressMode::Records);
  if (show_progress) progress.start_epoch(epoch + 1, config_.epochs, steps_per_epoch);
  batches.start_epoch(epoch);
  models::seed_stochastic_layers(*model_,
                                 models::stochastic_layer_seed(config_.seed, config_.rank, epoch));
  epoch_ = epoch;
  if (step_in_epoch_ > 0) {
    // Resumed from a mid-epoch checkpoint: the epoch goes on where it stopped, with the batches
    // and the stochastic layers' draws the uninterrupted run would have had.
    batches.skip(step_in_epoch_);
    models::restore_stochastic_layer_states(*model_, resumed_generators_);
  } else {
    epoch_loss_sum_ = 0.0;
    epoch_samples_ = 0;
    next_eval_ = 1;  // evaluations inside the epoch: after steps * k / evals_per_epoch
  }
  resumed_generators_ = nlohmann::json::object();
  EvalResult result;
  const int64_t steps = steps_per_epoch;
  metrics::Timer epoch_timer;
  data::Batch batch;
  // With a WorkerSync every worker takes steps_per_epoch steps, with or without a batch left.
  while (step_in_epoch_ < steps_per_epoch) {
    if (!batches.next(batch)) batch = data::Batch{};
    const double lr =
        scheduled_lr(config_.schedule, config_.optimizer.lr, step_, total_steps, steps_per_epoch);
    set_learning_rate(*optimizer_, lr);
    if (batch.labels.defined()) {
      batch.inputs = batch.inputs.to(device_);
      batch.labels = batch.labels.to(device_);
    }
    const double loss = train_step(batch);
    // A skipped step trained on nothing: its samples and loss stay out of the epoch's figures.
    const int64_t n = batch.labels.defined() && !last_step_skipped_ ? batch.labels.size(0) : 0;
    if (!last_step_skipped_) epoch_loss_sum_ += loss * static_cast<double>(n);
    epoch_samples_ += n;
    ++step_;
    ++step_in_epoch_;
    inject_fault_at_step(config_.rank, step_);
    if (after_step_) after_step_({step_, total_steps, train_samples_ + epoch_samples_});
    const double rate = static_cast<double>(epoch_samples_) / epoch_timer.seconds();
    if (show_progress) progress.step(step_in_epoch_, loss, rate);
    if (run_ != nullptr && step_ % config_.log_every == 0 && !last_step_skipped_)
      run_->log({{"type", "step"},
                 {"epoch", epoch + 1},
                 {"step", step_},
                 {"loss", loss},
                 {"lr", lr},
                 {"samples_per_second", rate}});
    if (test != nullptr && next_eval_ < config_.evals_per_epoch &&
        step_in_epoch_ == steps * next_eval_ / config_.evals_per_epoch) {
      const double fraction = static_cast<double>(step_in_epoch_) / static_cast<double>(steps);
      metrics::Timer eval_timer;
      history_.push_back(evaluate_point(*test, static_cast<double>(epoch) + fraction,
                                        train_samples_ + epoch_samples_));
      inner_eval_seconds_ += eval_timer.seconds();
      ++next_eval_;
    }
    // The epoch's last step is checkpointed after the epoch's evaluation (fit).
    if (checkpoint_due_at_step() && step_in_epoch_ < steps_per_epoch) save();
  }
  result.samples = epoch_samples_;
  if (sync_) {
    // The epoch's loss over every worker's samples; result.samples stays this worker's.
    std::vector<double> totals = {epoch_loss_sum_, static_cast<double>(epoch_samples_)};
    sync_->sum(totals);
    if (totals[1] > 0) result.loss = totals[0] / totals[1];
  } else if (epoch_samples_ > 0) {
    result.loss = epoch_loss_sum_ / static_cast<double>(epoch_samples_);
  }
  step_in_epoch_ = 0;
  epoch_loss_sum_ = 0.0;
  epoch_samples_ = 0;
  next_eval_ = 1;
  return result;
}

void Trainer::log_epoch(int64_t epoch, const EvalResult& train,
                        const std::optional<EvalResult>& test, double seconds,
                        double samples_per_second, double elapsed_seconds) {
  nlohmann::json record = {{"type", "epoch"},
                           {"epoch", epoch},
                           {"step", step_},
                           {"train_loss", train.loss},
                           {"epoch_seconds", seconds},
                           {"samples_per_second", samples_per_second},
                           {"elapsed_seconds", elapsed_seconds}};
  std::string line =
      "epoch " + std::to_string(epoch) + ": train loss " + std::to_string(train.loss).substr(0, 6);
  const nlohmann::json extra = objective_->extra_metrics(
      test ? std::optional<double>(test->loss) : std::nullopt, samples_per_second);
  record.update(extra);
  if (test) {
    record["test_loss"] = test->loss;
    record["test_accuracy"] = test->accuracy;
    line += "  test loss " + std::to_string(test->loss).substr(0, 6);
    if (objective_->is_classification()) {
      char accuracy[32];
      std::snprintf(accuracy, sizeof accuracy, "  test acc %.2f%%", 100.0 * test->accuracy);
      line += accuracy;
    }
    if (extra.contains("test_bits_per_byte")) {
      char bits[48];
      std::snprintf(bits, sizeof bits, "  %.3f bits/byte",
                    extra["test_bits_per_byte"].get<double>());
      line += bits;
    }
  }
  if (run_ != nullptr) run_->log(record);
  if (!config_.quiet) {
    metrics::Progress progress(stderr, config_.log_every);
    progress.end_epoch(line);
  }
}

void record_measurements(TrainSummary& summary, const metrics::MeasurementScope& measured,
                         int64_t baseline, torch::nn::Module& model,
                         torch::optim::Optimizer& optimizer,
                         const std::vector<torch::Tensor>& copies) {
  summary.peak_tensor_bytes = measured.peak_tensor_bytes() - baseline;
  summary.peak_rss_bytes = metrics::peak_rss_bytes();
  summary.param_bytes = models::parameter_bytes(model);
  for (const auto& p : model.parameters()) summary.grad_bytes += tensor_bytes(p.grad());
  for (const auto& c : copies) summary.grad_bytes += tensor_bytes(c.grad());
  summary.optimizer_state_bytes = optimizer_state_bytes(optimizer);
  summary.comm_bytes = measured.comm_bytes();
}

TrainSummary Trainer::fit(const data::Dataset& train, const data::Dataset* test,
                          int64_t until_epoch) {
  const int64_t last_epoch =
      until_epoch > 0 ? std::min(until_epoch, config_.epochs) : config_.epochs;
  metrics::install_memory_tracker();
  const char* memory_device = tracker_device(device_);
  // Training state is measured from here: the model's own tensors (and copies the optimizer trains
  // instead, see set_trained_parameters) are already allocated, the data set is not training
  // state, so the baseline is what is live now minus the model and the copies.
  int64_t copy_bytes = 0;
  for (const auto& c : copies_) copy_bytes += tensor_bytes(c);
  const int64_t baseline =
      metrics::live_tensor_bytes(memory_device) - state_bytes(*model_) - copy_bytes;
  // Peak and bytes of this fit, including whatever an after_step callback measures of its own.
  const metrics::MeasurementScope measured(memory_device);
  training_stretch_.emplace(memory_device);
  train_peak_ = eval_peak_ = 0;

  data::BatchOptions options;
  options.batch_size = config_.batch_size;
  options.shuffle = true;
  options.drop_last = config_.drop_last;
  options.seed = config_.seed;
  options.rank = config_.rank;
  options.world_size = config_.world_size;
  options.augmentation = config_.augmentation;
  data::BatchIterator batches(train, options);
  if (sync_) sync_->start(*model_);
  const int64_t steps_per_epoch =
      sync_ ? sync_->agree_steps(batches.batches_per_epoch()) : batches.batches_per_epoch();
  const int64_t total_steps = config_.epochs * steps_per_epoch;

  TrainSummary summary;
  metrics::Timer wall;
  const int64_t first_step = step_;  // above 0 when resumed
  std::optional<EvalResult> last_test;
  for (int64_t epoch = epochs_done_; epoch < last_epoch; ++epoch) {
    metrics::Timer epoch_timer;
    summary.last_train = run_epoch(batches, epoch, steps_per_epoch, total_steps, test);
    // Evaluations inside the epoch are not training time.
    const double seconds = epoch_timer.seconds() - inner_eval_seconds_;
    inner_eval_seconds_ = 0.0;
    train_seconds_ += seconds;
    train_samples_ += summary.last_train.samples;
    epochs_done_ = epoch + 1;
    double elapsed = clock_.seconds();
    if (test != nullptr) {
      history_.push_back(evaluate_point(*test, static_cast<double>(epochs_done_), train_samples_));
      last_test = history_.back().test;
      elapsed = history_.back().elapsed_seconds;
    }
    log_epoch(epochs_done_, summary.last_train, last_test, seconds,
              static_cast<double>(summary.last_train.samples) / seconds, elapsed);
    const bool checkpoint_now =
        (config_.checkpoint_every > 0 && epochs_done_ % config_.checkpoint_every == 0) ||
        checkpoint_due_at_step() || epochs_done_ == last_epoch;
    if (checkpoint_now) save();
  }
  summary.history = history_;
  if (test != nullptr && !last_test)
    last_test = test_evaluator_ ? test_evaluator_(*test) : evaluate(*test);
  if (last_test) summary.test = *last_test;

  summary.epochs = epochs_done_;
  summary.steps = step_;
  summary.train_samples = train_samples_;
  summary.train_flops = metrics::training_flops(model_->forward_flops()) * train_samples_;
  record_measurements(summary, measured, baseline, *model_, *optimizer_, copies_);
  train_peak_ = std::max(train_peak_, training_stretch_->peak_tensor_bytes());
  training_stretch_.reset();
  summary.train_peak_tensor_bytes = train_peak_ - baseline;
  summary.eval_peak_tensor_bytes = eval_peak_ > 0 ? eval_peak_ - baseline : 0;
  summary.nonfinite_skipped_steps = nonfinite_.skipped();
  summary.loss_scale = scaler_.summary();
  summary.wall_seconds = wall.seconds();
  summary.train_seconds = train_seconds_;
  summary.precision = config_.precision;
  summary.matmul_kernel = matmul_kernel(config_.precision, device_);
  summary.samples_per_second =
      train_seconds_ > 0 ? static_cast<double>(train_samples_) / train_seconds_ : 0.0;
  summary.extra =
      objective_->extra_metrics(last_test ? std::optional<double>(summary.test.loss) : std::nullopt,
                                summary.samples_per_second);
  // A resumed run's per-step figures (bytes, seconds) cover only the steps this process took.
  if (first_step > 0) summary.extra["resumed_from_step"] = first_step;
  return summary;
}

}  // namespace tessera::train
