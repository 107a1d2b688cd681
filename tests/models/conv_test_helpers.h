// Checks shared by the residual conv family tests (ResNetTest, WrnTest).
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "tessera/models/architecture.h"
#include "tessera/models/staged_model.h"
#include "tessera/models/subnet.h"

namespace tessera::models::testing {

inline ModelConfig conv_config(const std::string& arch, int64_t depth, double width,
                               Shape input = {3, 32, 32}, int64_t num_classes = 10) {
  ModelConfig config;
  config.arch = arch;
  config.depth = depth;
  config.width = width;
  config.input_shape = std::move(input);
  config.num_classes = num_classes;
  return config;
}

// Every parameter and buffer of a module, by full name.
inline std::map<std::string, torch::Tensor> named_tensors(torch::nn::Module& module) {
  std::map<std::string, torch::Tensor> tensors;
  for (const auto& item : module.named_parameters()) tensors[item.key()] = item.value();
  for (const auto& item : module.named_buffers()) tensors[item.key()] = item.value();
  return tensors;
}

inline std::set<std::string> tensor_names(torch::nn::Module& module) {
  std::set<std::string> names;
  for (const auto& [name, tensor] : named_tensors(module)) names.insert(name);
  return names;
}

// Runs the stages one at a time (each built alone, as a PNN partition is) and checks that every
// tensor between stages has the shape the architecture announces.
inline void expect_boundaries_match(const ModelConfig& resolved, int64_t batch) {
  const Architecture& arch = architecture(resolved.arch);
  const int64_t stages = arch.num_stages(resolved);
  torch::Tensor x = torch::randn(with_batch(batch, arch.boundary_shape(resolved, 0)));
  for (int64_t stage = 0; stage < stages; ++stage) {
    StagedModel part(resolved, stage, stage + 1);
    x = part->forward(x);
    EXPECT_EQ(x.sizes().vec(), with_batch(batch, arch.boundary_shape(resolved, stage + 1)))
        << "after stage " << stage << " (" << arch.stage_name(resolved, stage) << ")";
  }
}

// Partitions [0, cut) and [cut, n) built separately hold exactly the full model's tensor names.
inline void expect_partitions_cover_full_model(const ModelConfig& resolved, int64_t cut) {
  StagedModel full(resolved);
  StagedModel front(resolved, 0, cut);
  StagedModel back(resolved, cut, -1);
  std::set<std::string> joined = tensor_names(*front);
  for (const auto& name : tensor_names(*back)) EXPECT_TRUE(joined.insert(name).second) << name;
  EXPECT_EQ(joined, tensor_names(*full));
}

// Every slice of every unit group names a tensor of the full model whose extent along the slice's
// dim is the group's size; a branch group holds every tensor of its block except the shortcut.
inline void expect_unit_groups_match_tensors(const ModelConfig& resolved) {
  StagedModel full(resolved);
  const auto tensors = named_tensors(*full);
  const auto groups = architecture(resolved.arch).unit_groups(resolved);
  for (const UnitGroup& group : groups) {
    std::set<std::string> sliced;
    for (const TensorSlice& slice : group.slices) {
      auto it = tensors.find(slice.name);
      ASSERT_NE(it, tensors.end()) << group.name << " names missing tensor " << slice.name;
      if (slice.dim >= 0) {
        EXPECT_EQ(it->second.size(slice.dim), group.size * slice.stride) << slice.name;
      }
      sliced.insert(slice.name);
    }
    if (group.kind != UnitKind::Branch) continue;
    const std::string prefix = "stage" + std::to_string(group.stage) + ".";
    std::set<std::string> branch_tensors;
    for (const auto& [name, tensor] : tensors)
      if (name.rfind(prefix, 0) == 0 && name.find(".shortcut_") == std::string::npos)
        branch_tensors.insert(name);
    EXPECT_EQ(sliced, branch_tensors) << group.name;
  }
}

// Gives every batch norm non-trivial statistics and affine parameters, so a wrongly sliced one
// changes the output.
inline void randomize_norms(torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  auto ends_with = [](const std::string& name, const std::string& suffix) {
    return name.size() >= suffix.size() &&
           name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  for (auto& [name, tensor] : named_tensors(module)) {
    if (tensor.dim() != 1 || name.find("bn") == std::string::npos) continue;
    if (ends_with(name, ".running_var") || ends_with(name, ".weight"))
      tensor.uniform_(0.5, 1.5);
    else if (ends_with(name, ".running_mean") || ends_with(name, ".bias"))
      tensor.normal_(0.0, 0.1);
  }
}

// Builds the full model and the subnetwork `subnet` of it with the subnet's weights (copied with
// copy_held_entries, as SDP materialises a subnetwork), silences in the full model what the
// subnet leaves out (with `silence`), and checks both compute the same (eval mode, so batch norm
// uses the copied running statistics).
template <typename Silence>
void expect_subnet_matches_silenced_full(ModelConfig resolved, const Subnet& subnet,
                                         Silence silence) {
  StagedModel full(resolved);
  randomize_norms(*full);
  resolved.subnet = subnet;
  StagedModel sub(architecture(resolved.arch).resolve(resolved));
  copy_held_entries(*full, *sub, subnet, architecture(resolved.arch).unit_groups(resolved));
  {
    torch::NoGradGuard no_grad;
    silence(named_tensors(*full));
  }
  full->eval();
  sub->eval();
  torch::Tensor x = torch::randn(with_batch(3, resolved.input_shape));
  torch::Tensor expected = full->forward(x);
  torch::Tensor actual = sub->forward(x);
  EXPECT_TRUE(torch::allclose(actual, expected, 1e-4, 1e-5))
      << "max difference " << (actual - expected).abs().max().item<double>();
}

// One training step's forward and backward through the model: every parameter gets a gradient.
inline void expect_trains(StagedModel& model, int64_t batch) {
  model->train();
  torch::Tensor x = torch::randn(with_batch(batch, model->input_shape()));
  torch::Tensor logits = model->forward(x);
  ASSERT_EQ(logits.sizes().vec(), with_batch(batch, model->output_shape()));
  torch::Tensor labels = torch::randint(logits.size(1), {batch}, torch::kLong);
  torch::nn::functional::cross_entropy(logits, labels).backward();
  for (const auto& item : model->named_parameters()) {
    ASSERT_TRUE(item.value().grad().defined()) << item.key();
    EXPECT_TRUE(item.value().grad().isfinite().all().item<bool>()) << item.key();
  }
}

}  // namespace tessera::models::testing
