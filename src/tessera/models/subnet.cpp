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

}  // namespace tessera::models
