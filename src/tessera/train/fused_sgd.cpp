#include "tessera/train/fused_sgd.h"

#include <memory>

#include "tessera/train/fused_kernels.h"
#include "tessera/train/fused_step.h"
#include "tessera/train/optimizer_state.h"

namespace tessera::train {
namespace {

// libtorch's SGD::step for one parameter, tensor operation by tensor operation. `buf` is the
// momentum buffer, undefined before the first step.
void step_with_tensor_ops(torch::Tensor& p, const torch::optim::SGDOptions& options,
                          torch::Tensor& buf) {
  torch::Tensor d_p = p.grad();
  if (options.weight_decay() != 0) d_p = d_p.add(p, options.weight_decay());
  if (options.momentum() != 0) {
    if (!buf.defined()) {
      buf = torch::clone(d_p).detach();
    } else {
      buf.mul_(options.momentum()).add_(d_p, 1 - options.dampening());
    }
    d_p = options.nesterov() ? d_p.add(buf, options.momentum()) : buf;
  }
  p.add_(d_p, -options.lr());
}

void step_fused(torch::Tensor& p, const torch::optim::SGDOptions& options, torch::Tensor& buf) {
  SgdScalars s;
  s.lr = static_cast<float>(options.lr());
  s.weight_decay = static_cast<float>(options.weight_decay());
  s.momentum = static_cast<float>(options.momentum());
  s.one_minus_dampening = static_cast<float>(1 - options.dampening());
  s.nesterov = options.nesterov();
  s.first_step = options.momentum() != 0 && !buf.defined();
  if (s.first_step) buf = torch::empty_like(p);
  float* param = p.data_ptr<float>();
  const float* gradient = p.grad().data_ptr<float>();
  float* momentum = options.momentum() != 0 ? buf.data_ptr<float>() : nullptr;
  parallel_elements(p.numel(), [&](int64_t begin, int64_t end) {
    sgd_update(param + begin, gradient + begin, momentum == nullptr ? nullptr : momentum + begin,
               end - begin, s);
  });
  p.unsafeGetTensorImpl()->bump_version();  // written through a raw pointer
  if (momentum != nullptr) buf.unsafeGetTensorImpl()->bump_version();
}

}  // namespace

torch::Tensor FusedSGD::step(LossClosure closure) {
  torch::NoGradGuard no_grad;
  torch::Tensor loss;
  if (closure != nullptr) {
    at::AutoGradMode enable_grad(true);
    loss = closure();
  }
  using Key = decltype(state_)::key_type;
  for (auto& group : param_groups_) {
    const auto& options = static_cast<const torch::optim::SGDOptions&>(group.options());
    for (auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      const Key key = optimizer_state_key<Key>(p);
      auto found = state_.find(key);
      torch::Tensor buf;
      if (found != state_.end())
        buf = static_cast<torch::optim::SGDParamState&>(*found->second).momentum_buffer();
      const bool had_buffer = buf.defined();
      if (fusable({p, p.grad(), buf}))
        step_fused(p, options, buf);
      else
        step_with_tensor_ops(p, options, buf);
      if (buf.defined() && !had_buffer) {
        auto state = std::make_unique<torch::optim::SGDParamState>();
        state->momentum_buffer(buf);
        state_[key] = std::move(state);
      }
    }
  }
  return loss;
}

}  // namespace tessera::train
