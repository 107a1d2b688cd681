// The convolutional layers' forward: torch::nn::Conv2d's, except for bf16 under autocast with
// bf16_kernel() == Fp32Units, where the convolution runs on the fp32 kernel (bf16_products.h).
// Every model family calls this instead of the module's forward; the layers stay torch::nn::Conv2d
// modules (parameter names, checkpoints and subnetwork slicing do not change).
#pragma once

#include <torch/torch.h>

namespace tessera::kernels {

// conv->forward(x)'s result (within bf16 rounding on the fp32-units path, which takes layers with
// zero padding given as numbers; any other layer runs the module's own forward).
torch::Tensor conv2d(const torch::Tensor& x, const torch::nn::Conv2d& conv);

}  // namespace tessera::kernels
