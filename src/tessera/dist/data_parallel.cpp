#include "tessera/dist/data_parallel.h"

#include <map>

#include "tessera/core/error.h"

namespace tessera::dist {
namespace {

std::vector<torch::Tensor> state_tensors(torch::nn::Module& module) {
  std::vector<torch::Tensor> tensors;
  for (const auto& p : module.parameters()) tensors.push_back(p);
  for (const auto& b : module.buffers()) tensors.push_back(b);
  return tensors;
}

// What must agree before a broadcast can even be issued: number of tensors, elements, shapes.
torch::Tensor structure_signature(const std::vector<torch::Tensor>& tensors) {
  int64_t elements = 0;
  int64_t shape_hash = 0;
  for (const auto& t : tensors) {
    elements += t.numel();
    for (const int64_t d : t.sizes()) shape_hash = (shape_hash * 1000003 + d) % 2147483647;
  }
  return torch::tensor({static_cast<int64_t>(tensors.size()), elements, shape_hash}, torch::kLong);
}

// All ranks learn every rank's values; throws naming the first rank that differs from rank 0.
void require_equal_on_all_ranks(ProcessGroup& group, const torch::Tensor& mine,
                                const std::string& what) {
  std::vector<std::vector<torch::Tensor>> gathered(1);
  for (int64_t r = 0; r < group.size(); ++r) gathered[0].push_back(torch::empty_like(mine));
  std::vector<torch::Tensor> input = {mine};
  group.all_gather(gathered, input);
  for (int64_t r = 1; r < group.size(); ++r)
    if (!torch::equal(gathered[0][r], gathered[0][0]))
      throw Error("rank " + std::to_string(group.rank()) + ": rank " + std::to_string(r) +
                  " has a different " + what + " than rank 0");
}

}  // namespace

double state_checksum(torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  double sum = 0.0;
  double position = 1.0;
  for (const auto& t : state_tensors(module)) {
    sum += position * t.to(torch::kDouble).sum().item<double>();
    position += 1.0;
  }
  return sum;
}

DataParallel::DataParallel(ProcessGroup group, ReducerOptions options)
    : group_(std::move(group)), options_(options) {}

void DataParallel::start(torch::nn::Module& model) {
  std::vector<torch::Tensor> tensors = state_tensors(model);
  require_equal_on_all_ranks(group_, structure_signature(tensors),
                             "model structure (check --model and its flags on every worker)");
  {
    // One broadcast per dtype (BatchNorm counts its batches in int64), in a fixed dtype order.
    torch::NoGradGuard no_grad;
    std::map<int, std::vector<torch::Tensor>> by_dtype;
    for (const auto& t : tensors) by_dtype[static_cast<int>(t.scalar_type())].push_back(t.detach());
    for (auto& [dtype, list] : by_dtype) group_.broadcast(list, 0);
  }
  require_equal_on_all_ranks(group_, torch::tensor({state_checksum(model)}, torch::kDouble),
                             "parameter checksum after the broadcast");
  reducer_ = std::make_unique<GradientReducer>(group_, model.parameters(), options_);
}

int64_t DataParallel::agree_steps(int64_t local_batches) {
  std::vector<torch::Tensor> count = {torch::tensor({local_batches}, torch::kLong)};
  group_.all_reduce(count, ReduceOp::Max);
  return count[0].item<int64_t>();
}

void DataParallel::before_backward(int64_t samples) {
  require(reducer_ != nullptr, "data parallel: start() was not called");
  reducer_->prepare(samples);
}

void DataParallel::after_backward() {
  reducer_->finish();
}

void DataParallel::mark_nonfinite_loss() {
  reducer_->poison();
}

train::NonfiniteVote DataParallel::agree_nonfinite(bool here, int64_t /*rank*/) {
  return {here ? group_.size() : 0, -1};
}

void DataParallel::sum(std::vector<double>& values) {
  std::vector<torch::Tensor> tensor = {torch::tensor(values, torch::kDouble)};
  group_.all_reduce(tensor);
  for (size_t i = 0; i < values.size(); ++i) values[i] = tensor[0][i].item<double>();
}

}  // namespace tessera::dist
