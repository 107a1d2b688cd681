#include "tessera/train/optimizer_state.h"

#include "tessera/core/error.h"

namespace tessera::train {
namespace {

// The state of `parameter` in `states`, created by `make` if absent.
template <typename State, typename StateMap, typename Make>
State& state_of(StateMap& states, const torch::Tensor& parameter, Make make) {
  const auto key = optimizer_state_key<typename StateMap::key_type>(parameter);
  auto found = states.find(key);
  if (found == states.end()) found = states.emplace(key, make()).first;
  auto* state = dynamic_cast<State*>(found->second.get());
  if (state == nullptr) throw Error("optimizer state of an unexpected type");
  return *state;
}

template <typename State, typename Options>
std::vector<torch::Tensor> adam_state(torch::optim::Optimizer& optimizer,
                                      const torch::Tensor& parameter, int64_t steps) {
  const bool amsgrad = static_cast<const Options&>(optimizer.defaults()).amsgrad();
  State& state = state_of<State>(optimizer.state(), parameter, [&] {
    auto fresh = std::make_unique<State>();
    fresh->step(steps);
    fresh->exp_avg(torch::zeros_like(parameter, torch::MemoryFormat::Preserve));
    fresh->exp_avg_sq(torch::zeros_like(parameter, torch::MemoryFormat::Preserve));
    if (amsgrad) fresh->max_exp_avg_sq(torch::zeros_like(parameter, torch::MemoryFormat::Preserve));
    return fresh;
  });
  std::vector<torch::Tensor> tensors = {state.exp_avg(), state.exp_avg_sq()};
  if (amsgrad) tensors.push_back(state.max_exp_avg_sq());
  return tensors;
}

}  // namespace

std::vector<torch::Tensor> parameter_state(torch::optim::Optimizer& optimizer,
                                           const torch::Tensor& parameter, int64_t steps) {
  if (dynamic_cast<torch::optim::SGD*>(&optimizer) != nullptr) {
    if (static_cast<const torch::optim::SGDOptions&>(optimizer.defaults()).momentum() == 0)
      return {};
    // libtorch's SGD starts the buffer as the first gradient; a zero buffer gives the same step.
    auto& state = state_of<torch::optim::SGDParamState>(optimizer.state(), parameter, [&] {
      auto fresh = std::make_unique<torch::optim::SGDParamState>();
      fresh->momentum_buffer(torch::zeros_like(parameter, torch::MemoryFormat::Preserve));
      return fresh;
    });
    return {state.momentum_buffer()};
  }
  if (dynamic_cast<torch::optim::AdamW*>(&optimizer) != nullptr)
    return adam_state<torch::optim::AdamWParamState, torch::optim::AdamWOptions>(optimizer,
                                                                                 parameter, steps);
  if (dynamic_cast<torch::optim::Adam*>(&optimizer) != nullptr)
    return adam_state<torch::optim::AdamParamState, torch::optim::AdamOptions>(optimizer, parameter,
                                                                               steps);
  throw Error("parameter_state: an optimizer other than sgd, adam or adamw");
}

int64_t parameter_state_count(const torch::optim::Optimizer& optimizer) {
  if (dynamic_cast<const torch::optim::SGD*>(&optimizer) != nullptr)
    return static_cast<const torch::optim::SGDOptions&>(optimizer.defaults()).momentum() == 0 ? 0
                                                                                              : 1;
  if (dynamic_cast<const torch::optim::AdamW*>(&optimizer) != nullptr)
    return static_cast<const torch::optim::AdamWOptions&>(optimizer.defaults()).amsgrad() ? 3 : 2;
  if (dynamic_cast<const torch::optim::Adam*>(&optimizer) != nullptr)
    return static_cast<const torch::optim::AdamOptions&>(optimizer.defaults()).amsgrad() ? 3 : 2;
  throw Error("parameter_state_count: an optimizer other than sgd, adam or adamw");
}

}  // namespace tessera::train
