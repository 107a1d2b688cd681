#include "tessera/models/rotary.h"

#include "tessera/core/error.h"

namespace tessera::models {

torch::Tensor apply_rotary(const torch::Tensor& x, int64_t offset, double base) {
  const int64_t head_dim = x.size(-1);
  const int64_t tokens = x.size(-2);
  require(head_dim % 2 == 0,
          "rotary embeddings need an even head width, got " + std::to_string(head_dim));
  // Angles in float64, so that long positions keep their precision, then in x's type.
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64).device(x.device());
  const torch::Tensor frequencies =
      torch::pow(base, torch::arange(0, head_dim, 2, f64) / static_cast<double>(head_dim))
          .reciprocal();
  const torch::Tensor positions = torch::arange(offset, offset + tokens, f64);
  const torch::Tensor angles = torch::outer(positions, frequencies);  // [tokens, head_dim / 2]
  const torch::Tensor cos = angles.cos().to(x.scalar_type());
  const torch::Tensor sin = angles.sin().to(x.scalar_type());
  std::vector<int64_t> pairs(x.sizes().begin(), x.sizes().end());
  pairs.back() = head_dim / 2;
  pairs.push_back(2);
  const torch::Tensor split = x.reshape(pairs);
  const torch::Tensor a = split.select(-1, 0);
  const torch::Tensor b = split.select(-1, 1);
  return torch::stack({a * cos - b * sin, a * sin + b * cos}, -1).flatten(-2);
}

}  // namespace tessera::models
