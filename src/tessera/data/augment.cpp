// Whole-batch image augmentation for BatchIterator (declared in batches.h).
#include <string>

#include "tessera/core/error.h"
#include "tessera/core/seeding.h"
#include "tessera/data/batches.h"

namespace tessera::data {

namespace {

// Random crop of the original size from the zero-padded batch: each sample gets its own offset
// (dy, dx) in [0, 2p]; two gathers (rows, then columns) do the whole batch at once.
torch::Tensor random_crop(const torch::Tensor& images, int64_t padding, at::Generator& generator) {
  const int64_t batch = images.size(0), channels = images.size(1);
  const int64_t height = images.size(2), width = images.size(3);
  const torch::Tensor padded =
      torch::constant_pad_nd(images, {padding, padding, padding, padding}, 0);
  const torch::Tensor dy = torch::randint(2 * padding + 1, {batch, 1}, generator);
  const torch::Tensor dx = torch::randint(2 * padding + 1, {batch, 1}, generator);
  const torch::Tensor rows = (dy + torch::arange(height)).view({batch, 1, height, 1});
  const torch::Tensor cols = (dx + torch::arange(width)).view({batch, 1, 1, width});
  const torch::Tensor cropped_rows =
      padded.gather(2, rows.expand({batch, channels, height, padded.size(3)}));
  return cropped_rows.gather(3, cols.expand({batch, channels, height, width}));
}

// Mirrors each image left-right with probability 1/2.
torch::Tensor random_flip(const torch::Tensor& images, at::Generator& generator) {
  const torch::Tensor flip = torch::rand({images.size(0)}, generator).lt(0.5);
  return torch::where(flip.view({-1, 1, 1, 1}), images.flip({3}), images);
}

}  // namespace

torch::Tensor augment_batch(const torch::Tensor& images, const Augmentation& augmentation,
                            uint64_t seed) {
  require(images.dim() == 4, "augmentation needs images [B, C, H, W], got " +
                                 std::to_string(images.dim()) + " dimensions");
  require(augmentation.crop_padding >= 0,
          "crop padding must be >= 0, got " + std::to_string(augmentation.crop_padding));
  at::Generator generator = make_generator(seed);
  torch::Tensor result = images;
  if (augmentation.crop_padding > 0)
    result = random_crop(result, augmentation.crop_padding, generator);
  if (augmentation.horizontal_flip) result = random_flip(result, generator);
  return result;
}

}  // namespace tessera::data
