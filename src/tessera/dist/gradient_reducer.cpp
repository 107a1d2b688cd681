#include "tessera/dist/gradient_reducer.h"

#include <cmath>
#include <limits>

#include <torch/csrc/autograd/utils/lambda_post_hook.h>

#include "tessera/core/error.h"
#include "tessera/metrics/timer.h"

namespace tessera::dist {

GradientReducer::GradientReducer(ProcessGroup group, std::vector<torch::Tensor> parameters,
                                 ReducerOptions options)
    : group_(std::move(group)), parameters_(std::move(parameters)), options_(options) {
  require(options_.bucket_bytes > 0, "--bucket-mb must be positive");
  require(!parameters_.empty(), "gradient reducer: the model has no parameters");
  const auto dtype = parameters_[0].scalar_type();
  slots_.resize(parameters_.size());
  // Reverse order: the last layers' gradients are ready first, so their bucket can go first.
  std::vector<int64_t> sizes;
  for (size_t k = parameters_.size(); k-- > 0;) {
    const torch::Tensor& p = parameters_[k];
    if (!p.requires_grad() || !p.is_leaf())
      throw Error("gradient reducer: parameter " + std::to_string(k) + " is not a trainable leaf");
    if (p.scalar_type() != dtype)
      throw Error("gradient reducer: all parameters must share one dtype");
    const int64_t bytes = p.numel() * static_cast<int64_t>(p.element_size());
    if (buckets_.empty() ||
        sizes.back() * static_cast<int64_t>(p.element_size()) + bytes > options_.bucket_bytes) {
      buckets_.emplace_back();
      sizes.push_back(0);
    }
    slots_[k] = {buckets_.size() - 1, sizes.back(), false};
    buckets_.back().members.push_back(k);
    sizes.back() += p.numel();
  }
  require(!options_.bf16_comm || dtype == torch::kFloat32,
          "--comm-precision bf16 needs float32 parameters");
  for (size_t b = 0; b < buckets_.size(); ++b) {
    // This rank's sample count rides in bucket 0, or in a float32 all-reduce of its own.
    const int64_t extra = b == 0 && !options_.bf16_comm ? 1 : 0;
    buckets_[b].flat = torch::zeros({sizes[b] + extra}, parameters_[0].options());
  }
  stats_.buckets = static_cast<int64_t>(buckets_.size());
  if (!options_.overlap) return;
  for (size_t k = 0; k < parameters_.size(); ++k) {
    // The accumulator runs once per backward, after summing every use of the parameter, and the
    // post hook sees the accumulated .grad. Holding it keeps the node (and our hook) alive.
    auto accumulator = torch::autograd::impl::grad_accumulator(parameters_[k]);
    hook_keys_.push_back(
        accumulator->add_post_hook(std::make_unique<torch::autograd::utils::LambdaPostHook>(
            [this, k](const torch::autograd::variable_list& outputs,
                      const torch::autograd::variable_list&) {
              on_gradient(k);
              return outputs;
            })));
    accumulators_.push_back(std::move(accumulator));
  }
}

GradientReducer::~GradientReducer() {
  for (size_t k = 0; k < accumulators_.size(); ++k) accumulators_[k]->del_post_hook(hook_keys_[k]);
}

void GradientReducer::prepare(int64_t samples) {
  require(samples >= 0, "gradient reducer: negative sample count");
  weight_ = static_cast<double>(samples);
  poisoned_ = false;
  for (auto& bucket : buckets_) bucket.pending = static_cast<int64_t>(bucket.members.size());
  for (auto& slot : slots_) slot.ready = false;
  next_launch_ = 0;
  in_step_ = true;
}

void GradientReducer::poison() {
  require(in_step_, "gradient reducer: poison() without prepare()");
  poisoned_ = true;
}

void GradientReducer::copy_into_bucket(size_t index) {
  torch::NoGradGuard no_grad;
  Slot& slot = slots_[index];
  const torch::Tensor& p = parameters_[index];
  torch::Tensor view = buckets_[slot.bucket].flat.slice(0, slot.offset, slot.offset + p.numel());
  const torch::Tensor& grad = p.grad();
  if (grad.defined() && weight_ > 0) {
    view.copy_(grad.reshape({-1}));
    view.mul_(weight_);
  } else {
    view.zero_();  // no gradient, or no samples: contributes nothing
  }
  slot.ready = true;
  --buckets_[slot.bucket].pending;
}

void GradientReducer::on_gradient(size_t index) {
  if (!in_step_) return;  // a backward outside training (prepare() not called)
  if (slots_[index].ready)
    throw Error("gradient reducer: parameter " + std::to_string(index) +
                " received a second gradient in one step (backward ran twice?)");
  copy_into_bucket(index);
  launch_ready_buckets();
}

void GradientReducer::launch_ready_buckets() {
  while (next_launch_ < buckets_.size() && buckets_[next_launch_].pending == 0)
    launch(next_launch_++);
}

void GradientReducer::launch(size_t bucket) {
  Bucket& b = buckets_[bucket];
  const double count = poisoned_ ? std::numeric_limits<double>::quiet_NaN() : weight_;
  std::vector<torch::Tensor> tensors = {b.flat};
  if (!options_.bf16_comm) {
    if (bucket == 0) b.flat[b.flat.size(0) - 1].fill_(count);
    b.work = group_.all_reduce_async(tensors);
    stats_.comm_bytes += all_reduce_bytes(b.flat.numel() * b.flat.element_size(), group_.size());
    return;
  }
  if (bucket == 0) {
    count_ = torch::full({1}, count, b.flat.options());
    std::vector<torch::Tensor> counts = {count_};
    count_work_ = group_.all_reduce_async(counts);
    stats_.comm_bytes += all_reduce_bytes(count_.element_size(), group_.size());
  }
  b.work = group_.all_reduce_bf16_async(tensors);
  stats_.comm_bytes += all_reduce_bytes(b.flat.numel() * 2, group_.size());
}

void GradientReducer::finish() {
  require(in_step_, "gradient reducer: finish() without prepare()");
  metrics::Timer timer;
  // Parameters backward did not reach count as zero; buckets still go in index order.
  for (; next_launch_ < buckets_.size(); ++next_launch_) {
    for (const size_t k : buckets_[next_launch_].members)
      if (!slots_[k].ready) copy_into_bucket(k);
    launch(next_launch_);
  }
  for (auto& bucket : buckets_) bucket.work.wait();
  in_step_ = false;
  double total = 0.0;
  if (options_.bf16_comm) {
    count_work_.wait();
    total = count_.item<double>();
  } else {
    const torch::Tensor& first = buckets_[0].flat;
    total = first[first.size(0) - 1].item<double>();
  }
  torch::NoGradGuard no_grad;
  for (size_t k = 0; k < parameters_.size(); ++k) {
    torch::Tensor& p = parameters_[k];
    const Slot& slot = slots_[k];
    const torch::Tensor sum =
        buckets_[slot.bucket].flat.slice(0, slot.offset, slot.offset + p.numel()).view(p.sizes());
    if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
    if (!std::isfinite(total))  // a rank's loss was not finite (poison): so is the mean
      p.mutable_grad().fill_(std::numeric_limits<double>::quiet_NaN());
    else if (total > 0)
      p.mutable_grad().copy_(sum).div_(total);
    else
      p.mutable_grad().zero_();
  }
  stats_.wait_seconds += timer.seconds();
  ++stats_.steps;
}

}  // namespace tessera::dist
