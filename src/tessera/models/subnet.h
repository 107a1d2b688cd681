// Helpers for reading and checking a Subnet (which units of each group a model holds).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "tessera/models/architecture.h"
#include "tessera/models/model_config.h"

namespace tessera::models {

// Throws UsageError unless every entry names a group of `groups`, its indices are sorted, unique
// and in range, and no neuron/channel/head group is left empty (the network would be cut).
void validate_subnet(const Subnet& subnet, const std::vector<UnitGroup>& groups);

// How many units of group `name` (of `full_size` units) the subnet holds.
int64_t held_units(const Subnet& subnet, const std::string& name, int64_t full_size);

// Whether the subnet holds the single unit of branch group `name`.
bool holds_branch(const Subnet& subnet, const std::string& name);

// Indices of the tensor entries owned by `units` along a sliced dim: unit u owns
// [u * stride, (u + 1) * stride).
torch::Tensor entry_indices(const std::vector<int64_t>& units, int64_t stride);

// The entries of `tensor`, the full model's tensor named `name`, that the subnet holds (in the
// subnet model's layout). `tensor` itself if the subnet holds it whole.
torch::Tensor select_held_entries(const torch::Tensor& tensor, const std::string& name,
                                  const Subnet& subnet, const std::vector<UnitGroup>& groups);

// The inverse: writes `part` (a subnet model's tensor named `name`) into the entries of the full
// model's `tensor` that the subnet holds. Throws tessera::Error if the shapes do not agree.
void scatter_held_entries(torch::Tensor tensor, const torch::Tensor& part, const std::string& name,
                          const Subnet& subnet, const std::vector<UnitGroup>& groups);

// Copies into every parameter and buffer of `sub` (a model built with `subnet`) the entries of the
// same-named tensor of `full` that the subnet holds. `groups` are the full model's unit groups.
// Throws tessera::Error if a tensor of `sub` has no counterpart or the shapes do not agree.
void copy_held_entries(torch::nn::Module& full, torch::nn::Module& sub, const Subnet& subnet,
                       const std::vector<UnitGroup>& groups);

}  // namespace tessera::models
