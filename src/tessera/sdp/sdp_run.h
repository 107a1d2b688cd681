// A run of subnetwork data parallelism (`tessera train --dist sdp`), one call per worker: the plan
// every worker computes alone, each worker's subnetwork and its synchronisation, the plan changes
// (redraws), and at the end the full model, assembled on rank 0 (forward masking) or rank 0's own
// (backward masking), evaluated and saved as an ordinary checkpoint. The same full model is also
// evaluated during training (train.evals_per_epoch times per epoch), for time to accuracy.
#pragma once

#include <cstdint>
#include <string>

#include "tessera/data/dataset.h"
#include "tessera/dist/process_group.h"
#include "tessera/dist/worker_metrics.h"
#include "tessera/models/model_config.h"
#include "tessera/sdp/mask_plan.h"
#include "tessera/sdp/subnet_sync.h"
#include "tessera/train/run_directory.h"
#include "tessera/train/trainer.h"

namespace tessera::sdp {

// Forward: each worker runs its physically smaller subnetwork. Backward: each worker runs the full
// model and trains (gradients, optimizer state, updates) only the units it holds.
enum class Masking { Forward, Backward };
Masking parse_masking(const std::string& name);  // "forward" | "backward"; UsageError otherwise
const char* to_string(Masking masking);

// What an evaluation of the run (during training and the final one) measures. Assembled: the full
// model rebuilt on rank 0 from the workers' subnetworks (rescaled), the model the run saves.
// Ensemble: the workers' subnetworks as an ensemble (sdp/subnet_ensemble.h; forward masking only),
// whose inference costs W x C full models; the run still saves the assembled model and records
// its figures beside.
enum class Evaluation { Assembled, Ensemble };
Evaluation parse_evaluation(const std::string& name);  // "assembled" | "ensemble"
const char* to_string(Evaluation evaluation);

struct SdpSetup {
  models::ModelConfig model;  // the full network, resolved (no subnet)
  train::TrainConfig train;   // rank and world size are the group's; no per-epoch checkpoints
  Level level = Level::Block;
  double coverage = 0.5;  // C: the fraction of the units each worker holds
  Masking masking = Masking::Forward;
  SyncMode sync = SyncMode::Params;
  bool bf16_comm = false;     // gradients averaged as bf16 (sync grads only; see SubnetSync)
  bool rescale = false;       // scale masked units' outputs by C in the assembled model
  double rescale_factor = 0;  // by this instead of C (0: C)
  int64_t bn_batches = 100;   // training batches re-estimating batch-norm statistics at the end
  int64_t redraw_epochs = 0;  // forward masking: a new plan every N epochs (0: one plan)
  int64_t redraw_steps = 0;   // ... or every N optimizer steps
  Evaluation evaluation = Evaluation::Assembled;
  // Evaluate the full model (assembled as at the end) train.evals_per_epoch times per epoch, into
  // the summary's history with elapsed_seconds (time to accuracy); the training is the same
  // either way. false: only the final model is evaluated.
  bool evaluate_during_training = true;
  train::RunDirectory* run = nullptr;  // rank 0's (plans, metrics, checkpoint), or null
  // Every rank: the run directory whose restart/ folder holds each worker's checkpoints
  // (dist/restart_checkpoint), taken at train.checkpoint_every epochs and
  // train.checkpoint_every_steps steps; empty: none (and no checkpoints but the final model).
  std::string restart_dir;
  // Every rank: the run directory, where --sdp-eval ensemble saves each worker's subnetwork as
  // subnet<R>.pt (`tessera eval --checkpoint` of them all gives the run's figures); empty: none.
  std::string subnet_dir;
  // Continue from the latest complete set of those: the worker's subnetwork and optimizer state,
  // the plan (redraws so far), the position in the epoch, so that the rest of the run is the
  // uninterrupted run's.
  bool resume = false;
};

// Throws UsageError for settings that exclude each other (e.g. redraws with backward masking).
void validate(const SdpSetup& setup);

// Every rank calls it with the same setup; the group's ranks are the plan's workers. On rank 0 the
// summary's test figures are the final full model's, and RunResult::details holds what
// summary.json records under "sdp" (plan, sync, redraws, the subnetwork's own accuracy).
dist::RunResult run_sdp(const SdpSetup& setup, dist::ProcessGroup& group,
                        const data::TrainTest& data);

}  // namespace tessera::sdp
