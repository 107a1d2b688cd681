#include "tessera/data/batches.h"

#include <algorithm>
#include <string>

#include "tessera/core/error.h"
#include "tessera/core/seeding.h"

namespace tessera::data {

namespace {

void validate(const Dataset& dataset, const BatchOptions& options) {
  require(dataset.size() > 0, "batches: data set '" + dataset.name + "' is empty");
  require(options.batch_size >= 1,
          "batch_size must be >= 1, got " + std::to_string(options.batch_size));
  require(options.world_size >= 1,
          "world_size must be >= 1, got " + std::to_string(options.world_size));
  require(options.rank >= 0 && options.rank < options.world_size,
          "rank must lie in [0, world_size = " + std::to_string(options.world_size) + "), got " +
              std::to_string(options.rank));
  require(options.augmentation.crop_padding >= 0,
          "crop padding must be >= 0, got " + std::to_string(options.augmentation.crop_padding));
  require(!options.augmentation.enabled() || (!dataset.windows && dataset.inputs.dim() == 4),
          "augmentation needs image inputs [N, C, H, W]; data set '" + dataset.name +
              "' has samples of shape " + to_string(dataset.sample_shape()));
}

// Length of the epoch's permutation after padding (or truncating) to a multiple of the world.
int64_t total_size(int64_t samples, const BatchOptions& options) {
  const int64_t world = options.world_size;
  return options.drop_last ? samples / world * world : (samples + world - 1) / world * world;
}

}  // namespace

BatchOptions in_order(int64_t batch_size) {
  BatchOptions options;
  options.batch_size = batch_size;
  options.shuffle = false;
  return options;
}

BatchIterator::BatchIterator(const Dataset& dataset, BatchOptions options)
    : dataset_(dataset), options_(options) {
  validate(dataset_, options_);
  start_epoch(0);
}

void BatchIterator::start_epoch(int64_t epoch) {
  epoch_ = epoch;
  position_ = 0;
  const int64_t samples = dataset_.size();
  // Every rank draws the same permutation: it depends only on (seed, epoch).
  torch::Tensor order = torch::arange(samples, torch::kLong);
  if (options_.shuffle) {
    at::Generator generator = make_generator(mix_seed(options_.seed, static_cast<uint64_t>(epoch)));
    order = torch::randperm(samples, generator);
  }
  // Position i of the padded permutation is order[i mod N]: wrapping around as often as needed.
  const int64_t total = total_size(samples, options_);
  const torch::Tensor padded = order.index_select(0, torch::arange(total).remainder(samples));
  shard_indices_ = padded.slice(0, options_.rank, total, options_.world_size).contiguous();
  // Token windows: the epoch's start offsets (the same on every rank); sample i is window i.
  if (dataset_.windows) window_offsets_ = dataset_.windows->offsets(options_.seed, epoch);
}

int64_t BatchIterator::shard_size() const {
  return total_size(dataset_.size(), options_) / options_.world_size;
}

int64_t BatchIterator::batches_per_epoch() const {
  const int64_t size = shard_size();
  const int64_t batch = options_.batch_size;
  return options_.drop_last ? size / batch : (size + batch - 1) / batch;
}

void BatchIterator::skip(int64_t batches) {
  require(batches >= 0, "batches: cannot skip a negative number of batches");
  position_ = std::min(shard_size(), position_ + batches * options_.batch_size);
}

bool BatchIterator::next(Batch& batch) {
  // Batches start at multiples of batch_size; with drop_last, a partial last one does not count.
  const int64_t index = position_ / options_.batch_size;
  if (position_ >= shard_size() || index >= batches_per_epoch()) return false;
  const int64_t end = std::min(position_ + options_.batch_size, shard_size());
  const torch::Tensor indices = shard_indices_.slice(0, position_, end);
  position_ = end;
  if (dataset_.windows) {
    dataset_.windows->cut(window_offsets_.index_select(0, indices), batch.inputs, batch.labels);
    return true;
  }
  batch.inputs = dataset_.inputs.index_select(0, indices);
  batch.labels = dataset_.labels.index_select(0, indices);
  if (options_.augmentation.enabled()) {
    // Different ranks augment their (different) samples with independent randomness.
    uint64_t seed = mix_seed(options_.seed, static_cast<uint64_t>(epoch_));
    seed = mix_seed(mix_seed(seed, static_cast<uint64_t>(options_.rank)),
                    static_cast<uint64_t>(index));
    batch.inputs = augment_batch(batch.inputs, options_.augmentation, seed);
  }
  return true;
}

}  // namespace tessera::data
