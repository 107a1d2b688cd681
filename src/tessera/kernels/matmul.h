// Batched matrix products (attention's scores and mixing) on the kernel matmul_backend() chose.
#pragma once

#include <torch/torch.h>

namespace tessera::kernels {

// a . b for a [..., M, K] and b [..., K, N] with equal batch sizes: torch::matmul's result. On
// oneDNN (forward and both backward products, each operand read in its own layout: transposed
// views and heads split off a wider tensor need no copy) when matmul_backend() is Onednn and both
// are fp32 CPU tensors outside autocast; under CPU bf16 autocast with bf16_kernel() Fp32Units,
// on the fp32 kernel with bf16-rounded operands (bf16_products.h); torch::matmul otherwise (also
// for broadcasting batches and for vectors). The backward is not itself differentiable on the
// oneDNN and fp32-units paths.
torch::Tensor matmul(const torch::Tensor& a, const torch::Tensor& b);

}  // namespace tessera::kernels
