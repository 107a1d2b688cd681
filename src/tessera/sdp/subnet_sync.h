// SDP's synchronisation as a train::WorkerSync: each entry of a worker's subnetwork is averaged
// only among the workers that hold it. Entries are bucketed by holder set; each set of two or
// more workers gets its own process group of exactly those workers (created once, in the same
// order on every worker), and one all-reduce per set and step carries all of its entries (SUM,
// then divide: Gloo has no AVG). A set held by every worker uses the world group, as DDP would.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "tessera/dist/process_group.h"
#include "tessera/sdp/mask_plan.h"
#include "tessera/sdp/shared_entries.h"
#include "tessera/train/worker_sync.h"

namespace tessera::sdp {

// params: average parameters after every optimizer step (the seed article's rule).
// grads: average gradients (sample-weighted, as DDP) before the step.
enum class SyncMode { Params, Grads };
SyncMode parse_sync_mode(const std::string& name);  // "params" | "grads"
const char* to_string(SyncMode mode);
extern const char* const kBf16ParamsMessage;  // why bf16 communication needs SyncMode::Grads

struct SyncStats {
  int64_t steps = 0;
  int64_t holder_sets = 0;    // sets of >= 2 workers this worker averages with (most of a plan)
  int64_t comm_bytes = 0;     // bytes this worker sent for training steps (see all_reduce_bytes)
  double wait_seconds = 0.0;  // time spent in synchronisation
};

class SubnetSync : public train::WorkerSync {
 public:
  // `world` holds every worker; its rank is this worker's index in `plan`. bf16_comm: the shared
  // gradients travel as bf16 (dist::ProcessGroup::all_reduce_bf16_async, half the bytes) and the
  // workers' sample counts in one float32 all-reduce over the world per step. Only with
  // SyncMode::Grads (UsageError otherwise: averaging the parameters themselves in bf16 would round
  // the float32 weights every step).
  SubnetSync(dist::ProcessGroup world, MaskPlan plan, SyncMode mode, bool bf16_comm = false);

  // Checks that every worker has the same plan, then creates the holder-set groups and buckets
  // for `model`, this worker's subnetwork. Buffers (batch-norm statistics) are not averaged: they
  // describe each worker's own network (averaging them cost worker 0's subnetwork 13 points on
  // resnet-20, docs/results.md); the assembled model re-estimates its own.
  void start(torch::nn::Module& model) override;
  // The same for tensors that are not one module's parameters: `tensors[i]` holds this worker's
  // entries (subnetwork layout) of the full model's tensor `names[i]` (backward masking).
  void start(const std::vector<std::string>& names, const std::vector<torch::Tensor>& tensors);
  // Moves to another plan of the same workers (a redraw) and starts on `model`, this worker's
  // subnetwork under it. Holder-set groups of earlier plans are reused: each costs connections.
  void change_plan(MaskPlan plan, torch::nn::Module& model);
  int64_t agree_steps(int64_t local_batches) override;
  void before_backward(int64_t samples) override;
  void after_backward() override;
  // --sdp-sync grads: the norm of the mean gradient over the whole model, each entry counted once
  // (every holder has the same mean: each adds its entries' squares divided by their holders'
  // count, one double all-reduced over the world), so every holder scales by the same factor and
  // holders stay identical. Clipping each worker by its own norm would let them drift apart, which
  // stalled backward-masked training (docs/results.md). --sdp-sync params: each worker clips its
  // own gradients, as the default does; the averaging after the step rejoins the holders.
  double clip_gradients(const std::vector<torch::Tensor>& trained, double max_norm) override;
  void after_step() override;
  void sum(std::vector<double>& values) override;
  // The default ballot (16 bytes all-reduced over the world), counted in stats().comm_bytes.
  train::NonfiniteVote agree_nonfinite(bool here, int64_t rank) override;

  const SyncStats& stats() const { return stats_; }

 private:
  struct Bucket {
    WorkerSet holders = 0;
    std::optional<dist::ProcessGroup> group;
    std::vector<Cell> cells;  // cells of this worker's parameters
  };
  std::vector<Bucket> make_buckets(const std::vector<Cell>& cells);
  std::vector<WorkerSet> agree_holder_sets(const std::vector<WorkerSet>& mine);
  // Averages the tensors' shared entries. With `weight` >= 0 each worker's values count `weight`
  // times (its samples in the step), and the weights travel with the values.
  void average(std::vector<Bucket>& buckets, const std::vector<torch::Tensor>& tensors,
               double weight);

  dist::ProcessGroup world_;
  MaskPlan plan_;
  SyncMode mode_;
  bool bf16_comm_ = false;
  std::vector<torch::Tensor> parameters_;
  std::vector<Cell> parameter_cells_;  // all of them, on the parameters' devices
  std::vector<Bucket> parameter_buckets_;
  std::map<WorkerSet, dist::ProcessGroup> groups_;  // of the sets this worker is in
  std::set<WorkerSet> created_;  // every set a group was created for, this worker's or not
  int64_t samples_ = 0;
  SyncStats stats_;
};

}  // namespace tessera::sdp
