// RMSNorm: x / sqrt(mean(x^2) + eps) * weight over the last dimension, with a backward of its own
// that keeps only x (which its caller usually holds anyway: the residual stream) and one inverse
// root per row. Written as ops, autograd would also keep x * rsqrt(...), a second activation-sized
// tensor per norm, for the product with the weight.
#pragma once

#include <cstdint>

#include <torch/torch.h>

namespace tessera::models {

// The normalisation as a function; differentiable in x and weight (weight: [x.size(-1)]).
torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps);

class RmsNormImpl : public torch::nn::Module {
 public:
  explicit RmsNormImpl(int64_t dim, double eps = 1e-5);
  torch::Tensor forward(const torch::Tensor& x);

  torch::Tensor weight;

 private:
  double eps_;
};
TORCH_MODULE(RmsNorm);

}  // namespace tessera::models
