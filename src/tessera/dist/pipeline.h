// The model-parallel baseline (GPipe-style): the model's stages are split into one contiguous
// range per rank; every batch is cut into micro-batches whose activations travel forward rank to
// rank and whose gradients travel back, and each rank steps the optimizer on its own stages. All
// ranks iterate the same batches (rank 0 feeds inputs, the last rank computes the loss), so the
// result equals single-worker training on those batches. The bytes it sends per step are what
// PNN's bandwidth claim is measured against.
#pragma once

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "tessera/dist/process_group.h"
#include "tessera/metrics/run_clock.h"
#include "tessera/models/staged_model.h"
#include "tessera/train/trainer.h"

namespace tessera::dist {

// Contiguous stage ranges [begin, end), one per rank, balancing the analytic forward FLOPs.
// Throws UsageError if the model has fewer stages than ranks.
std::vector<std::pair<int64_t, int64_t>> split_stages(const models::ModelConfig& config,
                                                      int64_t ranks);

class PipelineTrainer {
 public:
  // Builds this rank's stages with the parameters build_model(config) has after
  // torch::manual_seed(config_train.seed). `run` is used by rank 0 only (metrics, checkpoint).
  // `ranges`: each rank's stages [begin, end), contiguous from 0 to the model's end; empty: from
  // split_stages.
  PipelineTrainer(ProcessGroup group, const models::ModelConfig& model,
                  std::shared_ptr<train::Objective> objective, train::TrainConfig config,
                  int64_t micro_batches, train::RunDirectory* run,
                  std::vector<std::pair<int64_t, int64_t>> ranges = {});

  // Every rank calls it; test results are known on every rank. The checkpoint (rank 0) holds the
  // whole model, as a single worker's would, without optimizer state.
  train::TrainSummary fit(const data::Dataset& train, const data::Dataset* test);

  // Every rank: keep per-worker checkpoints for restarts in <run_dir>/restart
  // (dist/restart_checkpoint), every config.checkpoint_every epochs and
  // config.checkpoint_every_steps steps. Call before fit().
  void set_restart_dir(std::string run_dir) { restart_dir_ = std::move(run_dir); }
  // Continues from the latest complete set there (stages, optimizer state, position in the run,
  // history, elapsed time), so that the rest of the run is the uninterrupted run's. Throws
  // tessera::Error if there is none.
  void resume();
  train::EvalResult evaluate(const data::Dataset& dataset);

  models::StagedModel& partition() { return partition_; }
  // Bytes this rank sent for activations and gradients in training steps (not evaluation or
  // checkpoints).
  int64_t step_comm_bytes() const { return step_comm_bytes_; }
  // Bytes this rank sent all-reducing --nonfinite ballots, one per training step.
  int64_t ballot_comm_bytes() const { return ballot_comm_bytes_; }
  // Every rank calls it; rank 0 receives the whole model, the others an empty holder.
  models::StagedModel gather_full_model();

 private:
  double train_step(const data::Batch& batch);
  torch::Tensor forward_micro_batch(const torch::Tensor& inputs, int64_t tag, bool keep_graph,
                                    torch::Tensor* stage_input);
  void send(const torch::Tensor& tensor, int64_t dst, int64_t tag, bool training);
  void clip_gradients();
  // After backward: every rank's ballot on a non-finite loss (last rank) or gradient, summed
  // (16 bytes all-reduced, counted in ballot_comm_bytes), then --nonfinite applied alike.
  bool skip_nonfinite_step(double loss);
  void log_epoch(int64_t epoch, const train::EvalResult& train,
                 const std::optional<train::EvalResult>& test, double seconds, double elapsed);
  void save_restart_checkpoint();
  void run_epoch(data::BatchIterator& batches, int64_t epoch, int64_t total_steps,
                 const data::Dataset* test);
  // Every rank: one test evaluation into the history, at the run's clock (as Trainer's).
  train::EvalResult evaluate_into_history(const data::Dataset& test, double epoch, int64_t samples);
  // Whether one of the epoch's config.evals_per_epoch - 1 inner evaluations is due now.
  bool inner_evaluation_due(int64_t steps_per_epoch) const;

  ProcessGroup group_;
  std::vector<std::pair<int64_t, int64_t>> ranges_;  // every rank's stages
  models::StagedModel partition_ = nullptr;
  std::shared_ptr<train::Objective> objective_;
  train::TrainConfig config_;
  int64_t micro_batches_;
  train::RunDirectory* run_;
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
  int64_t step_ = 0;
  int64_t epoch_ = 0;  // the epoch fit() is in (0-based), for messages
  int64_t epochs_done_ = 0;
  int64_t step_in_epoch_ = 0;
  std::vector<double> epoch_totals_ = {0.0, 0.0};  // the epoch so far: loss sum, samples
  int64_t samples_ = 0;                            // trained on in the epochs done
  double train_seconds_ = 0.0;
  nlohmann::json resumed_generators_;  // stochastic layers' states to restore mid-epoch
  std::vector<train::EvalPoint> history_;
  double evaluation_seconds_ = 0.0;  // spent in the history's evaluations
  double inner_eval_seconds_ = 0.0;  // of the current epoch's inner evaluations
  metrics::RunClock clock_ = metrics::RunClock::since_process_start();
  std::string restart_dir_;
  int64_t step_comm_bytes_ = 0;
  int64_t ballot_comm_bytes_ = 0;
  train::NonfiniteGuard nonfinite_{train::NonfinitePolicy::Stop, 1};
  // Every rank holds the same scale: the last scales the loss, all unscale their own gradients,
  // and the step's shared ballot decides back-offs alike.
  train::LossScaler scaler_{train::LossScaleConfig{}};
  bool last_step_skipped_ = false;
  bool first_ = false;
  bool last_ = false;
};

}  // namespace tessera::dist
