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
#include "tessera/sdp/unheld_entries.h"
#include "tessera/sdp/worker_model.h"
#include "tessera/train/optimizer_state.h"

namespace tessera::sdp {
namespace {

constexpr int64_t kPlanChangeTag = 11;

// One tensor of a worker's subnetwork with its optimizer state (none for a buffer), or one cell
// it keeps (unheld_entries.h): the same shape of data.
using Slot = KeptCell;

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

int64_t kept_bytes(const KeptEntries& kept) {
  int64_t bytes = 0;
  for (const auto& [index, cell] : kept.kept) {
    bytes += metrics::tensor_bytes(cell.value);
    for (const auto& s : cell.state) bytes += metrics::tensor_bytes(s);
  }
  return bytes;
}

// Whether this worker keeps a cell of tensor `tensor`.
bool keeps(const KeptEntries& kept, size_t tensor) {
  for (const auto& [index, cell] : kept.kept)
    if (kept.cells[index].cell.tensor == tensor) return true;
  return false;
}

// Frees the kept cells of tensor `tensor` (moved on by the change).
void release(KeptEntries& kept, size_t tensor) {
  for (auto it = kept.kept.begin(); it != kept.kept.end();)
    it = kept.cells[it->first].cell.tensor == tensor ? kept.kept.erase(it) : std::next(it);
}

int64_t lowest_worker(WorkerSet set) {
  return __builtin_ctzll(set);
}

struct TensorMoveStats {
  int64_t sent_bytes = 0;
  int64_t received_entries = 0;
};

// Where a worker finds a cell's entries before a change, or puts them after it: in its
// subnetwork's tensor (and optimizer state), or among the unheld entries it keeps.
struct Place {
  Slot* slot = nullptr;  // null: the worker has no place for the cell
  Cell layout;
};

// Moves one tensor's cells: what this worker holds under both plans stays, every entry a worker
// newly holds comes from the entry's lowest-ranked old holder, or from its keeper if no worker
// held it; every entry no worker holds under the new plan goes to its new keeper.
struct TensorMove {
  dist::ProcessGroup& world;
  const MaskPlan& from;
  const MaskPlan& to;
  const std::string& name;
  Slot* old_slot;  // null: not held under `from`
  Slot* new_slot;  // null: not held under `to`
  KeptEntries& kept_from;
  KeptEntries& kept_to;
  WorkerLayout old_layout;  // this worker's, under `from` and `to`
  WorkerLayout new_layout;

  TensorMoveStats run(const std::vector<PlanChangeCell>& cells, size_t first, size_t end) const {
    const int64_t rank = world.rank();
    std::vector<Ends> ends;
    for (size_t i = first; i < end; ++i) ends.push_back(ends_of(cells[i]));
    for (size_t k = 0; k < ends.size(); ++k) {
      const Place source = old_place(cells[first + k], ends[k], rank);
      const Place target = new_place(cells[first + k], ends[k], rank);
      if (source.slot != nullptr && target.slot != nullptr)
        copy_cell(*source.slot, source.layout, *target.slot, target.layout);
    }
    // One message per (sender, receiver) pair (plan_cell_messages), tensor after tensor.
    const auto moves = [&](size_t k, int64_t sender, int64_t receiver) {
      const PlanChangeCell& c = cells[first + k];
      return ends[k].source == sender && wants(c, ends[k], receiver) && !has(c, ends[k], receiver);
    };
    TensorMoveStats stats;
    for (const CellMessage& message : plan_cell_messages(rank, world.size(), end - first, moves)) {
      std::vector<Place> places;
      for (const size_t k : message.cells)
        places.push_back(message.send ? old_place(cells[first + k], ends[k], rank)
                                      : new_place(cells[first + k], ends[k], rank));
      if (message.send)
        stats.sent_bytes += send(places, message.peer);
      else
        stats.received_entries += receive(places, message.peer);
    }
    return stats;
  }

 private:
  // A cell's keepers (-1: it is held) and the worker its entries come from.
  struct Ends {
    int64_t old_keeper = -1;
    int64_t new_keeper = -1;
    int64_t old_index = -1;  // into kept_from.cells / kept_to.cells
    int64_t new_index = -1;
    int64_t source = -1;
  };

  Ends ends_of(const PlanChangeCell& c) const {
    Ends e;
    if (c.cell.holders == 0) {
      e.old_index = containing_cell(kept_from.cells, c.cell);
      require(e.old_index >= 0, "sdp plan change: an unheld cell of '" + name + "' has no keeper");
      e.old_keeper = kept_from.cells[static_cast<size_t>(e.old_index)].keeper;
    }
    if (c.next_holders == 0) {
      e.new_index = containing_cell(kept_to.cells, c.cell);
      require(e.new_index >= 0, "sdp plan change: an unheld cell of '" + name + "' has no keeper");
      e.new_keeper = kept_to.cells[static_cast<size_t>(e.new_index)].keeper;
    }
    e.source = c.cell.holders != 0 ? lowest_worker(c.cell.holders) : e.old_keeper;
    return e;
  }
  static bool has(const PlanChangeCell& c, const Ends& e, int64_t worker) {
    return (c.cell.holders >> worker & 1) || e.old_keeper == worker;
  }
  static bool wants(const PlanChangeCell& c, const Ends& e, int64_t worker) {
    return (c.next_holders >> worker & 1) || e.new_keeper == worker;
  }

