#include "tessera/data/dataset.h"

#include <cmath>
#include <string>
#include <vector>

#include "tessera/core/error.h"

namespace tessera::data {

Shape Dataset::sample_shape() const {
  if (!inputs.defined()) return {};
  const auto sizes = inputs.sizes();
  return Shape(sizes.begin() + 1, sizes.end());
}

namespace {

// Images [N, C, ...] have one statistic per channel (dimension 1). Vectors [N, D] count as a
// single channel: a per-feature std would be zero for features that never vary.
bool has_channels(const torch::Tensor& images) {
  return images.dim() >= 3;
}

// A per-channel statistic [C] shaped to broadcast against `images`.
torch::Tensor broadcastable(const torch::Tensor& stat, const torch::Tensor& images) {
  std::vector<int64_t> shape(images.dim(), 1);
  if (has_channels(images)) shape[1] = stat.size(0);
  return stat.reshape(shape);
}

}  // namespace

Normalization channel_statistics(const torch::Tensor& images) {
  require(images.defined() && images.dim() >= 2 && images.size(0) > 0,
          "normalisation: expected a non-empty batch [N, C, H, W] or [N, D]");
  const int64_t channels = has_channels(images) ? images.size(1) : 1;
  Normalization stats{torch::empty({channels}), torch::empty({channels})};
  // One full reduction per channel: several times faster than reducing over dims {0, 2, 3}.
  for (int64_t c = 0; c < channels; ++c) {
    const torch::Tensor channel = has_channels(images) ? images.select(1, c) : images;
    const double variance = channel.var(/*unbiased=*/false).item<double>();
    stats.mean[c] = channel.mean().item<double>();
    // A constant channel has std 0: keep its scale instead of dividing by zero.
    stats.std[c] = variance > 1e-24 ? std::sqrt(variance) : 1.0;
  }
  return stats;
}

void normalize_in_place(torch::Tensor& images, const Normalization& stats) {
  images.sub_(broadcastable(stats.mean, images)).div_(broadcastable(stats.std, images));
}

}  // namespace tessera::data
