#include "tessera/sdp/shared_entries.h"

#include <algorithm>
#include <map>

#include "tessera/core/error.h"

namespace tessera::sdp {
namespace {

// The holders of an entry under two plans: the current one and the next (plan changes). With a
// single plan both are the same. Intersecting them intersects each.
struct Holders {
  WorkerSet now = 0;
  WorkerSet next = 0;
  Holders operator&(const Holders& other) const { return {now & other.now, next & other.next}; }
  bool operator<(const Holders& other) const {
    return now != other.now ? now < other.now : next < other.next;
  }
};

struct Plans {
  const MaskPlan& now;
  const MaskPlan& next;
  Holders all() const { return {now.all_workers(), next.all_workers()}; }
  Holders unit(const std::string& group, int64_t unit) const {
    return {now.unit_holders(group, unit), next.unit_holders(group, unit)};
  }
};

// Holders of every position along one sliced dim, in the worker's (subnet) layout.
struct DimHolders {
  int64_t dim = 0;
  std::vector<Holders> positions;
};

// Every worker, for the full model's layout.
constexpr int64_t kFullLayout = -1;

std::vector<Holders> position_holders(const Plans& plans, const models::UnitGroup& group,
                                      const models::TensorSlice& slice, int64_t worker) {
  std::vector<Holders> positions;
  for (int64_t u = 0; u < group.size; ++u) {
    const Holders holders = plans.unit(group.name, u);
    // The worker's tensor has no entries of a unit it does not hold.
    if (worker != kFullLayout && !(holders.now >> worker & 1)) continue;
    positions.insert(positions.end(), static_cast<size_t>(slice.stride), holders);
  }
  return positions;
}

// Splits the positions of each sliced dim into classes of equal holders, then forms every
// combination of one class per dim.
void add_cells(size_t tensor, Holders whole, const std::vector<DimHolders>& dims,
               std::vector<PlanChangeCell>& cells) {
  std::vector<std::vector<std::pair<Holders, std::vector<int64_t>>>> classes;
  for (const auto& d : dims) {
    std::map<Holders, std::vector<int64_t>> by_set;
    for (size_t i = 0; i < d.positions.size(); ++i)
      by_set[d.positions[i]].push_back(static_cast<int64_t>(i));
    classes.emplace_back(by_set.begin(), by_set.end());
  }
  std::vector<size_t> pick(dims.size(), 0);
  while (true) {
    Holders holders = whole;
    Cell cell{tensor, {}, 0};
    for (size_t d = 0; d < dims.size(); ++d) {
      const auto& [set, positions] = classes[d][pick[d]];
      holders = holders & set;
      if (classes[d].size() > 1)  // one class spans the whole dim: no narrowing needed
        cell.selections.emplace_back(dims[d].dim, torch::tensor(positions, torch::kLong));
    }
    cell.holders = holders.now;
    cells.push_back({std::move(cell), holders.next});
    size_t d = 0;
    while (d < dims.size() && ++pick[d] == classes[d].size()) pick[d++] = 0;
    if (d == dims.size()) return;
  }
}

// The cells of `names` in worker `worker`'s layout under plans.now, or the full model's
// (kFullLayout).
std::vector<PlanChangeCell> cells_in_layout(const Plans& plans, int64_t worker,
                                            const std::vector<std::string>& names) {
  std::vector<PlanChangeCell> cells;
  for (size_t t = 0; t < names.size(); ++t) {
    Holders whole = plans.all();
    std::vector<DimHolders> dims;
    for (const auto& group : plans.now.groups) {
      for (const auto& slice : group.slices) {
        if (slice.name != names[t]) continue;
        if (slice.dim < 0) {
          whole = whole & plans.unit(group.name, 0);
          continue;
        }
        for (const auto& d : dims)
          if (d.dim == slice.dim)
            throw Error("sdp: tensor '" + names[t] + "' is sliced twice along dim " +
                        std::to_string(slice.dim));
        dims.push_back({slice.dim, position_holders(plans, group, slice, worker)});
      }
    }
    std::sort(dims.begin(), dims.end(),
              [](const DimHolders& a, const DimHolders& b) { return a.dim < b.dim; });
    add_cells(t, whole, dims, cells);
  }
  return cells;
}

std::vector<Cell> current_cells(std::vector<PlanChangeCell> cells) {
  std::vector<Cell> out;
  out.reserve(cells.size());
  for (auto& c : cells) out.push_back(std::move(c.cell));
  return out;
}

}  // namespace

std::vector<Cell> shared_cells(const MaskPlan& plan, int64_t worker,
                               const std::vector<std::string>& names) {
  return current_cells(cells_in_layout({plan, plan}, worker, names));
}

std::vector<Cell> full_model_cells(const MaskPlan& plan, const std::vector<std::string>& names) {
  return current_cells(cells_in_layout({plan, plan}, kFullLayout, names));
}

std::vector<PlanChangeCell> plan_change_cells(const MaskPlan& current, const MaskPlan& next,
                                              const std::vector<std::string>& names) {
  require(current.groups.size() == next.groups.size(),
          "sdp: a plan change must keep the model (its unit groups differ)");
  return cells_in_layout({current, next}, kFullLayout, names);
}

WorkerLayout::WorkerLayout(const MaskPlan& plan, int64_t worker, const std::string& name)
    : worker_(worker), name_(name) {
  for (const auto& group : plan.groups)
    for (const auto& slice : group.slices) {
      if (slice.name != name || slice.dim < 0) continue;
      std::vector<int64_t> layout;
      int64_t next_position = 0;
      for (int64_t u = 0; u < group.size; ++u) {
        const bool held = plan.unit_holders(group.name, u) >> worker & 1;
        for (int64_t i = 0; i < slice.stride; ++i) layout.push_back(held ? next_position++ : -1);
      }
      positions_[slice.dim] = torch::tensor(layout, torch::kLong);
    }
}

Cell WorkerLayout::map(const Cell& cell) const {
  Cell mapped{cell.tensor, {}, cell.holders};
  for (const auto& [dim, positions] : cell.selections) {
    const auto layout = positions_.find(dim);
    if (layout == positions_.end())
      throw Error("sdp: tensor '" + name_ + "' is not sliced along dim " + std::to_string(dim));
    const torch::Tensor index = layout->second.index_select(0, positions);
    if (index.numel() > 0 && index.min().item<int64_t>() < 0)
      throw Error("sdp: worker " + std::to_string(worker_) +
                  " does not hold all entries of a cell of '" + name_ + "'");
    mapped.selections.emplace_back(dim, index);
  }
  return mapped;
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

std::vector<CellMessage> plan_cell_messages(
    int64_t rank, int64_t workers, size_t count,
    const std::function<bool(size_t cell, int64_t sender, int64_t receiver)>& moves,
    const std::function<int64_t(size_t cell)>& bytes, int64_t max_bytes) {
  std::vector<CellMessage> messages;
  for (int64_t sender = 0; sender < workers; ++sender) {
    for (int64_t receiver = 0; receiver < workers; ++receiver) {
      if (sender == receiver || (rank != sender && rank != receiver)) continue;
      int64_t message_bytes = 0;
      bool open = false;
      for (size_t c = 0; c < count; ++c) {
        if (!moves(c, sender, receiver)) continue;
        const int64_t cell_bytes = max_bytes > 0 ? bytes(c) : 0;
        if (!open || (max_bytes > 0 && message_bytes + cell_bytes > max_bytes)) {
          messages.push_back({rank == sender ? receiver : sender, rank == sender, {}});
          message_bytes = 0;
          open = true;
        }
        messages.back().cells.push_back(c);
        message_bytes += cell_bytes;
      }
    }
  }
  return messages;
}

}  // namespace tessera::sdp
