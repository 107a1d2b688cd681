// The guard against non-finite training (--nonfinite): after backward, before the optimizer step,
// the loss and every gradient are checked; all workers of a run agree on the verdict for the step
// (WorkerSync::agree_nonfinite), then either the run stops (NonfiniteError, before anything
// non-finite reaches the weights or a checkpoint) or every worker skips the step's update.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "tessera/core/error.h"

namespace tessera::train {

// "stop" or "skip"; UsageError naming --nonfinite otherwise.
enum class NonfinitePolicy { Stop, Skip };
NonfinitePolicy parse_nonfinite_policy(const std::string& name);

// A run ended by a non-finite step (exit code 1, as every tessera::Error).
class NonfiniteError : public Error {
 public:
  explicit NonfiniteError(const std::string& message) : Error(message) {}
};

// Whether the gradients of `parameters` (those that have one) are all finite. One pass over the
// gradients and a single host synchronisation.
bool gradients_finite(const std::vector<torch::Tensor>& parameters);
// Whether every parameter and buffer of `module` is finite (before writing a checkpoint).
bool state_finite(torch::nn::Module& module);

// What the workers agreed on for one step: how many saw a non-finite value, and which one if
// exactly one did (-1 otherwise, or when the sync cannot tell, as under DDP where the averaged
// gradient is non-finite on every worker alike).
struct NonfiniteVote {
  int64_t workers = 0;
  int64_t rank = -1;
  bool any() const { return workers > 0; }
};

// The vote as a sum over workers: {1, rank + 1} from a worker that saw a non-finite value, {0, 0}
// from the others (2 doubles: 16 bytes all-reduced per step).
std::vector<double> nonfinite_ballot(bool here, int64_t rank);
NonfiniteVote count_ballots(const std::vector<double>& summed);

// Where a non-finite step happened and what this worker saw, for the messages.
struct NonfiniteStep {
  int64_t epoch = 0;           // 1-based
  int64_t step = 0;            // 1-based, of the whole run
  int64_t rank = 0;            // this worker
  double loss = 0.0;           // this worker's loss (NaN/inf if that was the cause)
  bool gradient_here = false;  // this worker's gradient was non-finite
};
std::string describe(const NonfiniteStep& step, const NonfiniteVote& vote);

// Applies --nonfinite to agreed votes, step by step: throws NonfiniteError under stop (and under
// skip after `max_skips` non-finite steps in a row); otherwise says whether to skip the update.
class NonfiniteGuard {
 public:
  NonfiniteGuard(NonfinitePolicy policy, int64_t max_skips) : policy_(policy), max_(max_skips) {}
  // After the vote on a step. `kept` says what survives a stop (e.g. the last checkpoint).
  bool skip(const NonfiniteStep& step, const NonfiniteVote& vote, const std::string& kept);
  int64_t skipped() const { return skipped_; }

 private:
  NonfinitePolicy policy_;
  int64_t max_;
  int64_t in_a_row_ = 0;
  int64_t skipped_ = 0;
};

}  // namespace tessera::train
