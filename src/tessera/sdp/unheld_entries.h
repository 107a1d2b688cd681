// Entries of the full model that no worker holds under a plan: a weight between two neurons that
// no worker holds together (about 1/6 of an MLP's hidden-to-hidden weights at W = 4, C = 0.5).
// With one plan for the run they are never trained and the assembled model keeps their initial
// value. With redrawn plans they were trained under earlier plans and will be again: one worker,
// their keeper, keeps their last value and optimizer state (without training them) until a later
// plan holds them again, so that a plan change never throws training away, and the assembled
// model takes them from it. The keepers' share is the price: measured in docs/results.md.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "tessera/models/model_config.h"
#include "tessera/sdp/mask_plan.h"
#include "tessera/sdp/shared_entries.h"

namespace tessera::sdp {

// The full model's tensors that some unit group of the plan slices, sorted by name (the tensor
// indices of the cells below).
std::vector<std::string> masked_tensor_names(const MaskPlan& plan);

// An unheld cell of the full model's layout (holders == 0) and the worker that keeps it.
struct UnheldCell {
  Cell cell;
  int64_t keeper = 0;
};

// The unheld cells of the masked tensors under `plan`, in tensor order. Each goes to the worker
// keeping the fewest entries so far (counted along the sliced dims), ties to the lowest rank, so
// every worker computes the same keepers and they keep about equal shares.
std::vector<UnheldCell> unheld_cells(const MaskPlan& plan);

// `inner`, a part of `outer` (both in the full model's layout), in `outer`'s own layout: the
// positions along each of outer's sliced dims become indices into outer's positions.
Cell in_cell_layout(const Cell& outer, const Cell& inner);

// The index of the cell of `cells` that contains `cell` (of the same tensor); -1 if none does.
int64_t containing_cell(const std::vector<UnheldCell>& cells, const Cell& cell);

// The sizes of a cell's own layout: `full_shape` narrowed to the cell's positions.
std::vector<int64_t> cell_shape(const std::vector<int64_t>& full_shape, const Cell& cell);

// One kept cell: its entries of the value and of each optimizer state tensor, in cell_shape.
struct KeptCell {
  torch::Tensor value;
  std::vector<torch::Tensor> state;
};

// What one worker keeps under one plan. `started` is false until the run's first plan change:
// before it, unheld entries still have their initial value, which the assembly rebuilds from the
// seed, so nothing needs keeping.
struct KeptEntries {
  bool started = false;
  std::vector<UnheldCell> cells;                  // the plan's unheld cells, every keeper's
  std::vector<std::vector<int64_t>> full_shapes;  // by tensor index (masked_tensor_names)
  std::map<size_t, KeptCell> kept;                // this worker's, by index into `cells`

  // Allocates, zero, the cells of tensor `tensor` that `worker` keeps (value and state_tensors
  // state tensors in the cell's shape); cells already there stay.
  void allocate(int64_t worker, size_t tensor, int64_t state_tensors, torch::Device device);

  // The kept cells' tensors as buffers of one module ("c<index>_value", "c<index>_state<i>"),
  // sharing their storage: saving it saves them, loading into it restores them.
  std::shared_ptr<torch::nn::Module> as_module() const;
};

// The plan's unheld cells with none of them allocated yet (KeptEntries::allocate, one tensor at a
// time, keeps a plan change's peak low).
KeptEntries unallocated_entries(const MaskPlan& plan,
                                const std::vector<std::vector<int64_t>>& full_shapes);

// The cells `worker` keeps under `plan`, each filled by `fill(name, cell, kept)`, which finds
// kept.value (and state_tensors state tensors) allocated in the cell's shape. `full_shapes`: the
// full model's shape of each masked tensor.
KeptEntries keep_entries(
    const MaskPlan& plan, int64_t worker, const std::vector<std::vector<int64_t>>& full_shapes,
    int64_t state_tensors, torch::Device device,
    const std::function<void(const std::string& name, const Cell& cell, KeptCell& kept)>& fill);

// The same with every kept entry's initial value (`torch::manual_seed(seed); build_model(model)`,
// generated one stage at a time: the full model is never allocated) and zero optimizer state.
KeptEntries keep_initial_entries(const MaskPlan& plan, int64_t worker,
                                 const models::ModelConfig& model, uint64_t seed,
                                 int64_t state_tensors, torch::Device device);

}  // namespace tessera::sdp