  Place old_place(const PlanChangeCell& c, const Ends& e, int64_t rank) const {
    if (c.cell.holders >> rank & 1) return {old_slot, old_layout.map(c.cell)};
    if (e.old_keeper == rank) return kept_place(kept_from, e.old_index, c.cell);
    return {};
  }
  Place new_place(const PlanChangeCell& c, const Ends& e, int64_t rank) const {
    if (c.next_holders >> rank & 1) return {new_slot, new_layout.map(c.cell)};
    if (e.new_keeper == rank) return kept_place(kept_to, e.new_index, c.cell);
    return {};
  }
  static Place kept_place(KeptEntries& kept, int64_t index, const Cell& cell) {
    const size_t i = static_cast<size_t>(index);
    return {&kept.kept.at(i), in_cell_layout(kept.cells[i].cell, cell)};
  }

  int64_t send(const std::vector<Place>& places, int64_t receiver) const {
    int64_t total = 0;
    for (const auto& p : places) total += slot_numel(*p.slot, p.layout);
    std::vector<torch::Tensor> message = {torch::empty({total}, places[0].slot->value.options())};
    int64_t offset = 0;
    for (const auto& p : places) {
      const int64_t n = slot_numel(*p.slot, p.layout);
      pack_slot(*p.slot, p.layout, message[0].narrow(0, offset, n));
      offset += n;
    }
    world.send(message, receiver, kPlanChangeTag);
    return metrics::tensor_bytes(message[0]);
  }

  int64_t receive(std::vector<Place>& places, int64_t sender) const {
    int64_t total = 0;
    for (const auto& p : places) total += slot_numel(*p.slot, p.layout);
    std::vector<torch::Tensor> message = {torch::empty({total}, places[0].slot->value.options())};
    world.recv(message, sender, kPlanChangeTag);
    int64_t offset = 0;
    int64_t entries = 0;
    for (auto& p : places) {
      const int64_t n = slot_numel(*p.slot, p.layout);
      scatter_slot(*p.slot, p.layout, message[0].narrow(0, offset, n));
      offset += n;
      entries += gather_numel(p.slot->value, p.layout);
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
                        int64_t steps, KeptEntries& kept, PlanChangeStats* stats) {
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
                           training_state_bytes(current_model, current_optimizer) -
                           kept_bytes(kept);
  // Inside the trainer's fit: the enclosing scope's peak covers the change too.
  const metrics::MeasurementScope measured(memory_device);

  // Gradients are recomputed at the next step: release them first.
  for (auto& p : old_parameters) p.mutable_grad().reset();
  WorkerState next;
  next.model = build_worker_model(model, to.subnet(rank), seed);
  next.model->to(device);
  next.optimizer = train::make_optimizer(next.model->parameters(), optimizer_config);
  const int64_t state_tensors = train::parameter_state_count(*next.optimizer);
  // Before the first change the unheld entries still have their initial values.
  if (!kept.started) kept = keep_initial_entries(from, rank, model, seed, state_tensors, device);
  KeptEntries kept_next = unallocated_entries(to, kept.full_shapes);
  TensorSource old_source{current_model, current_optimizer, steps};
  TensorSource new_source{*next.model, *next.optimizer, steps};

  // Tensors no unit group slices are held by every worker under both plans: kept as they are.
  const std::vector<std::string> names = masked_tensor_names(from);
  const std::set<std::string> masked(names.begin(), names.end());
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
  const std::vector<PlanChangeCell> cells = plan_change_cells(from, to, names);
  int64_t sent = 0;  // bytes (counted here: the process-wide counter also sees other threads)
  int64_t received = 0;
  size_t first = 0;
  while (first < cells.size()) {
    size_t end = first;
    while (end < cells.size() && cells[end].cell.tensor == cells[first].cell.tensor) ++end;
    const size_t tensor = cells[first].cell.tensor;
    const std::string& name = names[tensor];
    std::optional<Slot> old_slot = old_source.slot(name);
    std::optional<Slot> new_slot = new_source.slot(name);
    kept_next.allocate(rank, tensor, state_tensors, device);
    const TensorMove move{world,
                          from,
                          to,
                          name,
                          old_slot ? &*old_slot : nullptr,
                          new_slot ? &*new_slot : nullptr,
                          kept,
                          kept_next,
                          WorkerLayout(from, rank, name),
                          WorkerLayout(to, rank, name)};
    // A worker holding the tensor under neither plan and keeping none of it has no part in its
    // cells; one holding an integer buffer leaves it out, as its peers do (they hold it too).
    if (!old_source.is_integer(name) && !new_source.is_integer(name) &&
        (old_slot || new_slot || keeps(kept, tensor) || keeps(kept_next, tensor))) {
      const TensorMoveStats moved = move.run(cells, first, end);
      sent += moved.sent_bytes;
      received += moved.received_entries;
    }
    old_slot.reset();
    old_source.release(name);
    release(kept, tensor);
    first = end;
  }
  kept = std::move(kept_next);
  if (stats != nullptr) {
    stats->comm_bytes = sent;
    stats->received_entries = received;
    stats->peak_tensor_bytes = measured.peak_tensor_bytes() - baseline;
    stats->seconds = timer.seconds();
  }
  return next;
}

}  // namespace tessera::sdp
