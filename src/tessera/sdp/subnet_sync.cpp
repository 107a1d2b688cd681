#include "tessera/sdp/subnet_sync.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>

#include "tessera/core/error.h"

namespace tessera::sdp {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

torch::Tensor long_tensor(const std::vector<int64_t>& values) {
  return torch::tensor(values, torch::kLong);
}

}  // namespace

SyncMode parse_sync_mode(const std::string& name) {
  if (name == "params") return SyncMode::Params;
  if (name == "grads") return SyncMode::Grads;
  throw UsageError("--sdp-sync must be params or grads, got '" + name + "'");
}

const char* to_string(SyncMode mode) {
  return mode == SyncMode::Params ? "params" : "grads";
}

const char* const kBf16ParamsMessage =
    "--comm-precision bf16 sends gradients (--sdp-sync grads): averaging the parameters "
    "themselves in bf16 would round the float32 weights every step";

SubnetSync::SubnetSync(dist::ProcessGroup world, MaskPlan plan, SyncMode mode, bool bf16_comm)
    : world_(std::move(world)), plan_(std::move(plan)), mode_(mode), bf16_comm_(bf16_comm) {
  require(!(bf16_comm_ && mode_ == SyncMode::Params), kBf16ParamsMessage);
  require(world_.size() == plan_.config.workers,
          "sdp: the plan is for " + std::to_string(plan_.config.workers) + " workers but " +
              std::to_string(world_.size()) + " joined");
}

std::vector<WorkerSet> SubnetSync::agree_holder_sets(const std::vector<WorkerSet>& mine) {
  // Every worker must create the same groups in the same order, so each learns everyone's sets.
  std::vector<torch::Tensor> count = {long_tensor({static_cast<int64_t>(mine.size())})};
  world_.all_reduce(count, dist::ReduceOp::Max);
  const int64_t longest = std::max<int64_t>(count[0].item<int64_t>(), 1);
  std::vector<int64_t> padded(static_cast<size_t>(longest), 0);
  for (size_t i = 0; i < mine.size(); ++i) padded[i] = static_cast<int64_t>(mine[i]);
  std::vector<torch::Tensor> input = {long_tensor(padded)};
  std::vector<std::vector<torch::Tensor>> gathered(1);
  for (int64_t r = 0; r < world_.size(); ++r) gathered[0].push_back(torch::empty_like(input[0]));
  world_.all_gather(gathered, input);
  std::set<WorkerSet> all;
  for (const auto& list : gathered[0])
    for (int64_t i = 0; i < longest; ++i)
      if (const auto set = static_cast<WorkerSet>(list[i].item<int64_t>()); set != 0)
        all.insert(set);
  return {all.begin(), all.end()};
}

std::vector<SubnetSync::Bucket> SubnetSync::make_buckets(const std::vector<Cell>& cells) {
  std::map<WorkerSet, Bucket> by_set;
  for (const Cell& cell : cells) {
    if (count_workers(cell.holders) < 2) continue;  // held here only: nothing to average
    Bucket& bucket = by_set[cell.holders];
    bucket.holders = cell.holders;
    bucket.cells.push_back(cell);
  }
  std::vector<Bucket> buckets;
  for (auto& [set, bucket] : by_set) {
    bucket.group = set == plan_.all_workers() ? world_ : groups_.at(set);
    buckets.push_back(std::move(bucket));
  }
  return buckets;
}

void SubnetSync::start(torch::nn::Module& model) {
  std::vector<std::string> names;
  std::vector<torch::Tensor> tensors;
  for (const auto& p : model.named_parameters()) {
    names.push_back(p.key());
    tensors.push_back(p.value());
  }
  start(names, tensors);
}

