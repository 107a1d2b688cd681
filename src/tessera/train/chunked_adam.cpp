#include "tessera/train/chunked_adam.h"

#include <cmath>

#include "tessera/train/fused_kernels.h"
#include "tessera/train/fused_step.h"
#include "tessera/train/optimizer_state.h"

namespace tessera::train {
namespace {

// p -= lr / bc1 * m / (sqrt(v) / sqrt(bc2) + eps), slice by slice (amsgrad: v is max(v)).
void apply_update(torch::Tensor& p, const torch::Tensor& exp_avg, const torch::Tensor& exp_avg_sq,
                  double bias_correction2, double eps, double step_size) {
  if (!p.is_contiguous() || !exp_avg.is_contiguous() || !exp_avg_sq.is_contiguous()) {
    p.addcdiv_(exp_avg, (exp_avg_sq.sqrt() / std::sqrt(bias_correction2)).add_(eps), -step_size);
    return;
  }
  torch::Tensor flat_p = p.view({-1});
  const torch::Tensor flat_m = exp_avg.view({-1});
  const torch::Tensor flat_v = exp_avg_sq.view({-1});
  const int64_t n = flat_p.numel();
  // On a GPU every slice costs three kernel launches; there the step stays whole, as libtorch's.
  const int64_t chunk = p.is_cuda() ? std::max<int64_t>(n, 1) : kChunkElements;
  for (int64_t begin = 0; begin < n; begin += chunk) {
    const int64_t end = std::min(n, begin + chunk);
    torch::Tensor denom = flat_v.slice(0, begin, end).sqrt() / std::sqrt(bias_correction2);
    denom.add_(eps);
    flat_p.slice(0, begin, end).addcdiv_(flat_m.slice(0, begin, end), denom, -step_size);
  }
}

// Adam(W)'s update of one float CPU parameter in one pass over p, grad and the moments (see
// fused_kernels.h), the elements split among the intra-op threads in one parallel region.
void fused_update(torch::Tensor& p, const torch::Tensor& grad, torch::Tensor& exp_avg,
                  torch::Tensor& exp_avg_sq, torch::Tensor max_exp_avg_sq, const AdamScalars& s) {
  float* param = p.data_ptr<float>();
  const float* gradient = grad.data_ptr<float>();
  float* first = exp_avg.data_ptr<float>();
  float* second = exp_avg_sq.data_ptr<float>();
  float* maximum = max_exp_avg_sq.defined() ? max_exp_avg_sq.data_ptr<float>() : nullptr;
  parallel_elements(p.numel(), [&](int64_t begin, int64_t end) {
    adam_update(param + begin, gradient + begin, first + begin, second + begin,
                maximum == nullptr ? nullptr : maximum + begin, end - begin, s);
  });
  // Written through raw pointers: tell autograd's checks that these tensors changed.
  for (auto* t : {&p, &exp_avg, &exp_avg_sq, &max_exp_avg_sq})
    if (t->defined()) t->unsafeGetTensorImpl()->bump_version();
}

// The constants of step `step` (counted from 1), computed in double as libtorch does.
template <typename Options>
AdamScalars adam_scalars(const Options& options, int64_t step, bool decoupled) {
  const double beta1 = std::get<0>(options.betas());
  const double beta2 = std::get<1>(options.betas());
  AdamScalars s;
  s.beta1 = static_cast<float>(beta1);
  s.beta2 = static_cast<float>(beta2);
  s.one_minus_beta1 = static_cast<float>(1 - beta1);
  s.one_minus_beta2 = static_cast<float>(1 - beta2);
  s.eps = static_cast<float>(options.eps());
  s.weight_decay = decoupled ? 0.0f : static_cast<float>(options.weight_decay());
  s.decay_factor = decoupled ? static_cast<float>(1 - options.lr() * options.weight_decay()) : 1;
  s.sqrt_bias_correction2 =
      static_cast<float>(std::sqrt(1 - std::pow(beta2, static_cast<double>(step))));
  s.step_size = static_cast<float>(options.lr() / (1 - std::pow(beta1, static_cast<double>(step))));
  return s;
}

// One parameter's Adam(W) step, as libtorch's Adam::step / AdamW::step do it.
template <typename Options, typename State, typename StateMap>
void step_parameter(torch::Tensor& p, Options& options, StateMap& states, bool decoupled) {
  torch::Tensor grad = p.grad();
  TORCH_CHECK(!grad.is_sparse(), "Adam does not support sparse gradients");
  const auto key = optimizer_state_key<typename StateMap::key_type>(p);
  auto found = states.find(key);
  if (found == states.end()) {
    auto state = std::make_unique<State>();
    state->step(0);
    state->exp_avg(torch::zeros_like(p, torch::MemoryFormat::Preserve));
    state->exp_avg_sq(torch::zeros_like(p, torch::MemoryFormat::Preserve));
    if (options.amsgrad())
      state->max_exp_avg_sq(torch::zeros_like(p, torch::MemoryFormat::Preserve));
    found = states.emplace(key, std::move(state)).first;
  }
  auto& state = static_cast<State&>(*found->second);
  if (fusable({p, grad, state.exp_avg(), state.exp_avg_sq(), state.max_exp_avg_sq()})) {
    state.step(state.step() + 1);
    fused_update(p, grad, state.exp_avg(), state.exp_avg_sq(), state.max_exp_avg_sq(),
                 adam_scalars(options, state.step(), decoupled));
    return;
  }
  if (decoupled && options.weight_decay() != 0) p.mul_(1 - options.lr() * options.weight_decay());
  state.step(state.step() + 1);
  const double beta1 = std::get<0>(options.betas());
  const double beta2 = std::get<1>(options.betas());
  const double bias_correction1 = 1 - std::pow(beta1, state.step());
  const double bias_correction2 = 1 - std::pow(beta2, state.step());
  if (!decoupled && options.weight_decay() != 0) grad = grad.add(p, options.weight_decay());
  state.exp_avg().mul_(beta1).add_(grad, 1 - beta1);
  state.exp_avg_sq().mul_(beta2).addcmul_(grad, grad, 1 - beta2);
  torch::Tensor second = state.exp_avg_sq();
  if (options.amsgrad()) {
    torch::max_out(state.max_exp_avg_sq(), state.max_exp_avg_sq(), state.exp_avg_sq());
    second = state.max_exp_avg_sq();
  }
  apply_update(p, state.exp_avg(), second, bias_correction2, options.eps(),
               options.lr() / bias_correction1);
}

template <typename Options, typename State, typename Groups, typename StateMap>
torch::Tensor step_all(torch::optim::Optimizer::LossClosure& closure, Groups& groups,
                       StateMap& states, bool decoupled) {
  torch::NoGradGuard no_grad;
  torch::Tensor loss;
  if (closure != nullptr) {
    at::AutoGradMode enable_grad(true);
    loss = closure();
  }
  for (auto& group : groups) {
    auto& options = static_cast<Options&>(group.options());
    for (auto& p : group.params())
      if (p.grad().defined()) step_parameter<Options, State>(p, options, states, decoupled);
  }
  return loss;
}

}  // namespace

torch::Tensor ChunkedAdam::step(LossClosure closure) {
  return step_all<torch::optim::AdamOptions, torch::optim::AdamParamState>(closure, param_groups_,
                                                                           state_, false);
}

torch::Tensor ChunkedAdamW::step(LossClosure closure) {
  return step_all<torch::optim::AdamWOptions, torch::optim::AdamWParamState>(closure, param_groups_,
                                                                             state_, true);
}

}  // namespace tessera::train
