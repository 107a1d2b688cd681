// DDP's gradient averaging, which the C++ frontend lacks: parameters are grouped into buckets of
// about `bucket_bytes` in reverse registration order (roughly the order backward produces their
// gradients). A hook on each parameter's gradient accumulator copies the fresh gradient into its
// bucket; a full bucket is all-reduced asynchronously while backward goes on. Buckets are always
// launched in index order, so every rank issues the same collectives in the same order even when
// some parameters get no gradient (they count as zero).
//
// The result is the sample-weighted mean: rank r contributes n_r * grad_r and n_r (carried in the
// first bucket), so ranks with unequal or no samples in a step still average exactly. With
// `bf16_comm` the buckets travel as bf16 (ProcessGroup::all_reduce_bf16_async: half the bytes)
// and n_r in a float32 all-reduce of its own, which bf16 could not carry exactly.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include <torch/torch.h>

#include "tessera/dist/process_group.h"

namespace tessera::dist {

struct ReducerOptions {
  int64_t bucket_bytes = 4 << 20;
  bool overlap = true;  // false: no hooks, every bucket is reduced after backward (for comparison)
  bool bf16_comm = false;  // gradients sent as bf16 (float32 parameters only)
};

struct ReducerStats {
  int64_t steps = 0;
  int64_t buckets = 0;
  double wait_seconds = 0.0;  // time finish() spent waiting for communication after backward
  int64_t comm_bytes = 0;     // bytes this rank sent for gradients (see all_reduce_bytes)
};

class GradientReducer {
 public:
  // `parameters` must be the same list, in the same order, on every rank; they must be leaves
  // that require grad. Registers the hooks (removed again by the destructor).
  GradientReducer(ProcessGroup group, std::vector<torch::Tensor> parameters,
                  ReducerOptions options);
  ~GradientReducer();
  GradientReducer(const GradientReducer&) = delete;
  GradientReducer& operator=(const GradientReducer&) = delete;

  // Before backward: this rank's samples in the step (0: it takes part without a batch).
  void prepare(int64_t samples);
  // Between prepare() and backward: this rank's loss is not finite. Its sample count travels as
  // NaN, so the averaged gradient is NaN on every rank alike (no message of its own).
  void poison();
  // After backward: reduces what the hooks have not launched yet, waits, and leaves the mean
  // gradient in every parameter's .grad (defined even where backward produced none).
  void finish();

  const ReducerStats& stats() const { return stats_; }

 private:
  struct Bucket {
    std::vector<size_t> members;  // indexes into parameters_
    torch::Tensor flat;           // sum over ranks of n_r * grad_r (plus n_r in bucket 0)
    int64_t pending = 0;          // members whose gradient has not arrived yet
    Work work;
  };
  struct Slot {
    size_t bucket = 0;
    int64_t offset = 0;
    bool ready = false;
  };

  void on_gradient(size_t index);
  void copy_into_bucket(size_t index);
  void launch_ready_buckets();
  void launch(size_t bucket);

  ProcessGroup group_;
  std::vector<torch::Tensor> parameters_;
  ReducerOptions options_;
  std::vector<Bucket> buckets_;
  std::vector<Slot> slots_;
  std::vector<std::shared_ptr<torch::autograd::Node>> accumulators_;
  std::vector<uintptr_t> hook_keys_;
  Work count_work_;      // bf16_comm: the float32 all-reduce of the sample count
  torch::Tensor count_;  // bf16_comm: [1], this rank's n_r, then the sum over ranks
  size_t next_launch_ = 0;
  double weight_ = 0.0;
  bool poisoned_ = false;
  bool in_step_ = false;
  ReducerStats stats_;
};

}  // namespace tessera::dist
