// The linear layers' product, y = x W^T + b, on the kernel matmul_backend() chose. Every model
// family calls this instead of torch::nn::Linear's forward; the layers stay torch::nn::Linear
// modules (parameter names, checkpoints and subnetwork slicing do not change).
#pragma once

#include <torch/torch.h>

namespace tessera::kernels {

// torch::linear's contract: x [..., K], weight [N, K], bias [N] or undefined -> [..., N]. On oneDNN
// (forward and both backward products) when matmul_backend() is Onednn and the product is an fp32
// one on a CPU outside autocast; under CPU bf16 autocast with bf16_kernel() Fp32Units on that
// kernel with bf16-rounded operands (bf16_products.h); on torch::linear otherwise (BLAS,
// autocast's native bf16, cuBLAS). The backward is not itself differentiable on the oneDNN and
// fp32-units paths (no second derivatives).
torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& weight,
                     const torch::Tensor& bias = {});
inline torch::Tensor linear(const torch::Tensor& x, const torch::nn::Linear& layer) {
  return linear(x, layer->weight, layer->bias);
}

}  // namespace tessera::kernels
