// The training loop: epochs of optimizer steps over a BatchIterator, evaluation after every epoch,
// learning-rate schedule, gradient clipping, checkpoints and resume, progress and metrics.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "tessera/data/batches.h"
#include "tessera/data/dataset.h"
#include "tessera/metrics/measurement_scope.h"
#include "tessera/metrics/run_clock.h"
#include "tessera/models/staged_model.h"
#include "tessera/train/loss_scaler.h"
#include "tessera/train/objective.h"
#include "tessera/train/optimizer.h"
#include "tessera/train/precision.h"
#include "tessera/train/run_directory.h"
#include "tessera/train/schedule.h"
#include "tessera/train/worker_sync.h"

namespace tessera::train {

struct TrainConfig {
  int64_t epochs = 10;
  int64_t batch_size = 128;
  int64_t eval_batch_size = 1000;
  uint64_t seed = 0;
  OptimizerConfig optimizer;
  ScheduleConfig schedule;
  double clip_grad_norm = 0.0;         // 0: no clipping
  int64_t checkpoint_every = 1;        // epochs; 0: only at the end
  int64_t checkpoint_every_steps = 0;  // also every K optimizer steps (mid-epoch); 0: off
  int64_t log_every = 100;             // steps between metrics.jsonl step records / log lines
  int64_t evals_per_epoch = 1;  // test evaluations per epoch, evenly spaced (the last at its end)
  bool drop_last = false;
  std::string nonfinite = "stop";    // a non-finite loss or gradient: stop | skip (nonfinite.h)
  int64_t nonfinite_max_skips = 10;  // skip: more non-finite steps in a row than this stop the run
  data::Augmentation augmentation;
  std::string device = "cpu";
  // bf16/fp16: forward under autocast (AutocastScope), loss, master weights and optimizer state
  // fp32.
  Precision precision = Precision::Fp32;
  LossScaleConfig loss_scale;  // dynamic: scaled backward, overflowed steps skipped (loss_scaler.h)
  int64_t rank = 0;            // data shard of this worker
  int64_t world_size = 1;
  bool quiet = false;  // no progress output
};

nlohmann::json to_json(const TrainConfig& config);
void validate(const TrainConfig& config);

struct EvalResult {
  double loss = 0.0;
  double accuracy = 0.0;  // top-1, in [0, 1]; 0 for non-classification objectives
  int64_t samples = 0;
};

// One evaluation on the test set during training: how far training had got, and the result.
struct EvalPoint {
  double epoch = 0.0;         // fractional: 2.5 is half-way through the third epoch
  int64_t train_samples = 0;  // samples trained on so far (the run's, incl. a resumed part)
  EvalResult test;
  double elapsed_seconds = 0.0;  // wall seconds since the run started (metrics::RunClock)
  // Of those, the seconds spent in the run's earlier evaluations: elapsed_seconds minus this is
  // the time to this point without them (runs evaluating at different rates compare fairly).
  double evaluation_seconds = 0.0;
};

// Everything measured over a fit(); becomes summary.json.
struct TrainSummary {
  EvalResult test;
  EvalResult last_train;  // mean loss / accuracy of the last training epoch
  int64_t epochs = 0;
  int64_t steps = 0;
  int64_t train_samples = 0;  // samples trained on by this worker (this run, incl. resumed part)
  int64_t train_flops = 0;    // analytic, forward + backward, for train_samples
  int64_t peak_tensor_bytes = 0;  // measured, above the live bytes when training started
  // The same peak split: while training (steps, synchronisation, plan changes) and while
  // evaluating during fit (SDP: rank 0 assembling and running the full model; 0: no evaluation).
  int64_t train_peak_tensor_bytes = 0;
  int64_t eval_peak_tensor_bytes = 0;
  int64_t peak_rss_bytes = 0;
  int64_t param_bytes = 0;
  int64_t grad_bytes = 0;
  int64_t optimizer_state_bytes = 0;
  int64_t comm_bytes = 0;
  int64_t nonfinite_skipped_steps = 0;  // --nonfinite skip: steps whose update was skipped
  // "off", or the dynamic loss scale's initial and final value, its back-offs (each one a skipped
  // step) and growths.
  nlohmann::json loss_scale = "off";
  double wall_seconds = 0.0;   // whole fit, incl. evaluation
  double train_seconds = 0.0;  // optimizer steps only
  double samples_per_second = 0.0;
  Precision precision = Precision::Fp32;
  std::string matmul_kernel;  // train::matmul_kernel of the run's precision and device
  // Every test evaluation of the run, in order (a resumed run's include those before the resume).
  std::vector<EvalPoint> history;
  nlohmann::json extra;  // the objective's figures (language models: bits per byte, tokens/s)
};

nlohmann::json to_json(const TrainSummary& summary);
// summary.json's "history" array, and back (checkpoints carry it, so a resumed run's is whole).
nlohmann::json history_json(const std::vector<EvalPoint>& history);
std::vector<EvalPoint> history_from_json(const nlohmann::json& json);

// A finished fit's memory and communication figures in `summary`: the peak of `measured` above
// `baseline` and its bytes, the peak RSS, and the bytes of the model's parameters, of their
// gradients (and of `copies`', the tensors an optimizer steps instead, see
// Trainer::set_trained_parameters) and of the optimizer's state.
void record_measurements(TrainSummary& summary, const metrics::MeasurementScope& measured,
                         int64_t baseline, torch::nn::Module& model,
                         torch::optim::Optimizer& optimizer,
                         const std::vector<torch::Tensor>& copies = {});

// Where fit() stands after an optimizer step (see Trainer::after_step).
struct StepPoint {
  int64_t step = 0;           // steps taken so far in the run, this one included
  int64_t total_steps = 0;    // steps of the whole run (config.epochs of them)
  int64_t train_samples = 0;  // samples this worker trained on so far (the run's)
};

class Trainer {
 public:
  // `run` may be null (no files written). The model is moved to config.device.
  Trainer(models::StagedModel model, std::shared_ptr<Objective> objective, TrainConfig config,
          RunDirectory* run);

