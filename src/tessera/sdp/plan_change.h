// Moving SDP workers from one mask plan to another during training (--sdp-redraw-epochs /
// --sdp-redraw-steps, from the trainer's after-step callback). Each worker builds its subnetwork
// under the new plan and gets every entry it did not hold, with its optimizer state, point to
// point from that entry's lowest-ranked holder under the old plan (or from its keeper, if no worker
// held it), one tensor at a time. No worker ever holds a full-size tensor. The change measures its
// own peak in a metrics::MeasurementScope nested in the trainer's.
#pragma once

#include <cstdint>
#include <memory>

#include "tessera/dist/process_group.h"
#include "tessera/models/staged_model.h"
#include "tessera/sdp/mask_plan.h"
#include "tessera/sdp/unheld_entries.h"
#include "tessera/train/optimizer.h"

namespace tessera::sdp {

// What a worker trains: its subnetwork and the optimizer stepping it.
struct WorkerState {
  models::StagedModel model{nullptr};
  std::unique_ptr<torch::optim::Optimizer> optimizer;
};

struct PlanChangeStats {
  int64_t comm_bytes = 0;        // bytes this worker sent
  int64_t received_entries = 0;  // entries (values, not counting optimizer state) it received
  // Training state held during the change, measured: old and new subnetworks with their
  // gradients and optimizer state, and the messages.
  int64_t peak_tensor_bytes = 0;
  double seconds = 0.0;
};

// Collective over `world`, whose ranks are the plans' workers. `current_model` is this worker's
// subnetwork under `from`, stepped `steps` times by `current_optimizer`. Returns its subnetwork
// under `to`, on the same device, with a fresh optimizer of `optimizer_config` whose per-parameter
// state is the old holders'. Float parameters and buffers move (batch-norm statistics included).
// Entries that no worker holds (unheld_entries.h) move between the workers and `kept`, this
// worker's share of them: entries no worker held under `from` come from their keeper, and those
// no worker holds under `to` go to theirs; `kept` ends as this worker's share under `to`. Before
// the run's first change `kept` is not started, and the entries then unheld have their initial
// value from `seed`. `current_model` and `current_optimizer` are used up: gradients are freed
// first, then each old tensor and its optimizer state once moved, so that the change holds
// little more than the larger of the two subnetworks at any time.
WorkerState change_plan(dist::ProcessGroup& world, const MaskPlan& from, const MaskPlan& to,
                        torch::nn::Module& current_model,
                        torch::optim::Optimizer& current_optimizer,
                        const models::ModelConfig& model,
                        const train::OptimizerConfig& optimizer_config, uint64_t seed,
                        int64_t steps, KeptEntries& kept, PlanChangeStats* stats = nullptr);

// The plan of redraw number `redraw` (0: the run's first plan, `config` as given): the same
// level, workers and coverage, from a seed derived from config.seed and `redraw`.
MaskPlan redrawn_plan(const models::ModelConfig& model, PlanConfig config, int64_t redraw);

}  // namespace tessera::sdp
