#include "tessera/models/rotary.h"

#include <algorithm>

#include "tessera/core/error.h"

namespace tessera::models {
namespace {

struct Angles {
  torch::Tensor cos, sin;  // [tokens, head_dim / 2]
};

// Angles in float64, so that long positions keep their precision, then in `like`'s type.
Angles rotary_angles(int64_t offset, int64_t tokens, int64_t head_dim, double base,
                     const torch::Tensor& like) {
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64).device(like.device());
  const torch::Tensor frequencies =
      torch::pow(base, torch::arange(0, head_dim, 2, f64) / static_cast<double>(head_dim))
          .reciprocal();
  const torch::Tensor positions = torch::arange(offset, offset + tokens, f64);
  const torch::Tensor angles = torch::outer(positions, frequencies);
  return {angles.cos().to(like.scalar_type()), angles.sin().to(like.scalar_type())};
}

torch::Tensor rotate_pairs(const torch::Tensor& x, const torch::Tensor& cos,
                           const torch::Tensor& sin) {
  std::vector<int64_t> pairs(x.sizes().begin(), x.sizes().end());
  pairs.back() = x.size(-1) / 2;
  pairs.push_back(2);
  const torch::Tensor split = x.reshape(pairs);
  const torch::Tensor a = split.select(-1, 0);
  const torch::Tensor b = split.select(-1, 1);
  return torch::stack({a * cos - b * sin, a * sin + b * cos}, -1).flatten(-2);
}

void require_even(int64_t head_dim) {
  require(head_dim % 2 == 0,
          "rotary embeddings need an even head width, got " + std::to_string(head_dim));
}

}  // namespace

torch::Tensor apply_rotary(const torch::Tensor& x, int64_t offset, double base) {
  require_even(x.size(-1));
  const Angles angles = rotary_angles(offset, x.size(-2), x.size(-1), base, x);
  return rotate_pairs(x, angles.cos, angles.sin);
}

void RotaryTable::ensure(int64_t positions, int64_t head_dim, const torch::Tensor& like) {
  const bool usable = cos_.defined() && cos_.size(0) >= positions && cos_.size(1) == head_dim / 2 &&
                      cos_.scalar_type() == like.scalar_type() && cos_.device() == like.device();
  if (usable) return;
  const int64_t capacity = std::max(positions, cos_.defined() ? 2 * cos_.size(0) : positions);
  const Angles angles = rotary_angles(0, capacity, head_dim, base_, like);
  cos_ = angles.cos;
  sin_ = angles.sin;
}

torch::Tensor RotaryTable::apply(const torch::Tensor& x, int64_t offset) {
  const int64_t tokens = x.size(-2);
  require_even(x.size(-1));
  ensure(offset + tokens, x.size(-1), x);
  return rotate_pairs(x, cos_.narrow(0, offset, tokens), sin_.narrow(0, offset, tokens));
}

}  // namespace tessera::models
