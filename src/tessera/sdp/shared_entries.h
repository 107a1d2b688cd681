// Which entries of a worker's subnetwork tensors are shared with which other workers. A tensor
// splits into cells: along every dim that a unit group slices, the positions are grouped by their
// units' holder sets, and a cell is one such group per sliced dim; its holders are the workers
// that hold all of its units (and the branch owning the tensor, if any). Most tensors are one
// cell (a branch's tensors, a bias); an MLP hidden weight between two masked layers has up to
// one cell per pair of holder sets.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <torch/torch.h>

#include "tessera/sdp/mask_plan.h"

namespace tessera::sdp {

struct Cell {
  size_t tensor = 0;  // index into the tensor list given to shared_cells
  // (dim, positions) narrowing the tensor, in increasing dim order; empty: the whole tensor.
  std::vector<std::pair<int64_t, torch::Tensor>> selections;
  WorkerSet holders = 0;  // from shared_cells: always contains the worker itself
};

// The cells of worker `worker`'s tensors `names` (named as in the full model), in tensor order.
std::vector<Cell> shared_cells(const MaskPlan& plan, int64_t worker,
                               const std::vector<std::string>& names);

// The same for the full model's tensors `names` (backward masking, where every worker has them
// all): every unit's entries are there, so a cell's holders need not include any given worker,
// and are empty for entries that no worker holds (a weight between two neurons never held
// together).
std::vector<Cell> full_model_cells(const MaskPlan& plan, const std::vector<std::string>& names);

// A cell of the full model's layout under two plans (an SDP plan redraw): `cell.holders` hold its
// entries under the current plan, `next_holders` under the next one (either may be empty).
struct PlanChangeCell {
  Cell cell;
  WorkerSet next_holders = 0;
};
std::vector<PlanChangeCell> plan_change_cells(const MaskPlan& current, const MaskPlan& next,
                                              const std::vector<std::string>& names);

// Cells of the full model's tensor `name` in worker `worker`'s subnetwork layout under `plan`.
// The position maps are built once, for the many cells of a tensor (a plan change maps thousands).
class WorkerLayout {
 public:
  WorkerLayout(const MaskPlan& plan, int64_t worker, const std::string& name);
  // Throws tessera::Error if the worker does not hold all of the cell's entries.
  Cell map(const Cell& cell) const;

 private:
  int64_t worker_;
  std::string name_;
  std::map<int64_t, torch::Tensor> positions_;  // by dim: full position -> the worker's, or -1
};

// The cell's entries of `tensor`, flattened (a view when the cell is the whole tensor).
torch::Tensor gather_cell(const torch::Tensor& tensor, const Cell& cell);
// How many entries the cell has in `tensor`.
int64_t gather_numel(const torch::Tensor& tensor, const Cell& cell);
// Writes `values` (as from gather_cell) back into the cell's entries of `tensor`.
void scatter_cell(torch::Tensor tensor, const Cell& cell, const torch::Tensor& values);

// Cells that travel point to point between this worker and one peer, in one message.
struct CellMessage {
  int64_t peer = 0;
  bool send = false;          // this worker sends (else receives)
  std::vector<size_t> cells;  // indices into the caller's cells, in their order
};

// This worker's (`rank` of `workers`) messages of cells [0, count): for every ordered pair
// (sender, receiver) of distinct workers that it belongs to, the cells moves(cell, sender,
// receiver) selects, in messages of at most `max_bytes` by bytes(cell) (whole cells; one cell may
// be larger; 0: one message per pair). The pairs come sender by sender, receiver by receiver, the
// same order on every worker, so that a blocking send never waits for a receive its peer has not
// reached yet. Backward masking's refresh and a plan change both send this way.
std::vector<CellMessage> plan_cell_messages(
    int64_t rank, int64_t workers, size_t count,
    const std::function<bool(size_t cell, int64_t sender, int64_t receiver)>& moves,
    const std::function<int64_t(size_t cell)>& bytes = nullptr, int64_t max_bytes = 0);

}  // namespace tessera::sdp
