// The DDP baseline as a train::WorkerSync: identical replicas (rank 0's parameters and buffers
// broadcast, then verified by a checksum on every rank), gradients averaged by a GradientReducer,
// and every epoch as many steps on every rank as the rank with the most batches (a rank out of
// data takes part with no samples, so unequal shards never hang).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "tessera/dist/gradient_reducer.h"
#include "tessera/dist/process_group.h"
#include "tessera/train/worker_sync.h"

namespace tessera::dist {

class DataParallel : public train::WorkerSync {
 public:
  DataParallel(ProcessGroup group, ReducerOptions options);

  // Throws tessera::Error if the ranks' models differ in structure or, after the broadcast, in
  // their checksum.
  void start(torch::nn::Module& model) override;
  int64_t agree_steps(int64_t local_batches) override;
  void before_backward(int64_t samples) override;
  void after_backward() override;
  void sum(std::vector<double>& values) override;
  // No message of its own: a rank's non-finite loss poisons the gradient all-reduce, and the
  // averaged gradient, identical on every rank, then decides alike everywhere.
  void mark_nonfinite_loss() override;
  train::NonfiniteVote agree_nonfinite(bool here, int64_t rank) override;

  // Null before start().
  const GradientReducer* reducer() const { return reducer_.get(); }

 private:
  ProcessGroup group_;
  ReducerOptions options_;
  std::unique_ptr<GradientReducer> reducer_;
};

// Order-sensitive float64 checksum of a module's parameters and buffers (equal bits, equal sum).
double state_checksum(torch::nn::Module& module);

}  // namespace tessera::dist
