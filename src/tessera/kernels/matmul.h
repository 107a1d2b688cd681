// Batched matrix products (attention's scores and mixing) on the kernel matmul_backend() chose.
#pragma once

#include <torch/torch.h>

namespace tessera::kernels {

// a . b for a [..., M, K] and b [..., K, N] with equal batch sizes: torch::matmul's result. On
// oneDNN (forward and both backward products, each operand read in its own layout: transposed
// views and heads split off a wider tensor need no copy) when matmul_backend() is Onednn and both
// are fp32 CPU tensors outside autocast; torch::matmul otherwise (also for broadcasting batches
// and for vectors). The backward is not itself differentiable on the oneDNN path.
torch::Tensor matmul(const torch::Tensor& a, const torch::Tensor& b);

}  // namespace tessera::kernels
