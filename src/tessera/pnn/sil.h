// Synthetic intermediate labels (SIL): for one cut of the network, a fixed random tensor with one
// row per class, shaped like one sample's activation at the cut. The partition before the cut is
// trained to output row y for a sample of class y; the partition after it learns from those rows.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "tessera/core/shape.h"

namespace tessera::pnn {

struct SilConfig {
  // uniform: kappa * U(0,1) entries (the paper's); gaussian: kappa * N(0,1) entries;
  // orthogonal: mutually orthogonal rows (one per class, needs classes <= activation size) of
  // norm kappa * sqrt(activation size), so that their entries have root mean square kappa like
  // gaussian's (unit-norm rows put entries near 1/sqrt(size), and a partition regressing them
  // collapsed to zero outputs).
  std::string generator = "uniform";
  double kappa = 1.0;
  uint64_t seed = 0;
};

std::vector<std::string> sil_generator_names();
// Throws UsageError naming the field for an unknown generator or a non-positive kappa.
void validate(const SilConfig& config);

// The labels for the cut with index `cut` (0 for the first cut): float32
// [num_classes, activation_shape...]. Deterministic in (config, cut).
torch::Tensor make_sil(const SilConfig& config, int64_t num_classes, const Shape& activation_shape,
                       int64_t cut);

}  // namespace tessera::pnn
