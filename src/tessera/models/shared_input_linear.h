// Several linear layers applied to one input (attention's q, k and v; SwiGLU's gate and up),
// computed as one product with their weights stacked. One matrix product instead of several, and,
// under autocast, one reduced-precision copy of the input kept for backward instead of one per
// layer; the input's gradient leaves the product already summed over the layers, in the product's
// own accumulator. The layers keep their own parameters (checkpoints and subnetwork slicing do not
// change); only the arithmetic is shared.
#pragma once

#include <vector>

#include <torch/torch.h>

namespace tessera::models {

// {layers[0](input), layers[1](input), ...}, views of one output tensor. The layers must all have
// a bias or all have none, and the same input width; Error otherwise.
std::vector<torch::Tensor> linear_on_shared_input(const torch::Tensor& input,
                                                  const std::vector<torch::nn::Linear>& layers);

}  // namespace tessera::models
