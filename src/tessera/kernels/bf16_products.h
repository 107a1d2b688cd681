// bf16 matrix products and convolutions on the fp32 units (bf16_kernel() == Fp32Units): the
// results autocast's bf16 kernels compute -- operands rounded to bf16, products summed in fp32,
// the output rounded to bf16 -- with the multiplications done by the fp32 kernel on the operands
// widened back to fp32 (exact). Activations are kept for backward in bf16, as under autocast.
// kernels::linear, kernels::matmul and kernels::conv2d call these; nothing else needs to.
#pragma once

#include <vector>

#include <torch/torch.h>

namespace tessera::kernels {

// Whether these operands' product takes this path: CPU autocast is on in bf16, bf16_kernel() is
// Fp32Units, and every defined operand is a non-empty fp32 or bf16 CPU tensor.
bool bf16_on_fp32_units(std::initializer_list<const torch::Tensor*> operands);

// The three products, each with autocast's result dtype (bf16). Gradients: the input's in the
// input's dtype, the weight's and bias's in fp32 (not rounded to bf16 first, as autocast's are).
// None of the backwards is itself differentiable.
// x [M, K], weight [N, K], bias [N] or empty -> [M, N].
torch::Tensor bf16_linear(const torch::Tensor& x, const torch::Tensor& weight,
                          const torch::Tensor& bias);
// a [..., M, K], b [..., K, N] with equal batch sizes -> [..., M, N].
torch::Tensor bf16_matmul(const torch::Tensor& a, const torch::Tensor& b);
// torch::conv2d's contract with zero padding; bias [C_out] or empty.
struct Conv2dGeometry {
  std::vector<int64_t> stride, padding, dilation;
  int64_t groups = 1;
};
torch::Tensor bf16_conv2d(const torch::Tensor& x, const torch::Tensor& weight,
                          const torch::Tensor& bias, const Conv2dGeometry& geometry);

}  // namespace tessera::kernels
