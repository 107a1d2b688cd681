#include "tessera/sdp/backward_masking.h"

#include "tessera/core/error.h"
#include "tessera/metrics/timer.h"
#include "tessera/models/subnet.h"

namespace tessera::sdp {
namespace {

enum class Holding { None, Part, Whole };

// How much of the full model's tensor `name` the subnet holds: none of a branch it leaves out,
// part of a tensor that a group with units left out slices, else all of it.
Holding holding_of(const std::string& name, const models::Subnet& subnet,
                   const std::vector<models::UnitGroup>& groups) {
  Holding holding = Holding::Whole;
  for (const auto& group : groups) {
    for (const auto& slice : group.slices) {
      if (slice.name != name) continue;
      const int64_t held = models::held_units(subnet, group.name, group.size);
      if (slice.dim < 0 && held == 0) return Holding::None;
      if (slice.dim >= 0 && held < group.size) holding = Holding::Part;
    }
  }
  return holding;
}

}  // namespace

BackwardMasking::BackwardMasking(dist::ProcessGroup world, MaskPlan plan, SyncMode mode,
                                 torch::nn::Module& model, bool bf16_comm)
    : world_(std::move(world)),
      plan_(std::move(plan)),
      holders_(world_, plan_, mode, bf16_comm),
      subnet_(plan_.subnet(world_.rank())) {
  torch::NoGradGuard no_grad;
  for (const auto& p : model.named_parameters()) {
    torch::Tensor parameter = p.value();
    switch (holding_of(p.key(), subnet_, plan_.groups)) {
      case Holding::None:
        parameter.set_requires_grad(false);  // autograd allocates no gradient for it
        break;
      case Holding::Whole:
        trained_names_.push_back(p.key());
        trained_.push_back(parameter);
        break;
      case Holding::Part: {
        torch::Tensor held =
            models::select_held_entries(parameter, p.key(), subnet_, plan_.groups).detach().clone();
        held.set_requires_grad(true);
        partly_held_.push_back({p.key(), parameter, held});
        trained_names_.push_back(p.key());
        trained_.push_back(held);
        break;
      }
    }
  }
}

void BackwardMasking::start(torch::nn::Module& model) {
  holders_.start(trained_names_, trained_);
  std::vector<std::string> names;
  for (const auto& p : model.named_parameters()) {
    names.push_back(p.key());
    model_parameters_.push_back(p.value());
  }
  for (Cell& cell : full_model_cells(plan_, names)) {
    // Entries every worker holds agree already; entries no worker holds never change.
    if (cell.holders == plan_.all_workers() || cell.holders == 0) continue;
    for (auto& [dim, positions] : cell.selections)
      positions = positions.to(model_parameters_[cell.tensor].device());
    refreshed_numel_.push_back(gather_numel(model_parameters_[cell.tensor], cell));
    refreshed_.push_back(std::move(cell));
  }
  plan_refresh_messages();
}

void BackwardMasking::plan_refresh_messages() {
  // Each non-holder of a cell receives it from one of its holders, chosen by rotating over the
  // holders with the receiver and the cell, so that the sending is spread over all holders.
  auto sender_of = [&](size_t c, int64_t receiver) {
    const std::vector<int64_t> holders = worker_list(refreshed_[c].holders);
    return holders[static_cast<size_t>(receiver + static_cast<int64_t>(c)) % holders.size()];
  };
  // At most kRefreshBucketBytes (whole cells) per message.
  const auto moves = [&](size_t c, int64_t sender, int64_t receiver) {
    return !(refreshed_[c].holders >> receiver & 1) && sender_of(c, receiver) == sender;
  };
  const auto bytes = [&](size_t c) {
    return refreshed_numel_[c] *
           static_cast<int64_t>(model_parameters_[refreshed_[c].tensor].element_size());
  };
  refresh_messages_ = plan_cell_messages(world_.rank(), world_.size(), refreshed_.size(), moves,
                                         bytes, kRefreshBucketBytes);
}

int64_t BackwardMasking::agree_steps(int64_t local_batches) {
  return holders_.agree_steps(local_batches);
}

void BackwardMasking::before_backward(int64_t samples) {
  holders_.before_backward(samples);
}

void BackwardMasking::after_backward() {
  {
    torch::NoGradGuard no_grad;
    for (auto& part : partly_held_) {
      if (!part.full.grad().defined()) continue;  // a step without samples
      part.held.mutable_grad() =
          models::select_held_entries(part.full.grad(), part.name, subnet_, plan_.groups);
      part.full.mutable_grad().reset();  // the full-size gradient lives only through backward
    }
  }
  holders_.after_backward();
}

double BackwardMasking::clip_gradients(const std::vector<torch::Tensor>& trained, double max_norm) {
  return holders_.clip_gradients(trained, max_norm);
}

void BackwardMasking::after_step() {
  holders_.after_step();
  for (auto& part : partly_held_)
    models::scatter_held_entries(part.full, part.held, part.name, subnet_, plan_.groups);
  refresh();
}

void BackwardMasking::refresh() {
  torch::NoGradGuard no_grad;
  const metrics::Timer timer;
  for (const auto& message : refresh_messages_) refresh_message(message);
  refresh_seconds_ += timer.seconds();
}

void BackwardMasking::refresh_message(const CellMessage& message) {
  if (message.send) {
    std::vector<torch::Tensor> pieces;
    for (const size_t c : message.cells)
      pieces.push_back(gather_cell(model_parameters_[refreshed_[c].tensor], refreshed_[c]));
    std::vector<torch::Tensor> flat = {torch::cat(pieces)};
    refresh_bytes_ += flat[0].numel() * static_cast<int64_t>(flat[0].element_size());
    world_.send(flat, message.peer, kRefreshTag);
    return;
  }
  const torch::Tensor& first = model_parameters_[refreshed_[message.cells[0]].tensor];
  int64_t numel = 0;
  for (const size_t c : message.cells) numel += refreshed_numel_[c];
  std::vector<torch::Tensor> flat = {torch::empty({numel}, first.options())};
  world_.recv(flat, message.peer, kRefreshTag);
  int64_t offset = 0;
  for (const size_t c : message.cells) {
    const int64_t n = refreshed_numel_[c];
    scatter_cell(model_parameters_[refreshed_[c].tensor], refreshed_[c],
                 flat[0].slice(0, offset, offset + n));
    offset += n;
  }
}

train::NonfiniteVote BackwardMasking::agree_nonfinite(bool here, int64_t rank) {
  return holders_.agree_nonfinite(here, rank);
}

void BackwardMasking::sum(std::vector<double>& values) {
  holders_.sum(values);
}

SyncStats BackwardMasking::stats() const {
  SyncStats stats = holders_.stats();
  stats.comm_bytes += refresh_bytes_;
  stats.wait_seconds += refresh_seconds_;
  return stats;
}

}  // namespace tessera::sdp
