#include "tessera/sdp/plan_change.h"

#include <map>
#include <set>
#include <string>
#include <vector>

#include "tessera/core/error.h"
#include "tessera/data/seeding.h"
#include "tessera/metrics/comm_counter.h"
#include "tessera/metrics/memory_tracker.h"
#include "tessera/metrics/timer.h"
#include "tessera/sdp/shared_entries.h"
#include "tessera/sdp/worker_model.h"
#include "tessera/train/optimizer_state.h"

namespace tessera::sdp {
namespace {

constexpr int64_t kPlanChangeTag = 11;

// One tensor of a worker's subnetwork with its optimizer state (none for a buffer).
struct Slot {
  torch::Tensor value;
  std::vector<torch::Tensor> state;
};
using Slots = std::map<std::string, Slot>;

// The float parameters and buffers that move (an integer buffer, batch norm's step count, does
// not).
Slots slots_of(torch::nn::Module& model, torch::optim::Optimizer& optimizer, int64_t steps) {
  Slots slots;
  for (const auto& p : model.named_parameters())
    slots[p.key()] = {p.value(), train::parameter_state(optimizer, p.value(), steps)};
  for (const auto& b : model.named_buffers())
    if (b.value().is_floating_point()) slots[b.key()] = {b.value(), {}};
  return slots;
}

int64_t bytes_of(const torch::Tensor& t) {
  return t.defined() ? t.numel() * static_cast<int64_t>(t.element_size()) : 0;
}

// Parameters, buffers, gradients and optimizer state of a worker.
int64_t training_state_bytes(torch::nn::Module& model, torch::optim::Optimizer& optimizer) {
  int64_t bytes = train::optimizer_state_bytes(optimizer);
  for (const auto& p : model.parameters()) bytes += bytes_of(p) + bytes_of(p.grad());
  for (const auto& b : model.buffers()) bytes += bytes_of(b);
  return bytes;
}

// The cell's entries of the slot's value and then of each state tensor, flattened.
std::vector<torch::Tensor> gather_slot(const Slot& slot, const Cell& cell) {
  std::vector<torch::Tensor> pieces = {gather_cell(slot.value, cell)};
  for (const auto& s : slot.state) pieces.push_back(gather_cell(s, cell));
  return pieces;
}

int64_t slot_numel(const Slot& slot, const Cell& cell) {
  return gather_numel(slot.value, cell) * static_cast<int64_t>(1 + slot.state.size());
}

// The inverse of gather_slot: `values` holds the value's entries, then each state tensor's.
void scatter_slot(Slot& slot, const Cell& cell, const torch::Tensor& values) {
  const int64_t n = gather_numel(slot.value, cell);
  scatter_cell(slot.value, cell, values.narrow(0, 0, n));
  for (size_t i = 0; i < slot.state.size(); ++i)
    scatter_cell(slot.state[i], cell, values.narrow(0, static_cast<int64_t>(i + 1) * n, n));
}

const Slot& slot_named(const Slots& slots, const std::string& name, const char* which) {
  auto found = slots.find(name);
  if (found == slots.end())
    throw Error(std::string("sdp plan change: the ") + which + " subnetwork has no tensor '" +
                name + "'");
  return found->second;
}

int64_t lowest_worker(WorkerSet set) {
  return __builtin_ctzll(set);
}

}  // namespace

MaskPlan redrawn_plan(const models::ModelConfig& model, PlanConfig config, int64_t redraw) {
  if (redraw > 0) config.seed = data::mix_seed(config.seed, static_cast<uint64_t>(redraw));
  return make_mask_plan(model, config);
}

WorkerState change_plan(dist::ProcessGroup& world, const MaskPlan& from, const MaskPlan& to,
                        torch::nn::Module& current_model,
                        torch::optim::Optimizer& current_optimizer,
                        const models::ModelConfig& model,
                        const train::OptimizerConfig& optimizer_config, uint64_t seed,
                        int64_t steps, PlanChangeStats* stats) {
  require(from.config.workers == world.size() && to.config.workers == world.size(),
          "sdp plan change: the plans are for another number of workers");
  torch::NoGradGuard no_grad;
  metrics::Timer timer;
  const int64_t rank = world.rank();
  const auto old_parameters = current_model.parameters();
  const torch::Device device =
      old_parameters.empty() ? torch::Device(torch::kCPU) : old_parameters[0].device();
  const char* memory_device = device.is_cuda() ? "cuda" : "cpu";
  const int64_t comm_before = metrics::total_comm_bytes();
  const int64_t baseline = metrics::live_tensor_bytes(memory_device) -
                           training_state_bytes(current_model, current_optimizer);
  metrics::reset_peak_tensor_bytes(memory_device);

  WorkerState next;
  next.model = build_worker_model(model, to.subnet(rank), seed);
  next.model->to(device);
  next.optimizer = train::make_optimizer(next.model->parameters(), optimizer_config);
  Slots old_slots = slots_of(current_model, current_optimizer, steps);
  Slots new_slots = slots_of(*next.model, *next.optimizer, steps);

  // Tensors no unit group slices are held by every worker under both plans: kept as they are.
  std::set<std::string> masked;
  for (const auto& group : from.groups)
    for (const auto& slice : group.slices) masked.insert(slice.name);
  for (auto& [name, slot] : new_slots) {
    if (masked.count(name) != 0) continue;
    const Slot& old = slot_named(old_slots, name, "old");
    slot.value.copy_(old.value);
    for (size_t i = 0; i < slot.state.size(); ++i) slot.state[i].copy_(old.state[i]);
  }

  const std::vector<std::string> names(masked.begin(), masked.end());
  // Integer buffers stay behind. Whoever sends or receives a cell holds its tensor, so both
  // sides of every message leave out the same cells.
  std::set<std::string> integer;
  for (auto* m : {&current_model, static_cast<torch::nn::Module*>(next.model.get())})
    for (const auto& b : m->named_buffers())
      if (!b.value().is_floating_point()) integer.insert(b.key());
  std::vector<PlanChangeCell> cells;
  for (auto& c : plan_change_cells(from, to, names))
    if (integer.count(names[c.cell.tensor]) == 0) cells.push_back(std::move(c));
  auto old_cell = [&](const PlanChangeCell& c) {
    return in_worker_layout(from, rank, names[c.cell.tensor], c.cell);
  };
  auto new_cell = [&](const PlanChangeCell& c) {
    return in_worker_layout(to, rank, names[c.cell.tensor], c.cell);
  };
  // Entries this worker holds under both plans stay with it.
  for (const auto& c : cells) {
    if (!(c.cell.holders >> rank & 1) || !(c.next_holders >> rank & 1)) continue;
    const std::string& name = names[c.cell.tensor];
    Slot& target = new_slots.at(name);
    scatter_slot(target, new_cell(c),
                 torch::cat(gather_slot(slot_named(old_slots, name, "old"), old_cell(c))));
  }
  // One message per (sender, receiver) pair, the pairs in the same order on every worker, so a
  // blocking send never waits for a receive that its peer has not reached yet.
  int64_t received = 0;
  for (int64_t sender = 0; sender < world.size(); ++sender) {
    for (int64_t receiver = 0; receiver < world.size(); ++receiver) {
      if (sender == receiver || (rank != sender && rank != receiver)) continue;
      std::vector<const PlanChangeCell*> moving;
      for (const auto& c : cells)
        if (c.cell.holders != 0 && lowest_worker(c.cell.holders) == sender &&
            (c.next_holders >> receiver & 1) && !(c.cell.holders >> receiver & 1))
          moving.push_back(&c);
      if (moving.empty()) continue;
      if (rank == sender) {
        std::vector<torch::Tensor> pieces;
        for (const auto* c : moving) {
          auto slot =
              gather_slot(slot_named(old_slots, names[c->cell.tensor], "old"), old_cell(*c));
          pieces.insert(pieces.end(), slot.begin(), slot.end());
        }
        std::vector<torch::Tensor> message = {torch::cat(pieces)};
        world.send(message, receiver, kPlanChangeTag);
        continue;
      }
      std::vector<std::pair<Slot*, Cell>> targets;
      int64_t total = 0;
      for (const auto* c : moving) {
        Slot& slot = new_slots.at(names[c->cell.tensor]);
        targets.emplace_back(&slot, new_cell(*c));
        total += slot_numel(slot, targets.back().second);
        received += gather_numel(slot.value, targets.back().second);
      }
      std::vector<torch::Tensor> message = {
          torch::empty({total}, targets.front().first->value.options())};
      world.recv(message, sender, kPlanChangeTag);
      int64_t offset = 0;
      for (auto& [slot, cell] : targets) {
        const int64_t n = slot_numel(*slot, cell);
        scatter_slot(*slot, cell, message[0].narrow(0, offset, n));
        offset += n;
      }
    }
  }
  if (stats != nullptr) {
    stats->comm_bytes = metrics::total_comm_bytes() - comm_before;
    stats->received_entries = received;
    stats->peak_tensor_bytes = metrics::peak_tensor_bytes(memory_device) - baseline;
    stats->seconds = timer.seconds();
  }
  return next;
}

}  // namespace tessera::sdp
