// Element-wise activations by name, shared by the model families.
#pragma once

#include <string>

#include <torch/torch.h>

namespace tessera::models {

// Throws UsageError for a name other than relu, gelu, tanh.
void check_activation(const std::string& name);
torch::Tensor activate(const std::string& name, const torch::Tensor& x);

}  // namespace tessera::models
