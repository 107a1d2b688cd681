// SDP with backward masking (`--sdp-masking backward`) as a train::WorkerSync. Every worker keeps
// the full model and runs it forward whole ("unbiased gradients"), but computes gradients, keeps
// optimizer state and steps only for the units it holds; those are averaged among their holders
// exactly as forward masking does (SubnetSync), and after every step each entry a worker does not
// hold is refreshed from a holder, so all workers start every step with the same full model.
//
// Memory: a tensor of a branch the worker does not hold stops requiring gradients, so autograd
// allocates no gradient for it and the optimizer never sees it. A tensor held in part (neuron
// level: some rows or columns) still gets its full-size gradient from autograd during backward;
// after_backward copies the held entries into a compact copy's .grad and releases the full one,
// so gradients and optimizer state between steps, and the optimizer's step, are held-size.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "tessera/dist/process_group.h"
#include "tessera/models/model_config.h"
#include "tessera/sdp/mask_plan.h"
#include "tessera/sdp/shared_entries.h"
#include "tessera/sdp/subnet_sync.h"
#include "tessera/train/worker_sync.h"

namespace tessera::sdp {

// The refresh sends at most this many bytes per message (one cell may be larger).
constexpr int64_t kRefreshBucketBytes = 4 << 20;
constexpr int64_t kRefreshTag = 13;

class BackwardMasking : public train::WorkerSync {
 public:
  // Prepares `model`, the full model (built from the same seed on every worker, on its training
  // device), for worker world.rank() of `plan`: what it does not hold stops requiring gradients,
  // and what it holds in part gets a compact copy of its held entries.
  // bf16_comm: the holders' averages travel as bf16 (see SubnetSync).
  BackwardMasking(dist::ProcessGroup world, MaskPlan plan, SyncMode mode, torch::nn::Module& model,
                  bool bf16_comm = false);

  // What the optimizer must update (train::Trainer::set_trained_parameters): the parameters this
  // worker holds whole, and the compact copies of those it holds in part.
  const std::vector<torch::Tensor>& trained_parameters() const { return trained_; }

  // Checks the plan, creates the holder groups (see SubnetSync::start) and the refresh buffers.
  void start(torch::nn::Module& model) override;
  int64_t agree_steps(int64_t local_batches) override;
  void before_backward(int64_t samples) override;
  // Moves the held entries of full-size gradients into the compact copies, then (--sdp-sync
  // grads) averages the held gradients among their holders.
  void after_backward() override;
  // By the norm of the mean gradient over the whole model (see SubnetSync::clip_gradients).
  double clip_gradients(const std::vector<torch::Tensor>& trained, double max_norm) override;
  // (--sdp-sync params: averages held parameters among their holders,) writes the compact copies
  // back into the model, then sends every entry that not all workers hold from one of its holders
  // to each worker that does not hold it, point to point.
  void after_step() override;
  void sum(std::vector<double>& values) override;
  train::NonfiniteVote agree_nonfinite(bool here, int64_t rank) override;

  // The holder averaging's figures plus the refresh's bytes and time.
  SyncStats stats() const;
  // Bytes this worker sent refreshing entries it does not hold (part of stats().comm_bytes).
  int64_t refresh_bytes() const { return refresh_bytes_; }

 private:
  // A model parameter this worker holds only some entries of, and its compact copy.
  struct PartlyHeld {
    std::string name;
    torch::Tensor full;
    torch::Tensor held;  // the held entries, in the subnetwork's layout; what the optimizer steps
  };
  void plan_refresh_messages();
  void refresh();
  void refresh_message(const CellMessage& message);

  dist::ProcessGroup world_;
  MaskPlan plan_;
  SubnetSync holders_;
  models::Subnet subnet_;  // what this worker holds
  std::vector<PartlyHeld> partly_held_;
  std::vector<std::string> trained_names_;
  std::vector<torch::Tensor> trained_;
  // Every entry not held by all workers (and by anyone at all), as cells of model_parameters_.
  std::vector<torch::Tensor> model_parameters_;
  std::vector<Cell> refreshed_;
  std::vector<int64_t> refreshed_numel_;       // per refreshed cell: its number of entries
  std::vector<CellMessage> refresh_messages_;  // of refreshed_: this worker's, in order
  int64_t refresh_bytes_ = 0;
  double refresh_seconds_ = 0.0;
};

}  // namespace tessera::sdp