void SubnetSync::start(const std::vector<std::string>& names,
                       const std::vector<torch::Tensor>& tensors) {
  // The same plan everywhere: equal hashes of its JSON on every worker.
  const auto hash = static_cast<int64_t>(std::hash<std::string>{}(to_json(plan_).dump()) >> 1);
  std::vector<torch::Tensor> low = {long_tensor({hash})}, high = {long_tensor({hash})};
  world_.all_reduce(low, dist::ReduceOp::Min);
  world_.all_reduce(high, dist::ReduceOp::Max);
  if (low[0].item<int64_t>() != high[0].item<int64_t>())
    throw Error("rank " + std::to_string(world_.rank()) +
                ": the workers computed different SDP plans (check --model, --sdp-level, "
                "--coverage and --seed on every worker)");

  parameters_ = tensors;
  parameter_cells_ = shared_cells(plan_, world_.rank(), names);
  for (Cell& cell : parameter_cells_)
    for (auto& [dim, positions] : cell.selections)
      positions = positions.to(tensors[cell.tensor].device());
  std::vector<WorkerSet> mine;
  for (const Cell& cell : parameter_cells_)
    if (count_workers(cell.holders) >= 2 && cell.holders != plan_.all_workers())
      mine.push_back(cell.holders);
  std::sort(mine.begin(), mine.end());
  mine.erase(std::unique(mine.begin(), mine.end()), mine.end());
  for (const WorkerSet set : agree_holder_sets(mine)) {
    // Every worker sees the same sets in the same order, and has created the same ones before.
    if (!created_.insert(set).second) continue;
    std::optional<dist::ProcessGroup> group = world_.new_group(worker_list(set));
    if (group) groups_.emplace(set, *group);
  }
  parameter_buckets_ = make_buckets(parameter_cells_);
  stats_.holder_sets =
      std::max(stats_.holder_sets, static_cast<int64_t>(parameter_buckets_.size()));
}

void SubnetSync::change_plan(MaskPlan plan, torch::nn::Module& model) {
  require(plan.config.workers == plan_.config.workers,
          "sdp: a new plan must be for the same workers");
  plan_ = std::move(plan);
  parameters_.clear();
  parameter_cells_.clear();
  parameter_buckets_.clear();
  start(model);
}

int64_t SubnetSync::agree_steps(int64_t local_batches) {
  std::vector<torch::Tensor> count = {long_tensor({local_batches})};
  world_.all_reduce(count, dist::ReduceOp::Max);
  return count[0].item<int64_t>();
}

void SubnetSync::before_backward(int64_t samples) {
  samples_ = samples;
}

void SubnetSync::after_backward() {
  if (mode_ != SyncMode::Grads) return;
  std::vector<torch::Tensor> grads;
  for (auto& p : parameters_) {
    if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);  // a step without samples
    grads.push_back(p.grad());
  }
  average(parameter_buckets_, grads, static_cast<double>(samples_));
}

double SubnetSync::clip_gradients(const std::vector<torch::Tensor>& trained, double max_norm) {
  if (mode_ != SyncMode::Grads) return WorkerSync::clip_gradients(trained, max_norm);
  require(trained.size() == parameters_.size(),
          "sdp: clip_gradients needs the tensors the sync was started with");
  torch::NoGradGuard no_grad;
  // Summed on the gradients' device and read once: one synchronisation per step, not per cell.
  torch::Tensor local;
  for (const Cell& cell : parameter_cells_) {
    const torch::Tensor& grad = parameters_[cell.tensor].grad();
    if (!grad.defined()) continue;
    const torch::Tensor cell_squares = gather_cell(grad, cell).square().sum(torch::kDouble) /
                                       static_cast<double>(count_workers(cell.holders));
    local = local.defined() ? local + cell_squares : cell_squares;
  }
  std::vector<double> squares = {local.defined() ? local.item<double>() : 0.0};
  sum(squares);
  stats_.comm_bytes += dist::all_reduce_bytes(sizeof(double), world_.size());
  const double norm = std::sqrt(squares[0]);
  // The factor torch::nn::utils::clip_grad_norm_ uses, so that one worker holding everything
  // clips as training alone does.
  const double factor = max_norm / (norm + 1e-6);
  if (factor < 1.0)
    for (const torch::Tensor& p : parameters_)
      if (p.grad().defined()) p.grad().mul_(factor);
  return norm;
}

