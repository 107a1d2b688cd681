#include "tessera/sdp/shared_entries.h"

#include <map>

#include "tessera/core/error.h"

namespace tessera::sdp {
namespace {

// Holder set of every position along one sliced dim, in the worker's (subnet) layout.
struct DimHolders {
  int64_t dim = 0;
  std::vector<WorkerSet> positions;
};

// Every worker, for the full model's layout.
constexpr int64_t kFullLayout = -1;

std::vector<WorkerSet> position_holders(const MaskPlan& plan, const models::UnitGroup& group,
                                        const models::TensorSlice& slice, int64_t worker) {
  std::vector<WorkerSet> positions;
  for (int64_t u = 0; u < group.size; ++u) {
    const WorkerSet holders = plan.unit_holders(group.name, u);
    // The worker's tensor has no entries of a unit it does not hold.
    if (worker != kFullLayout && !(holders >> worker & 1)) continue;
    positions.insert(positions.end(), static_cast<size_t>(slice.stride), holders);
  }
  return positions;
}

// Splits the positions of each sliced dim into classes of equal holder sets, then forms every
// combination of one class per dim.
void add_cells(size_t tensor, WorkerSet whole, const std::vector<DimHolders>& dims,
               std::vector<Cell>& cells) {
  std::vector<std::vector<std::pair<WorkerSet, std::vector<int64_t>>>> classes;
  for (const auto& d : dims) {
    std::map<WorkerSet, std::vector<int64_t>> by_set;
    for (size_t i = 0; i < d.positions.size(); ++i)
      by_set[d.positions[i]].push_back(static_cast<int64_t>(i));
    classes.emplace_back(by_set.begin(), by_set.end());
  }
  std::vector<size_t> pick(dims.size(), 0);
  while (true) {
    Cell cell{tensor, {}, whole};
    for (size_t d = 0; d < dims.size(); ++d) {
      const auto& [set, positions] = classes[d][pick[d]];
      cell.holders &= set;
      if (classes[d].size() > 1)  // one class spans the whole dim: no narrowing needed
        cell.selections.emplace_back(dims[d].dim, torch::tensor(positions, torch::kLong));
    }
    cells.push_back(std::move(cell));
    size_t d = 0;
    while (d < dims.size() && ++pick[d] == classes[d].size()) pick[d++] = 0;
    if (d == dims.size()) return;
  }
}

// The cells of `names` in worker `worker`'s layout, or the full model's (kFullLayout).
std::vector<Cell> cells_in_layout(const MaskPlan& plan, int64_t worker,
                                  const std::vector<std::string>& names) {
  std::vector<Cell> cells;
  for (size_t t = 0; t < names.size(); ++t) {
    WorkerSet whole = plan.all_workers();
    std::vector<DimHolders> dims;
    for (const auto& group : plan.groups) {
      for (const auto& slice : group.slices) {
        if (slice.name != names[t]) continue;
        if (slice.dim < 0) {
          whole &= plan.unit_holders(group.name, 0);
          continue;
        }
        for (const auto& d : dims)
          if (d.dim == slice.dim)
            throw Error("sdp: tensor '" + names[t] + "' is sliced twice along dim " +
                        std::to_string(slice.dim));
        dims.push_back({slice.dim, position_holders(plan, group, slice, worker)});
      }
    }
    std::sort(dims.begin(), dims.end(),
              [](const DimHolders& a, const DimHolders& b) { return a.dim < b.dim; });
    add_cells(t, whole, dims, cells);
  }
  return cells;
}

}  // namespace

std::vector<Cell> shared_cells(const MaskPlan& plan, int64_t worker,
                               const std::vector<std::string>& names) {
  return cells_in_layout(plan, worker, names);
}

std::vector<Cell> full_model_cells(const MaskPlan& plan, const std::vector<std::string>& names) {
  return cells_in_layout(plan, kFullLayout, names);
}

torch::Tensor gather_cell(const torch::Tensor& tensor, const Cell& cell) {
  torch::Tensor part = tensor;
  for (const auto& [dim, positions] : cell.selections)
    part = part.index_select(dim, positions.to(tensor.device()));
  return part.reshape({-1});
}

int64_t gather_numel(const torch::Tensor& tensor, const Cell& cell) {
  int64_t n = tensor.numel();
  for (const auto& [dim, positions] : cell.selections) n = n / tensor.size(dim) * positions.numel();
  return n;
}

namespace {
void scatter_from(torch::Tensor tensor, const Cell& cell, size_t i, const torch::Tensor& values) {
  if (i == cell.selections.size()) {
    tensor.copy_(values.view(tensor.sizes()));
    return;
  }
  const auto& [dim, positions] = cell.selections[i];
  const torch::Tensor index = positions.to(tensor.device());
  torch::Tensor slab = tensor.index_select(dim, index);
  scatter_from(slab, cell, i + 1, values);
  tensor.index_copy_(dim, index, slab);
}
}  // namespace

void scatter_cell(torch::Tensor tensor, const Cell& cell, const torch::Tensor& values) {
  torch::NoGradGuard no_grad;
  if (cell.selections.empty()) {
    if (!values.is_same(tensor)) tensor.view({-1}).copy_(values);
    return;
  }
  scatter_from(std::move(tensor), cell, 0, values);
}

}  // namespace tessera::sdp
