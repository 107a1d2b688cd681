// SGD (momentum, dampening, Nesterov, weight decay) as libtorch's SGD::step computes it, with a
// float parameter on the CPU updated in one pass over parameter, gradient and momentum buffer in
// one parallel region (fused_kernels.h): equal to libtorch's up to float rounding. Other tensors
// take libtorch's operations. State, options and checkpoints are libtorch's own.
#pragma once

#include <torch/torch.h>

namespace tessera::train {

class FusedSGD : public torch::optim::SGD {
 public:
  using torch::optim::SGD::SGD;
  torch::Tensor step(LossClosure closure = nullptr) override;
};

}  // namespace tessera::train
