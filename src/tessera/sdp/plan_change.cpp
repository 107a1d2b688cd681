#include "tessera/sdp/plan_change.h"

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "tessera/core/error.h"
#include "tessera/core/seeding.h"
#include "tessera/metrics/measurement_scope.h"
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

// A worker's model and optimizer, looked up tensor by tensor.
class TensorSource {
 public:
  TensorSource(torch::nn::Module& model, torch::optim::Optimizer& optimizer, int64_t steps)
      : parameters_(model.named_parameters()),
        buffers_(model.named_buffers()),
        optimizer_(optimizer),
        steps_(steps) {}

  // The float parameter or buffer `name` with its optimizer state (created zero if absent);
  // nothing if the model has no such float tensor.
  std::optional<Slot> slot(const std::string& name) {
    if (const torch::Tensor* p = parameters_.find(name))
      return Slot{*p, train::parameter_state(optimizer_, *p, steps_)};
    const torch::Tensor* b = buffers_.find(name);
    if (b == nullptr || !b->is_floating_point()) return std::nullopt;
    return Slot{*b, {}};
  }
  bool is_integer(const std::string& name) const {
    const torch::Tensor* b = buffers_.find(name);
    return b != nullptr && !b->is_floating_point();
  }
  std::vector<std::string> float_names() const {
    std::vector<std::string> names = parameters_.keys();
    for (const auto& b : buffers_)
      if (b.value().is_floating_point()) names.push_back(b.key());
    return names;
  }
  // Frees the tensor's storage and its optimizer state (the module keeps an empty tensor).
  void release(const std::string& name) {
    torch::Tensor* t = parameters_.find(name);
    if (t == nullptr) t = buffers_.find(name);
    if (t == nullptr || !t->is_floating_point()) return;
    auto& states = optimizer_.state();
    states.erase(train::optimizer_state_key<std::decay_t<decltype(states)>::key_type>(*t));
    t->set_data(torch::empty({0}, t->options()));
  }

 private:
  torch::OrderedDict<std::string, torch::Tensor> parameters_;
  torch::OrderedDict<std::string, torch::Tensor> buffers_;
  torch::optim::Optimizer& optimizer_;
  int64_t steps_;
};

// Parameters, buffers, gradients and optimizer state of a worker.
int64_t training_state_bytes(torch::nn::Module& model, torch::optim::Optimizer& optimizer) {
  int64_t bytes = train::optimizer_state_bytes(optimizer);
  for (const auto& p : model.parameters())
    bytes += metrics::tensor_bytes(p) + metrics::tensor_bytes(p.grad());
  for (const auto& b : model.buffers()) bytes += metrics::tensor_bytes(b);
  return bytes;
}

void copy_slot(const Slot& from, const Slot& to) {
  to.value.copy_(from.value);
  for (size_t i = 0; i < to.state.size(); ++i) to.state[i].copy_(from.state[i]);
}

// Copies the cell's entries of the slot's value and then of each state tensor, flattened, into
// `out` (a view of a message), one piece at a time: no second copy of the message exists.
void pack_slot(const Slot& slot, const Cell& cell, torch::Tensor out) {
  const int64_t n = gather_numel(slot.value, cell);
  out.narrow(0, 0, n).copy_(gather_cell(slot.value, cell));
  for (size_t i = 0; i < slot.state.size(); ++i)
    out.narrow(0, static_cast<int64_t>(i + 1) * n, n).copy_(gather_cell(slot.state[i], cell));
}

// Copies the entries of `from`'s cell (value and state) into those of `to`'s.
void copy_cell(const Slot& from, const Cell& from_cell, const Slot& to, const Cell& to_cell) {
  scatter_cell(to.value, to_cell, gather_cell(from.value, from_cell));
  for (size_t i = 0; i < to.state.size(); ++i)
    scatter_cell(to.state[i], to_cell, gather_cell(from.state[i], from_cell));
}

int64_t slot_numel(const Slot& slot, const Cell& cell) {
  return gather_numel(slot.value, cell) * static_cast<int64_t>(1 + slot.state.size());
}

// The inverse of pack_slot: `values` holds the value's entries, then each state tensor's.
void scatter_slot(Slot& slot, const Cell& cell, const torch::Tensor& values) {
  const int64_t n = gather_numel(slot.value, cell);
  scatter_cell(slot.value, cell, values.narrow(0, 0, n));
  for (size_t i = 0; i < slot.state.size(); ++i)
    scatter_cell(slot.state[i], cell, values.narrow(0, static_cast<int64_t>(i + 1) * n, n));
}

int64_t lowest_worker(WorkerSet set) {
  return __builtin_ctzll(set);
}

struct TensorMoveStats {
  int64_t sent_bytes = 0;
  int64_t received_entries = 0;
};

// Moves one tensor's cells: what this worker holds under both plans stays, and every entry a
// worker newly holds comes from the entry's lowest-ranked old holder.
struct TensorMove {
  dist::ProcessGroup& world;
  const MaskPlan& from;
  const MaskPlan& to;
  const std::string& name;
  const Slot* old_slot;  // null: not held under `from`
  Slot* new_slot;        // null: not held under `to`

