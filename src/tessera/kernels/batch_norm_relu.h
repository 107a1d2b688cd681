// relu(batch_norm(x) [+ residual]) for a training-mode torch::nn::BatchNorm2d, the convolutional
// families' most frequent sequence: one pass over x for the batch statistics and one that
// normalizes, adds the residual and clamps, instead of libtorch's separate batch norm (two passes
// for the statistics, one to normalize), add and ReLU, each writing a full activation. The
// backward is libtorch's ReLU and batch-norm backward. Everything else -- evaluation mode, other
// dtypes (autocast's bf16), layouts, running averages that are not tracked -- runs libtorch's ops.
#pragma once

#include <torch/torch.h>

namespace tessera::kernels {

// relu(bn(x) + residual) (residual undefined: relu(bn(x))), updating bn's running statistics and
// batch count as its forward does. x is [N, C, H, W]; residual, when given, has x's shape. Within
// float rounding of libtorch's result (the statistics are summed in another order).
torch::Tensor batch_norm_relu(const torch::Tensor& x, const torch::nn::BatchNorm2d& bn,
                              const torch::Tensor& residual = {});

}  // namespace tessera::kernels
