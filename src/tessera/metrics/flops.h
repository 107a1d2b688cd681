// Analytic FLOP counts for one forward pass. A multiply-add is 2 FLOPs. Training costs
// forward + backward, and the backward of a linear or convolutional layer is twice its forward
// (gradient with respect to the input and to the weights), hence training_flops = 3 * forward.
#pragma once

#include <cstdint>

namespace tessera::metrics {

// y = x W^T + b for `rows` rows of `in` features.
int64_t linear_flops(int64_t rows, int64_t in_features, int64_t out_features, bool bias = true);

// A 2-D convolution producing an out_h x out_w map.
int64_t conv2d_flops(int64_t in_channels, int64_t out_channels, int64_t kernel_h, int64_t kernel_w,
                     int64_t out_h, int64_t out_w, int64_t groups = 1, bool bias = false);

// Scaled dot-product attention core for `tokens` tokens of width `dim` split into `heads` heads:
// Q K^T (2 T^2 d), softmax (~5 per score: max, subtract, exp, sum, divide) and A V (2 T^2 d).
// The Q/K/V/output projections are linear layers and are counted with linear_flops.
int64_t attention_flops(int64_t tokens, int64_t dim, int64_t heads);

// BatchNorm / LayerNorm over `elements` values (normalise and affine: ~5 FLOPs per value in
// training mode, where the statistics are computed too).
int64_t norm_flops(int64_t elements);

// Element-wise activation (ReLU, GELU, tanh) or residual addition: one FLOP per value.
int64_t elementwise_flops(int64_t elements);

inline int64_t training_flops(int64_t forward_flops) {
  return 3 * forward_flops;
}

}  // namespace tessera::metrics
