// One parameter's optimizer state (SGD's momentum, Adam's moments), read and written directly, so
// that a parameter's training state can move from one worker to another (SDP plan redraws).
#pragma once

#include <cstdint>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include <torch/torch.h>

namespace tessera::train {

// torch-compat: optimizer state is keyed by the parameter's TensorImpl, in libtorch 1.x as its
// address printed to a string (c10::guts::to_string, gone in 2.x), in 2.x as the pointer; the
// map's key type tells which.
template <typename Key>
Key optimizer_state_key(const torch::Tensor& p) {
  if constexpr (std::is_same_v<Key, std::string>) {
    std::ostringstream address;
    address << p.unsafeGetTensorImpl();
    return address.str();
  } else {
    return static_cast<Key>(p.unsafeGetTensorImpl());
  }
}

// The state tensors of `parameter` in `optimizer` (one of make_optimizer's), in a fixed order:
// SGD its momentum buffer (none without momentum); Adam and AdamW the first and second moments,
// then amsgrad's maximum. State the optimizer has not created yet is created here, zero, as after
// `steps` steps (Adam's bias correction counts them), so that the caller can write into it.
// Writing into the returned tensors writes the optimizer's state.
std::vector<torch::Tensor> parameter_state(torch::optim::Optimizer& optimizer,
                                           const torch::Tensor& parameter, int64_t steps);

// How many state tensors parameter_state gives for each parameter of `optimizer`.
int64_t parameter_state_count(const torch::optim::Optimizer& optimizer);

}  // namespace tessera::train
