#include "tessera/data/dataset.h"

#include <cmath>
#include <string>
#include <vector>

#include "tessera/core/error.h"
#include "tessera/core/seeding.h"

namespace tessera::data {

Shape Dataset::sample_shape() const {
  if (windows) return {windows->seq_len};
  if (!inputs.defined()) return {};
  const auto sizes = inputs.sizes();
  return Shape(sizes.begin() + 1, sizes.end());
}

namespace {
// The offsets' random stream, apart from the permutation's (which uses (seed, epoch) alone).
constexpr uint64_t kWindowStream = 0x77696e646f7773;  // "windows"
}  // namespace

torch::Tensor TokenWindows::offsets(uint64_t seed, int64_t epoch) const {
  const int64_t length = tokens.size(0);
  if (!random_offsets) return torch::arange(count, torch::kLong) * seq_len;
  at::Generator generator =
      make_generator(mix_seed(mix_seed(seed, static_cast<uint64_t>(epoch)), kWindowStream));
  // A window needs seq_len + 1 tokens (its last target), so it starts at most at length - seq_len
  // - 1.
  return torch::randint(0, length - seq_len, {count}, generator, torch::kLong);
}

void TokenWindows::cut(const torch::Tensor& starts, torch::Tensor& inputs,
                       torch::Tensor& labels) const {
  const torch::Tensor positions =
      starts.unsqueeze(1) + torch::arange(seq_len + 1, torch::kLong).unsqueeze(0);
  const torch::Tensor window = tokens.index_select(0, positions.flatten())
                                   .view({starts.size(0), seq_len + 1})
                                   .to(torch::kLong);
  inputs = window.narrow(1, 0, seq_len);
  labels = window.narrow(1, 1, seq_len);
}

Dataset fixed_windows(const Dataset& dataset) {
  require(dataset.windows != nullptr, "fixed_windows: '" + dataset.name + "' has no token windows");
  const TokenWindows& windows = *dataset.windows;
  TokenWindows fixed = windows;
  fixed.random_offsets = false;
  Dataset out;
  out.name = dataset.name;
  out.num_classes = dataset.num_classes;
  fixed.cut(fixed.offsets(0, 0), out.inputs, out.labels);
  out.inputs = out.inputs.contiguous();
  out.labels = out.labels.contiguous();
  return out;
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
