#include "tessera/sdp/unheld_entries.h"

#include <algorithm>
#include <set>

#include "tessera/core/error.h"
#include "tessera/core/seeding.h"
#include "tessera/models/architecture.h"
#include "tessera/models/staged_model.h"

namespace tessera::sdp {
namespace {

// Entries of a cell along its sliced dims: the balance measure of unheld_cells (the other dims
// are the same for every cell of a tensor).
int64_t sliced_entries(const Cell& cell) {
  int64_t n = 1;
  for (const auto& [dim, positions] : cell.selections) n *= positions.numel();
  return n;
}

const torch::Tensor* selection_on(const Cell& cell, int64_t dim) {
  for (const auto& [d, positions] : cell.selections)
    if (d == dim) return &positions;
  return nullptr;
}

}  // namespace

std::vector<std::string> masked_tensor_names(const MaskPlan& plan) {
  std::set<std::string> names;
  for (const auto& group : plan.groups)
    for (const auto& slice : group.slices) names.insert(slice.name);
  return {names.begin(), names.end()};
}

std::vector<UnheldCell> unheld_cells(const MaskPlan& plan) {
  std::vector<int64_t> load(static_cast<size_t>(plan.config.workers), 0);
  std::vector<UnheldCell> unheld;
  for (auto& cell : full_model_cells(plan, masked_tensor_names(plan))) {
    if (cell.holders != 0) continue;
    const auto least = std::min_element(load.begin(), load.end());
    *least += sliced_entries(cell);
    unheld.push_back({std::move(cell), static_cast<int64_t>(least - load.begin())});
  }
  return unheld;
}

Cell in_cell_layout(const Cell& outer, const Cell& inner) {
  require(inner.tensor == outer.tensor, "sdp: a cell of another tensor");
  Cell mapped{inner.tensor, {}, inner.holders};
  for (const auto& [dim, outer_positions] : outer.selections) {
    const torch::Tensor* inner_positions = selection_on(inner, dim);
    require(inner_positions != nullptr, "sdp: a cell is not part of its containing cell");
    // outer's positions are increasing: a sorted search maps each inner position to its index.
    const torch::Tensor index = torch::searchsorted(outer_positions, *inner_positions);
    require(index.numel() == 0 ||
                (index.max().item<int64_t>() < outer_positions.numel() &&
                 torch::equal(outer_positions.index_select(0, index), *inner_positions)),
            "sdp: a cell is not part of its containing cell");
    mapped.selections.emplace_back(dim, index);
  }
  // Dims that only `inner` narrows keep their full-layout positions: outer spans them whole.
  for (const auto& [dim, positions] : inner.selections)
    if (selection_on(outer, dim) == nullptr) mapped.selections.emplace_back(dim, positions);
  std::sort(mapped.selections.begin(), mapped.selections.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  return mapped;
}

int64_t containing_cell(const std::vector<UnheldCell>& cells, const Cell& cell) {
  for (size_t i = 0; i < cells.size(); ++i) {
    const Cell& outer = cells[i].cell;
    if (outer.tensor != cell.tensor) continue;
    bool inside = true;
    for (const auto& [dim, positions] : outer.selections) {
      const torch::Tensor* own = selection_on(cell, dim);
      // Cells of one plan partition the tensor: one position decides.
      if (own == nullptr || own->numel() == 0 ||
          !torch::any(positions.eq((*own)[0].item<int64_t>())).item<bool>()) {
        inside = false;
        break;
      }
    }
    if (inside) return static_cast<int64_t>(i);
  }
  return -1;
}

std::vector<int64_t> cell_shape(const std::vector<int64_t>& full_shape, const Cell& cell) {
  std::vector<int64_t> shape = full_shape;
  for (const auto& [dim, positions] : cell.selections) shape.at(dim) = positions.numel();
  return shape;
}

std::shared_ptr<torch::nn::Module> KeptEntries::as_module() const {
  auto module = std::make_shared<torch::nn::Module>("KeptEntries");
  for (const auto& [index, cell] : kept) {
    const std::string prefix = "c" + std::to_string(index) + "_";
    module->register_buffer(prefix + "value", cell.value);
    for (size_t i = 0; i < cell.state.size(); ++i)
      module->register_buffer(prefix + "state" + std::to_string(i), cell.state[i]);
  }
  return module;
}

void KeptEntries::allocate(int64_t worker, size_t tensor, int64_t state_tensors,
                           torch::Device device) {
  const auto options = torch::TensorOptions().dtype(torch::kFloat32).device(device);
  for (size_t i = 0; i < cells.size(); ++i) {
    const UnheldCell& unheld = cells[i];
    if (unheld.keeper != worker || unheld.cell.tensor != tensor || kept.count(i) != 0) continue;
    const auto shape = cell_shape(full_shapes.at(tensor), unheld.cell);
    KeptCell cell{torch::zeros(shape, options), {}};
    for (int64_t s = 0; s < state_tensors; ++s) cell.state.push_back(torch::zeros(shape, options));
    kept.emplace(i, std::move(cell));
  }
}

KeptEntries unallocated_entries(const MaskPlan& plan,
                                const std::vector<std::vector<int64_t>>& full_shapes) {
  require(full_shapes.size() == masked_tensor_names(plan).size(),
          "sdp: kept entries need every masked tensor's shape");
  KeptEntries entries;
  entries.started = true;
  entries.cells = unheld_cells(plan);
  entries.full_shapes = full_shapes;
  return entries;
}

KeptEntries keep_entries(
    const MaskPlan& plan, int64_t worker, const std::vector<std::vector<int64_t>>& full_shapes,
    int64_t state_tensors, torch::Device device,
    const std::function<void(const std::string& name, const Cell& cell, KeptCell& kept)>& fill) {
  const std::vector<std::string> names = masked_tensor_names(plan);
  KeptEntries entries = unallocated_entries(plan, full_shapes);
  for (size_t t = 0; t < names.size(); ++t) entries.allocate(worker, t, state_tensors, device);
  for (auto& [index, kept] : entries.kept)
    fill(names[entries.cells[index].cell.tensor], entries.cells[index].cell, kept);
  return entries;
}

KeptEntries keep_initial_entries(const MaskPlan& plan, int64_t worker,
                                 const models::ModelConfig& model, uint64_t seed,
                                 int64_t state_tensors, torch::Device device) {
  torch::NoGradGuard no_grad;
  const std::vector<std::string> names = masked_tensor_names(plan);
  KeptEntries entries;
  entries.started = true;
  entries.cells = unheld_cells(plan);
  entries.full_shapes.resize(names.size());
  std::vector<bool> found(names.size(), false);
  // Building stage after stage from one seed draws the same numbers as building the whole model;
  // each stage's kept entries are taken before the next stage is built.
  const auto rng_lock = lock_global_generator();
  torch::manual_seed(seed);
  const int64_t stages = models::architecture(model.arch).num_stages(model);
  for (int64_t stage = 0; stage < stages; ++stage) {
    models::StagedModel full_stage = models::build_model(model, stage, stage + 1);
    auto tensors = full_stage->named_parameters();
    for (const auto& b : full_stage->named_buffers()) tensors.insert(b.key(), b.value());
    for (size_t t = 0; t < names.size(); ++t) {
      const torch::Tensor* full = tensors.find(names[t]);
      if (full == nullptr) continue;
      entries.full_shapes[t] = full->sizes().vec();
      found[t] = true;
      entries.allocate(worker, t, state_tensors, device);
      for (auto& [index, kept] : entries.kept)
        if (entries.cells[index].cell.tensor == t)
          kept.value.view({-1}).copy_(gather_cell(*full, entries.cells[index].cell));
    }
  }
  for (size_t t = 0; t < names.size(); ++t)
    require(found[t], "sdp: masked tensor '" + names[t] + "' is not in the model");
  return entries;
}

}  // namespace tessera::sdp
