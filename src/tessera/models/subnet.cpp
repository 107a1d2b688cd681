#include "tessera/models/subnet.h"

#include "tessera/core/error.h"

namespace tessera::models {

void validate_subnet(const Subnet& subnet, const std::vector<UnitGroup>& groups) {
  for (const auto& [name, held] : subnet) {
    const UnitGroup* group = nullptr;
    for (const auto& g : groups)
      if (g.name == name) group = &g;
    require(group != nullptr, "subnet names unknown unit group '" + name + "'");
    for (size_t i = 0; i < held.size(); ++i) {
      require(held[i] >= 0 && held[i] < group->size,
              "subnet group '" + name + "': unit " + std::to_string(held[i]) +
                  " out of range [0, " + std::to_string(group->size) + ")");
      require(i == 0 || held[i - 1] < held[i],
              "subnet group '" + name + "': unit indices must be sorted and unique");
    }
    require(group->kind == UnitKind::Branch || !held.empty(),
            "subnet group '" + name + "' holds no " + to_string(group->kind) +
                ": the subnetwork would be disconnected");
  }
}

int64_t held_units(const Subnet& subnet, const std::string& name, int64_t full_size) {
  auto it = subnet.find(name);
  return it == subnet.end() ? full_size : static_cast<int64_t>(it->second.size());
}

bool holds_branch(const Subnet& subnet, const std::string& name) {
  return held_units(subnet, name, 1) > 0;
}

torch::Tensor entry_indices(const std::vector<int64_t>& units, int64_t stride) {
  auto starts = torch::tensor(units, torch::kLong).mul(stride).unsqueeze(1);
  return starts.add(torch::arange(stride, torch::kLong).unsqueeze(0)).flatten();
}

namespace {
// The (dim, entry indices) selections that cut the subnet's part out of the full tensor `name`.
std::vector<std::pair<int64_t, torch::Tensor>> held_selections(
    const std::string& name, const Subnet& subnet, const std::vector<UnitGroup>& groups) {
  std::vector<std::pair<int64_t, torch::Tensor>> selections;
  for (const auto& group : groups) {
    auto held = subnet.find(group.name);
    if (held == subnet.end()) continue;
    for (const auto& slice : group.slices)
      if (slice.name == name && slice.dim >= 0)
        selections.emplace_back(slice.dim, entry_indices(held->second, slice.stride));
  }
  return selections;
}

// Writes `part` into `tensor` at selections[i...] (each selection narrows one dim).
void scatter_from(torch::Tensor tensor, const torch::Tensor& part,
                  const std::vector<std::pair<int64_t, torch::Tensor>>& selections, size_t i) {
  if (i == selections.size()) {
    tensor.copy_(part);
    return;
  }
  const auto& [dim, indices] = selections[i];
  if (i + 1 == selections.size()) {
    tensor.index_copy_(dim, indices, part);
    return;
  }
  torch::Tensor slab = tensor.index_select(dim, indices);
  scatter_from(slab, part, selections, i + 1);
  tensor.index_copy_(dim, indices, slab);
}

torch::Tensor held_part(torch::Tensor tensor, const std::string& name, const Subnet& subnet,
                        const std::vector<UnitGroup>& groups) {
  for (const auto& [dim, indices] : held_selections(name, subnet, groups))
    tensor = tensor.index_select(dim, indices);
  return tensor;
}

template <typename Items>
void copy_items(const Items& full_items, const Items& sub_items, const Subnet& subnet,
                const std::vector<UnitGroup>& groups) {
  for (const auto& item : sub_items) {
    const torch::Tensor* source = full_items.find(item.key());
    if (source == nullptr)
      throw Error("subnet tensor '" + item.key() + "' is not in the full model");
    torch::Tensor part = held_part(*source, item.key(), subnet, groups);
    if (part.sizes() != item.value().sizes())
      throw Error("subnet tensor '" + item.key() + "' has shape " + c10::str(item.value().sizes()) +
                  " but its held part of the full model is " + c10::str(part.sizes()));
    item.value().copy_(part);
  }
}
}  // namespace

torch::Tensor select_held_entries(const torch::Tensor& tensor, const std::string& name,
                                  const Subnet& subnet, const std::vector<UnitGroup>& groups) {
  return held_part(tensor, name, subnet, groups);
}

void scatter_held_entries(torch::Tensor tensor, const torch::Tensor& part, const std::string& name,
                          const Subnet& subnet, const std::vector<UnitGroup>& groups) {
  torch::NoGradGuard no_grad;
  const auto selections = held_selections(name, subnet, groups);
  std::vector<int64_t> expected = tensor.sizes().vec();
  for (const auto& [dim, indices] : selections) expected[dim] = indices.numel();
  if (part.sizes().vec() != expected)
    throw Error("subnet tensor '" + name + "' has shape " + c10::str(part.sizes()) +
                " but the full model's tensor holds " + c10::str(expected) + " of it");
  scatter_from(std::move(tensor), part, selections, 0);
}

void copy_held_entries(torch::nn::Module& full, torch::nn::Module& sub, const Subnet& subnet,
                       const std::vector<UnitGroup>& groups) {
  torch::NoGradGuard no_grad;
  copy_items(full.named_parameters(), sub.named_parameters(), subnet, groups);
  copy_items(full.named_buffers(), sub.named_buffers(), subnet, groups);
}

}  // namespace tessera::models