  // Continues from run->checkpoint_path() (weights, optimizer state, epoch, step; after a
  // mid-epoch checkpoint also the position in the epoch, the stochastic layers' generators, the
  // evaluation history and the run's elapsed time), so that the rest of the run is the one an
  // uninterrupted run would have trained. Returns the number of epochs already done. Throws
  // tessera::Error if there is none.
  int64_t resume();
  // The same from a given checkpoint file (data-parallel workers without a run directory).
  int64_t resume(const std::string& checkpoint_path);
  // The same from metadata whose tensors the caller has loaded into model() and optimizer()
  // (SDP's per-worker checkpoints, dist/restart_checkpoint).
  int64_t resume_from_meta(const nlohmann::json& meta);

  // Where the checkpoints of fit() go (every config.checkpoint_every epochs, every
  // config.checkpoint_every_steps steps and at the end), given the metadata to store. Default:
  // save_checkpoint to the run directory's checkpoint.pt (nothing without one). A replacement is
  // called on every worker at the same step, so it may be collective.
  void set_checkpoint_saver(std::function<void(const nlohmann::json& meta)> saver) {
    checkpoint_saver_ = std::move(saver);
  }
  // The clock of the history's elapsed_seconds; default: since this process started.
  void set_run_clock(const metrics::RunClock& clock) { clock_ = clock; }

  // Trains in step with other workers (see WorkerSync); call before fit().
  void set_worker_sync(std::shared_ptr<WorkerSync> sync) { sync_ = std::move(sync); }

  // The optimizer updates `parameters` instead of the model's parameters, with fresh state; call
  // before fit(). For SDP backward masking: only the units this worker holds, some as compact
  // copies of a model tensor's entries, which the WorkerSync keeps in step with the model.
  // Gradient clipping acts on these; copies count as training state in the memory figures.
  void set_trained_parameters(std::vector<torch::Tensor> parameters);

  // Continues training `model` (on the trainer's device) with `optimizer`, whose state the caller
  // has set: SDP's plan redraws, from an after_step callback. Epochs, steps and the schedule go on;
  // the old model and optimizer are released, and set_trained_parameters' choice with them.
  void replace_model(models::StagedModel model, std::unique_ptr<torch::optim::Optimizer> optimizer);

  // Trains the remaining epochs on `train`, evaluating on `test` (if given) after each epoch.
  // `until_epoch` > 0 stops after that epoch (the schedule still spans config.epochs), as an
  // interrupted run would; resume() then continues it.
  TrainSummary fit(const data::Dataset& train, const data::Dataset* test, int64_t until_epoch = 0);

  // The model's loss and accuracy on `dataset`, in order, in batches of config.eval_batch_size.
  // `combine_outputs` (if given) replaces each batch's outputs before the loss and top-1 are taken
  // (an ensemble combines its members' there: SDP's workers collectively, `tessera eval` of
  // several checkpoints with the other members' predict()).
  using OutputCombiner =
      std::function<torch::Tensor(const torch::Tensor& outputs, const data::Batch& batch)>;
  EvalResult evaluate(const data::Dataset& dataset, const OutputCombiner& combine_outputs = {});

  // The model's outputs for a batch already on its device, as at test time (eval mode, no graph).
  torch::Tensor predict(const data::Batch& batch);

  // What fit() runs for each test evaluation instead of evaluate(test) (e.g. SDP's evaluation of
  // the assembled model, collective over the workers); call before fit().
  void set_test_evaluator(std::function<EvalResult(const data::Dataset&)> evaluator) {
    test_evaluator_ = std::move(evaluator);
  }

