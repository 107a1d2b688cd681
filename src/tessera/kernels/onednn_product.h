// libtorch tensors onto onednn_matmul: the products kernels::linear and kernels::matmul compute
// when oneDNN is the chosen kernel.
#pragma once

#include <torch/torch.h>

namespace tessera::kernels {

// Whether oneDNN computes a product of these operands: matmul_backend() is Onednn, and they are
// non-empty fp32 CPU tensors outside autocast (bf16 products: bf16_products.h or autocast).
bool onednn_computes(std::initializer_list<const torch::Tensor*> operands);

// a . b (+ bias added to every row) as a new dense tensor, for a [..., M, K] and b [..., K, N] of
// equal rank and batch sizes; bias is [N] or undefined. An operand neither of whose last two
// strides is 1 is copied first; any other layout (transposed views included) is read in place.
torch::Tensor onednn_product(const torch::Tensor& a, const torch::Tensor& b,
                             const torch::Tensor& bias = {});

}  // namespace tessera::kernels
