// Mini-batches over an in-memory Dataset: seeded shuffling, drop-last, sharding by
// (rank, world size) and whole-batch augmentation. One gather per batch, no per-sample copies.
#pragma once

#include <cstdint>

#include <torch/torch.h>

#include "tessera/data/dataset.h"

namespace tessera::data {

struct Augmentation {
  int64_t crop_padding = 0;      // > 0: random crop of the original size after zero padding
  bool horizontal_flip = false;  // flip each image with probability 1/2
  bool enabled() const { return crop_padding > 0 || horizontal_flip; }
};

struct BatchOptions {
  int64_t batch_size = 128;
  bool shuffle = true;
  bool drop_last = false;
  uint64_t seed = 0;  // the permutation of epoch e is drawn from (seed, e)
  int64_t rank = 0;
  int64_t world_size = 1;
  Augmentation augmentation;
};

// Every sample once, in order, `batch_size` at a time: the batches of an evaluation.
BatchOptions in_order(int64_t batch_size);

struct Batch {
  torch::Tensor inputs;  // [B, ...]; token windows: int64 [B, T]
  torch::Tensor labels;  // [B]; token windows: int64 [B, T], the next token at every position
};

// Sharding follows torch's DistributedSampler: the epoch's permutation (identical on every rank)
// is padded by wrapping around to a multiple of world_size (or truncated with drop_last), and rank
// r takes positions r, r + W, r + 2W, ... So every rank gets the same number of samples and of
// batches (no rank waits for another at the end of an epoch), and the union of the ranks' i-th
// batches equals the i-th batch of a single worker with batch_size * W when nothing is padded.
class BatchIterator {
 public:
  // Keeps a reference to `dataset`, which must outlive the iterator. Starts epoch 0. Throws
  // UsageError for an empty data set, batch_size < 1, world_size < 1, rank outside
  // [0, world_size), or augmentation of inputs that are not images [N, C, H, W].
  BatchIterator(const Dataset& dataset, BatchOptions options);

  // Starts epoch `epoch` (reshuffles deterministically).
  void start_epoch(int64_t epoch);
  // Number of batches per epoch on this rank (the same on every rank).
  int64_t batches_per_epoch() const;
  // Samples this rank sees per epoch.
  int64_t shard_size() const;
  // Fills `batch` with the next batch of the current epoch; false at the end of the epoch.
  bool next(Batch& batch);
  // Passes over the next `batches` batches of the epoch without gathering them: a run resumed
  // mid-epoch continues with the batches (and augmentation) it would have had.
  void skip(int64_t batches);

 private:
  const Dataset& dataset_;
  BatchOptions options_;
  torch::Tensor shard_indices_;   // int64, this rank's sample indices for the current epoch
  torch::Tensor window_offsets_;  // token windows: where each window of the epoch starts
  int64_t position_ = 0;
  int64_t epoch_ = 0;
};

// Applies the augmentation to a whole batch of images [B, C, H, W], using `generator`-free
// seeded randomness derived from `seed` (deterministic for the same seed). The iterator seeds it
// from (seed, epoch, rank, batch index), so ranks augment independently. It augments every batch
// when options.augmentation is enabled: leave it off for evaluation iterators.
torch::Tensor augment_batch(const torch::Tensor& images, const Augmentation& augmentation,
                            uint64_t seed);

}  // namespace tessera::data