  // Called after every test evaluation during fit() (e.g. to keep a snapshot of the weights).
  void on_evaluation(std::function<void(const EvalPoint&)> callback) {
    on_evaluation_ = std::move(callback);
  }

  // Called after every optimizer step of fit(), every worker at the same step: SDP moves workers
  // to a new plan there. The callback may replace_model() (and then restarts the worker sync on
  // the new model itself) and may open a metrics::MeasurementScope to measure itself: fit()'s
  // peak and bytes, an enclosing scope, still cover the whole fit.
  void after_step(std::function<void(const StepPoint&)> callback) {
    after_step_ = std::move(callback);
  }

  // One optimizer step on a batch; returns the loss. With a WorkerSync, an empty batch (no
  // tensors) takes part in the step without samples and returns 0. A non-finite loss or gradient
  // (on any worker) throws NonfiniteError under --nonfinite stop; under skip the update is left
  // out on every worker and last_step_skipped() says so.
  double train_step(const data::Batch& batch);
  bool last_step_skipped() const { return last_step_skipped_; }

  models::StagedModel& model() { return model_; }
  torch::optim::Optimizer& optimizer() { return *optimizer_; }
  int64_t epochs_done() const { return epochs_done_; }
  // Metadata stored with every checkpoint (model config, epoch, step).
  nlohmann::json checkpoint_meta() const;

 private:
  EvalResult run_epoch(data::BatchIterator& batches, int64_t epoch, int64_t steps_per_epoch,
                       int64_t total_steps, const data::Dataset* test);
  // The model's outputs for `batch`, computed in config_.precision, returned as fp32.
  torch::Tensor forward(const data::Batch& batch, bool training);
  EvalPoint evaluate_point(const data::Dataset& test, double epoch, int64_t samples);
  // After backward: the workers' verdict on a non-finite loss or gradient, applied (nonfinite.h).
  // Before backward the gradients are dropped rather than zeroed, so that backward hands each
  // parameter its new gradient instead of adding it to a zero-filled one (a memset and a
  // read-add-write of every gradient per step); afterwards any parameter backward did not reach
  // gets zeros, which is what the optimizer saw before (Adam's moments still decay).
  void release_gradients();
  void zero_missing_gradients();
  bool skip_nonfinite_step(double loss);
  std::string kept_after_stop() const;
  void log_epoch(int64_t epoch, const EvalResult& train, const std::optional<EvalResult>& test,
                 double seconds, double samples_per_second, double elapsed_seconds);
  void save();
  bool checkpoint_due_at_step() const;

  models::StagedModel model_;
  std::shared_ptr<Objective> objective_;
  TrainConfig config_;
  RunDirectory* run_;
  torch::Device device_;
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
  std::vector<torch::Tensor> trained_;  // what the optimizer updates
  std::vector<torch::Tensor> copies_;   // the part of trained_ that is not the model's parameters
  std::shared_ptr<WorkerSync> sync_;
  int64_t epochs_done_ = 0;
  int64_t step_ = 0;
  int64_t epoch_ = 0;  // the epoch run_epoch is in (0-based), for messages
  NonfiniteGuard nonfinite_;
  LossScaler scaler_;
  bool last_step_skipped_ = false;
  double train_seconds_ = 0.0;
  int64_t train_samples_ = 0;
  std::function<void(const EvalPoint&)> on_evaluation_;
  std::function<void(const StepPoint&)> after_step_;
  double inner_eval_seconds_ = 0.0;  // of the current epoch's mid-epoch evaluations
  // The epoch under way: its steps, loss sum and samples so far (stored by a mid-epoch
  // checkpoint; a resumed run starts its first epoch there).
  int64_t step_in_epoch_ = 0;
  double epoch_loss_sum_ = 0.0;
  int64_t epoch_samples_ = 0;
  int64_t next_eval_ = 1;
  nlohmann::json resumed_generators_;  // stochastic layers' states to restore mid-epoch
  std::vector<EvalPoint> history_;     // the run's evaluations
  double evaluation_seconds_ = 0.0;    // spent in them (EvalPoint::evaluation_seconds)
  // During fit: the stretch of training since the last evaluation (closed while evaluating), and
  // the highest peaks, absolute, of training stretches and of evaluations so far.
  std::optional<metrics::MeasurementScope> training_stretch_;
  int64_t train_peak_ = 0;
  int64_t eval_peak_ = 0;
  std::function<EvalResult(const data::Dataset&)> test_evaluator_;
  metrics::RunClock clock_ = metrics::RunClock::since_process_start();
  std::function<void(const nlohmann::json&)> checkpoint_saver_;
};

// Parses "cpu" / "cuda" / "cuda:N"; UsageError if unknown or CUDA is not available.
torch::Device parse_device(const std::string& name);

}  // namespace tessera::train
