#include "tessera/sdp/worker_model.h"

#include <set>

#include "tessera/core/error.h"
#include "tessera/core/seeding.h"
#include "tessera/models/subnet.h"

namespace tessera::sdp {
namespace {

bool starts_with(const std::string& text, const std::string& prefix) {
  return text.compare(0, prefix.size(), prefix) == 0;
}

// The float parameters and buffers of a module, by name (what workers send to rank 0).
std::vector<std::pair<std::string, torch::Tensor>> float_state(torch::nn::Module& module) {
  std::vector<std::pair<std::string, torch::Tensor>> state;
  for (const auto& p : module.named_parameters()) state.emplace_back(p.key(), p.value());
  for (const auto& b : module.named_buffers())
    if (b.value().is_floating_point()) state.emplace_back(b.key(), b.value());
  return state;
}

std::vector<torch::Tensor> tensors_of(
    const std::vector<std::pair<std::string, torch::Tensor>>& state) {
  std::vector<torch::Tensor> tensors;
  for (const auto& [name, tensor] : state) tensors.push_back(tensor.detach());
  return tensors;
}

// Rank 0: every keeper's kept entries (`own`: rank 0's) into the full model's parameters.
void write_kept_entries(dist::ProcessGroup& world, const KeptEntries& kept, const MaskPlan& plan,
                        torch::OrderedDict<std::string, torch::Tensor>& full_params,
                        const std::vector<torch::Tensor>& own) {
  if (!kept.started) return;
  const std::vector<std::string> names = masked_tensor_names(plan);
  for (int64_t rank = 0; rank < world.size(); ++rank) {
    std::vector<const UnheldCell*> cells;
    std::vector<torch::Tensor> values;
    for (const auto& unheld : kept.cells) {
      if (unheld.keeper != rank) continue;
      const torch::Tensor* target = full_params.find(names[unheld.cell.tensor]);
      if (target == nullptr)
        throw Error("sdp: kept tensor '" + names[unheld.cell.tensor] + "' is not a parameter");
      cells.push_back(&unheld);
      values.push_back(torch::empty({gather_numel(*target, unheld.cell)}, target->options()));
    }
    if (cells.empty()) continue;
    if (rank == 0)
      values = own;
    else
      world.recv(values, rank, /*tag=*/8);
    for (size_t i = 0; i < cells.size(); ++i)
      scatter_cell(full_params[names[cells[i]->cell.tensor]], cells[i]->cell, values[i]);
  }
}

}  // namespace

models::StagedModel build_worker_model(const models::ModelConfig& model,
                                       const models::Subnet& subnet, uint64_t seed) {
  const auto rng_lock = lock_global_generator();
  if (subnet.empty()) {
    torch::manual_seed(seed);
    return models::build_model(model);
  }
  models::ModelConfig sub_config = model;
  sub_config.subnet = subnet;
  models::StagedModel sub = models::build_model(sub_config);
  const auto groups = models::architecture(model.arch).unit_groups(model);
  torch::NoGradGuard no_grad;
  // Building stage after stage from one seed draws the same numbers as building the whole model.
  torch::manual_seed(seed);
  const int64_t stages = models::architecture(model.arch).num_stages(model);
  for (int64_t stage = 0; stage < stages; ++stage) {
    models::StagedModel full_stage = models::build_model(model, stage, stage + 1);
    const std::string prefix = "stage" + std::to_string(stage) + ".";
    auto full_params = full_stage->named_parameters();
    auto full_buffers = full_stage->named_buffers();
    auto copy = [&](const auto& sub_items, const auto& full_items) {
      for (const auto& item : sub_items) {
        if (!starts_with(item.key(), prefix)) continue;
        const torch::Tensor* source = full_items.find(item.key());
        if (source == nullptr)
          throw Error("sdp: subnetwork tensor '" + item.key() + "' is not in the full model");
        item.value().copy_(models::select_held_entries(*source, item.key(), subnet, groups));
      }
    };
    copy(sub->named_parameters(), full_params);
    copy(sub->named_buffers(), full_buffers);
  }
  return sub;
}

models::StagedModel assemble_full_model(dist::ProcessGroup& world, torch::nn::Module& worker_model,
                                        const MaskPlan& plan, const models::ModelConfig& model,
                                        uint64_t seed, double rescale, const KeptEntries& kept) {
  torch::NoGradGuard no_grad;
  const auto state = float_state(worker_model);
  std::vector<torch::Tensor> mine = tensors_of(state);
  std::vector<torch::Tensor> my_kept;
  for (const auto& [index, cell] : kept.kept) my_kept.push_back(cell.value.reshape({-1}));
  if (world.rank() != 0) {
    world.send(mine, 0, /*tag=*/7);
    if (!my_kept.empty()) world.send(my_kept, 0, /*tag=*/8);
    return models::StagedModel(nullptr);
  }
  models::StagedModel full(nullptr);
  {
    const auto rng_lock = lock_global_generator();
    torch::manual_seed(seed);
    full = models::build_model(model);
  }
  const torch::Device device = mine.empty() ? torch::Device(torch::kCPU) : mine[0].device();
  full->to(device);
  auto full_params = full->named_parameters();
  auto full_buffers = full->named_buffers();
  auto write = [&](const std::vector<std::pair<std::string, torch::Tensor>>& worker_state,
                   const models::Subnet& subnet) {
    for (const auto& [name, tensor] : worker_state) {
      torch::Tensor* target = full_params.find(name);
      if (target == nullptr) target = full_buffers.find(name);
      if (target == nullptr) throw Error("sdp: worker tensor '" + name + "' is not in the model");
      models::scatter_held_entries(*target, tensor, name, subnet, plan.groups);
    }
  };
  // Highest rank first, so that the lowest-ranked holder of an entry writes it last.
  for (int64_t rank = world.size() - 1; rank >= 1; --rank) {
    models::ModelConfig sub_config = model;
    sub_config.subnet = plan.subnet(rank);
    models::StagedModel buffer(nullptr);
    {
      const auto rng_lock = lock_global_generator();
      buffer = models::build_model(sub_config);
    }
    buffer->to(device);
    auto buffer_state = float_state(*buffer);
    std::vector<torch::Tensor> received = tensors_of(buffer_state);
    world.recv(received, rank, /*tag=*/7);
    write(buffer_state, sub_config.subnet);
  }
  write(state, plan.subnet(0));
  write_kept_entries(world, kept, plan, full_params, my_kept);
  if (rescale > 0) rescale_masked_units(*full, plan, rescale);
  return full;
}

void rescale_masked_units(torch::nn::Module& full_model, const MaskPlan& plan, double factor) {
  torch::NoGradGuard no_grad;
  std::set<std::string> outputs;
  for (const auto& group : plan.groups)
    if (plan.holders.count(group.name) != 0)
      for (const auto& slice : group.slices)
        if (slice.scales_output) outputs.insert(slice.name);
  auto params = full_model.named_parameters();
  auto buffers = full_model.named_buffers();
  for (const auto& name : outputs) {
    torch::Tensor* tensor = params.find(name);
    if (tensor == nullptr) tensor = buffers.find(name);
    if (tensor == nullptr) throw Error("sdp: rescaled tensor '" + name + "' is not in the model");
    tensor->mul_(factor);
  }
}

}  // namespace tessera::sdp
