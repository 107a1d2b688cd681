// The space a partition regresses its synthetic labels in. "full": the cut's activation itself
// (the paper's). "pooled" / "projected": the activation mapped by a FIXED linear map M to fewer
// dimensions (average pooling of each channel to size x size cells, or a seeded random projection
// with orthonormal rows to `size` dimensions) before the regression loss, so that a small
// convolutional partition, which cannot draw an arbitrary pattern over every pixel, only has to
// hit the labels in M's image. The joined network is unchanged: M is applied in the loss only.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "tessera/core/shape.h"

namespace tessera::pnn {

struct SilSpaceConfig {
  std::string kind = "full";  // full | pooled | projected
  int64_t size = 0;           // pooled: cells per side; projected: dimensions; full: unused
};

std::vector<std::string> sil_space_names();
// Throws UsageError naming --sil-space / --sil-space-size for an unknown kind, a size that is
// not positive (pooled, projected) or a size given with full.
void validate(const SilSpaceConfig& config);

class SilSpace {
 public:
  // The map for one cut's activation shape, drawn (projected) from `seed`. Throws UsageError when
  // the kind does not fit the shape: pooled needs a [C, H, W] activation with H and W divisible by
  // the size; projected needs at most as many dimensions as the activation has entries.
  SilSpace(SilSpaceConfig config, Shape activation_shape, uint64_t seed);

  const SilSpaceConfig& config() const { return config_; }
  const Shape& activation_shape() const { return activation_shape_; }
  // One sample's shape in this space: the activation's (full), [C, size, size] (pooled),
  // [size] (projected).
  const Shape& reduced_shape() const { return reduced_shape_; }

  // [N..., activation_shape...] -> [N..., reduced_shape...]: M applied to every sample.
  torch::Tensor reduce(const torch::Tensor& activations) const;
  // [N, reduced_shape...] -> [N, activation_shape...]: the least-norm activation that M maps to
  // each row (M's pseudo-inverse): pooled, each cell's value repeated over its cell; projected,
  // P^T s. What a later partition of the parallel schedule trains on in place of the activation.
  torch::Tensor lift(const torch::Tensor& rows) const;

 private:
  SilSpaceConfig config_;
  Shape activation_shape_;
  Shape reduced_shape_;
  torch::Tensor projection_;  // projected: [size, numel(activation)], orthonormal rows
};

}  // namespace tessera::pnn