void SubnetSync::after_step() {
  if (mode_ == SyncMode::Params) average(parameter_buckets_, parameters_, -1.0);
  ++stats_.steps;
}

void SubnetSync::average(std::vector<Bucket>& buckets, const std::vector<torch::Tensor>& tensors,
                         double weight) {
  if (buckets.empty()) return;
  torch::NoGradGuard no_grad;
  const auto start = Clock::now();
  const bool weighted = weight >= 0.0;
  // bf16: every worker's weight in one float32 all-reduce over the world (bf16 could not carry a
  // sample count exactly), each holder set's total summed from it below.
  std::vector<torch::Tensor> weights;
  if (weighted && bf16_comm_) {
    weights = {torch::zeros({world_.size()}, torch::kFloat32)};
    weights[0][world_.rank()] = weight;
    stats_.comm_bytes += dist::all_reduce_bytes(weights[0].numel() * 4, world_.size());
  }
  dist::Work weights_work = weights.empty() ? dist::Work() : world_.all_reduce_async(weights);
  std::vector<std::vector<torch::Tensor>> flats(buckets.size());
  std::vector<dist::Work> works(buckets.size());
  for (size_t b = 0; b < buckets.size(); ++b) {
    std::vector<torch::Tensor> parts;
    for (const Cell& cell : buckets[b].cells)
      parts.push_back(gather_cell(tensors[cell.tensor], cell));
    torch::Tensor flat = torch::cat(parts);
    if (weighted) flat.mul_(weight);
    if (weighted && !bf16_comm_)
      flat = torch::cat({flat, torch::full({1}, weight, flat.options())});
    flats[b] = {flat};
    const int64_t holders = count_workers(buckets[b].holders);
    const int64_t wire_bytes = flat.numel() * (bf16_comm_ ? 2 : flat.element_size());
    stats_.comm_bytes += dist::all_reduce_bytes(wire_bytes, holders);
    works[b] = bf16_comm_ ? buckets[b].group->all_reduce_bf16_async(flats[b])
                          : buckets[b].group->all_reduce_async(flats[b]);
  }
  weights_work.wait();
  for (size_t b = 0; b < buckets.size(); ++b) {
    works[b].wait();
    torch::Tensor flat = flats[b][0];
    if (weighted) {
      double total = 0.0;
      if (bf16_comm_) {
        const auto weight_of = weights[0].accessor<float, 1>();
        for (const int64_t r : worker_list(buckets[b].holders)) total += weight_of[r];
      } else {
        total = flat[-1].item<double>();
        flat = flat.slice(0, 0, flat.numel() - 1);
      }
      if (total > 0.0) flat.div_(total);
    } else {
      flat.div_(static_cast<double>(count_workers(buckets[b].holders)));
    }
    int64_t offset = 0;
    for (const Cell& cell : buckets[b].cells) {
      const torch::Tensor& tensor = tensors[cell.tensor];
      const int64_t n = gather_numel(tensor, cell);
      scatter_cell(tensor, cell, flat.slice(0, offset, offset + n));
      offset += n;
    }
  }
  stats_.wait_seconds += seconds_since(start);
}

train::NonfiniteVote SubnetSync::agree_nonfinite(bool here, int64_t rank) {
  const train::NonfiniteVote vote = WorkerSync::agree_nonfinite(here, rank);
  stats_.comm_bytes += dist::all_reduce_bytes(2 * sizeof(double), world_.size());
  return vote;
}

void SubnetSync::sum(std::vector<double>& values) {
  std::vector<torch::Tensor> tensor = {torch::tensor(values, torch::kDouble)};
  world_.all_reduce(tensor);
  for (size_t i = 0; i < values.size(); ++i) values[i] = tensor[0][i].item<double>();
}

}  // namespace tessera::sdp
