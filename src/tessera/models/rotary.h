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

// The same rotation with the cos and sin tables computed once, for positions [0, capacity), and
// sliced per call: recomputing them (in float64) in every attention layer of every step is work a
// training step need not do. Results are bit-identical to apply_rotary. The table grows
// (doubling) when a call reaches past its capacity, and is rebuilt for another dtype or device.
class RotaryTable {
 public:
  explicit RotaryTable(double base = kRotaryBase) : base_(base) {}

  torch::Tensor apply(const torch::Tensor& x, int64_t offset);

 private:
  void ensure(int64_t positions, int64_t head_dim, const torch::Tensor& like);

  double base_;
  torch::Tensor cos_, sin_;  // [capacity, head_dim / 2], x's dtype and device
};

}  // namespace tessera::models