  TensorMoveStats run(const std::vector<PlanChangeCell>& cells, size_t first, size_t end) const {
    const int64_t rank = world.rank();
    for (size_t i = first; i < end; ++i) {
      const PlanChangeCell& c = cells[i];
      if ((c.cell.holders >> rank & 1) && (c.next_holders >> rank & 1))
        copy_cell(*old_slot, old_layout(c), *new_slot, new_layout(c));
    }
    // One message per (sender, receiver) pair (plan_cell_messages), tensor after tensor.
    const auto moves = [&](size_t k, int64_t sender, int64_t receiver) {
      const PlanChangeCell& c = cells[first + k];
      return c.cell.holders != 0 && lowest_worker(c.cell.holders) == sender &&
             (c.next_holders >> receiver & 1) && !(c.cell.holders >> receiver & 1);
    };
    TensorMoveStats stats;
    for (const CellMessage& message : plan_cell_messages(rank, world.size(), end - first, moves)) {
      std::vector<const PlanChangeCell*> moving;
      for (const size_t k : message.cells) moving.push_back(&cells[first + k]);
      if (message.send)
        stats.sent_bytes += send(moving, message.peer);
      else
        stats.received_entries += receive(moving, message.peer);
    }
    return stats;
  }

 private:
  Cell old_layout(const PlanChangeCell& c) const {
    return in_worker_layout(from, world.rank(), name, c.cell);
  }
  Cell new_layout(const PlanChangeCell& c) const {
    return in_worker_layout(to, world.rank(), name, c.cell);
  }

  int64_t send(const std::vector<const PlanChangeCell*>& moving, int64_t receiver) const {
    std::vector<Cell> layouts;
    int64_t total = 0;
    for (const auto* c : moving) {
      layouts.push_back(old_layout(*c));
      total += slot_numel(*old_slot, layouts.back());
    }
    std::vector<torch::Tensor> message = {torch::empty({total}, old_slot->value.options())};
    int64_t offset = 0;
    for (const auto& cell : layouts) {
      const int64_t n = slot_numel(*old_slot, cell);
      pack_slot(*old_slot, cell, message[0].narrow(0, offset, n));
      offset += n;
    }
    world.send(message, receiver, kPlanChangeTag);
    return metrics::tensor_bytes(message[0]);
  }

  int64_t receive(const std::vector<const PlanChangeCell*>& moving, int64_t sender) const {
    std::vector<Cell> layouts;
    int64_t total = 0;
    for (const auto* c : moving) {
      layouts.push_back(new_layout(*c));
      total += slot_numel(*new_slot, layouts.back());
    }
    std::vector<torch::Tensor> message = {torch::empty({total}, new_slot->value.options())};
    world.recv(message, sender, kPlanChangeTag);
    int64_t offset = 0;
    int64_t entries = 0;
    for (const auto& cell : layouts) {
      const int64_t n = slot_numel(*new_slot, cell);
      scatter_slot(*new_slot, cell, message[0].narrow(0, offset, n));
      offset += n;
      entries += gather_numel(new_slot->value, cell);
    }
    return entries;
  }
};

}  // namespace

MaskPlan redrawn_plan(const models::ModelConfig& model, PlanConfig config, int64_t redraw) {
  if (redraw > 0) config.seed = mix_seed(config.seed, static_cast<uint64_t>(redraw));
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
  const int64_t baseline = metrics::live_tensor_bytes(memory_device) -
                           training_state_bytes(current_model, current_optimizer);
  // Inside the trainer's fit: the enclosing scope's peak covers the change too.
  const metrics::MeasurementScope measured(memory_device);

  // Gradients are recomputed at the next step: release them first.
  for (auto& p : old_parameters) p.mutable_grad().reset();
  WorkerState next;
  next.model = build_worker_model(model, to.subnet(rank), seed);
  next.model->to(device);
  next.optimizer = train::make_optimizer(next.model->parameters(), optimizer_config);
  TensorSource old_source{current_model, current_optimizer, steps};
  TensorSource new_source{*next.model, *next.optimizer, steps};

  // Tensors no unit group slices are held by every worker under both plans: kept as they are.
  std::set<std::string> masked;
  for (const auto& group : from.groups)
    for (const auto& slice : group.slices) masked.insert(slice.name);
  for (const auto& name : new_source.float_names()) {
    if (masked.count(name) != 0) continue;
    const std::optional<Slot> old_slot = old_source.slot(name);
    if (!old_slot)
      throw Error("sdp plan change: tensor '" + name + "', held by every worker, is not in the " +
                  "old subnetwork");
    copy_slot(*old_slot, *new_source.slot(name));
    old_source.release(name);
  }

  // Masked tensors one at a time, so that the old one (and its optimizer state) is released
  // before the next one's state is created. Integer buffers stay behind.
  const std::vector<std::string> names(masked.begin(), masked.end());
  const std::vector<PlanChangeCell> cells = plan_change_cells(from, to, names);
  int64_t sent = 0;  // bytes (counted here: the process-wide counter also sees other threads)
  int64_t received = 0;
  size_t first = 0;
  while (first < cells.size()) {
    size_t end = first;
    while (end < cells.size() && cells[end].cell.tensor == cells[first].cell.tensor) ++end;
    const std::string& name = names[cells[first].cell.tensor];
    std::optional<Slot> old_slot = old_source.slot(name);
    std::optional<Slot> new_slot = new_source.slot(name);
    const TensorMove move{
        world, from, to, name, old_slot ? &*old_slot : nullptr, new_slot ? &*new_slot : nullptr};
    // A worker holding the tensor under neither plan has no part in its cells; one holding an
    // integer buffer leaves it out, as its peers do (they hold it too).
    if (!old_source.is_integer(name) && !new_source.is_integer(name) && (old_slot || new_slot)) {
      const TensorMoveStats moved = move.run(cells, first, end);
      sent += moved.sent_bytes;
      received += moved.received_entries;
    }
    old_slot.reset();
    old_source.release(name);
    first = end;
  }
  if (stats != nullptr) {
    stats->comm_bytes = sent;
    stats->received_entries = received;
    stats->peak_tensor_bytes = measured.peak_tensor_bytes() - baseline;
    stats->seconds = timer.seconds();
  }
  return next;
}

}  // namespace tessera::sdp
