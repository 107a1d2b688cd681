// Rotary position embeddings (RoPE, Su et al. 2021, as in LLaMA): each head's query and key
// vectors are rotated pairwise by angles that grow with the position, so that their dot product
// depends on the positions' difference only.
#pragma once

#include <cstdint>

#include <torch/torch.h>

namespace tessera::models {

constexpr double kRotaryBase = 10000.0;

// x: [..., tokens, head_dim] (head_dim even), the token at index t being at position offset + t.
// Rotates each pair (x[2i], x[2i+1]) by the angle position * base^(-2i / head_dim):
//   (a, b) -> (a cos - b sin, a sin + b cos).
torch::Tensor apply_rotary(const torch::Tensor& x, int64_t offset, double base = kRotaryBase);

}  // namespace tessera::models
