// How the Trainer keeps several workers in step. The Trainer calls it around every optimizer step;
// without one it trains alone. Implementations: dist::DataParallel (DDP), sdp::SubnetSync and
// sdp::BackwardMasking (SDP).
#pragma once

#include <cstdint>
#include <vector>

#include <torch/torch.h>

#include "tessera/train/nonfinite.h"

namespace tessera::train {

class WorkerSync {
 public:
  virtual ~WorkerSync() = default;
  // Before the first step of fit(): e.g. make every replica's parameters identical.
  virtual void start(torch::nn::Module& model) = 0;
  // Steps per epoch every worker takes, given this worker's batches per epoch. A worker that runs
  // out of batches still takes part in the remaining steps, contributing no samples.
  virtual int64_t agree_steps(int64_t local_batches) = 0;
  // Before backward of a step on `samples` samples of this worker.
  virtual void before_backward(int64_t samples) = 0;
  // After backward (or, with no batch left, instead of it), before clipping and the optimizer
  // step: leaves in every parameter's .grad the mean gradient over all workers' samples.
  virtual void after_backward() = 0;
  // After after_backward, with clipping on: scales the gradients of `trained` (the tensors the
  // optimizer steps) so that the norm of the workers' mean gradient is at most `max_norm`, by one
  // factor on every worker; returns that norm before clipping. The default clips by the norm of
  // this worker's gradients, which is that norm wherever every worker has the whole mean gradient
  // (training alone, DDP).
  virtual double clip_gradients(const std::vector<torch::Tensor>& trained, double max_norm) {
    return torch::nn::utils::clip_grad_norm_(trained, max_norm);
  }
  // After the optimizer step (e.g. SDP averaging parameters among their holders).
  virtual void after_step() {}
  // Sums `values` over the workers, in place (e.g. an epoch's loss sum and sample count).
  virtual void sum(std::vector<double>& values) = 0;
  // This worker's loss in the current step is not finite: called after before_backward and before
  // backward. DataParallel makes the averaged gradient non-finite with it (see agree_nonfinite).
  virtual void mark_nonfinite_loss() {}
  // After after_backward: whether any worker saw a non-finite loss or gradient in this step, given
  // `here` (this worker's, as rank `rank`); the same verdict on every worker. The default sums a
  // two-element ballot over the workers (16 bytes all-reduced per step).
  virtual NonfiniteVote agree_nonfinite(bool here, int64_t rank) {
    std::vector<double> ballot = nonfinite_ballot(here, rank);
    sum(ballot);
    return count_ballots(ballot);
  }
};

}  // namespace tessera::train
