#include "tessera/data/batches.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "tessera/core/error.h"

namespace tessera::data {
namespace {

// N samples whose every input value and label equals the sample's index.
Dataset indexed(int64_t n, Shape shape = {1, 2, 2}) {
  Dataset data;
  data.name = "indexed";
  data.labels = torch::arange(n, torch::kLong);
  data.inputs = data.labels.to(torch::kFloat)
                    .reshape(with_batch(n, Shape(shape.size(), 1)))
                    .expand(with_batch(n, shape))
                    .contiguous();
  data.num_classes = n;
  return data;
}

BatchOptions options_for(int64_t batch_size, int64_t rank = 0, int64_t world = 1) {
  BatchOptions options;
  options.batch_size = batch_size;
  options.rank = rank;
  options.world_size = world;
  options.seed = 42;
  return options;
}

// The label batches of one epoch.
std::vector<std::vector<int64_t>> epoch_batches(const Dataset& data, const BatchOptions& options,
                                                int64_t epoch = 0) {
  BatchIterator iterator(data, options);
  iterator.start_epoch(epoch);
  std::vector<std::vector<int64_t>> batches;
  Batch batch;
  while (iterator.next(batch)) {
    // Inputs and labels come from the same samples.
    EXPECT_TRUE(torch::equal(batch.inputs.select(1, 0).select(1, 0).select(1, 0),
                             batch.labels.to(torch::kFloat)));
    batches.emplace_back(batch.labels.data_ptr<int64_t>(),
                         batch.labels.data_ptr<int64_t>() + batch.labels.numel());
  }
  EXPECT_EQ(static_cast<int64_t>(batches.size()), iterator.batches_per_epoch());
  return batches;
}

std::vector<int64_t> flatten(const std::vector<std::vector<int64_t>>& batches) {
  std::vector<int64_t> all;
  for (const auto& batch : batches) all.insert(all.end(), batch.begin(), batch.end());
  return all;
}

std::vector<int64_t> sorted(std::vector<int64_t> values) {
  std::sort(values.begin(), values.end());
  return values;
}

std::vector<int64_t> range(int64_t n) {
  std::vector<int64_t> values(n);
  for (int64_t i = 0; i < n; ++i) values[i] = i;
  return values;
}

TEST(BatchesTest, SingleWorkerSeesEverySampleOnceAndKeepsThePartialBatch) {
  const Dataset data = indexed(10);
  const auto batches = epoch_batches(data, options_for(3));
  ASSERT_EQ(batches.size(), 4u);
  EXPECT_EQ(batches[3].size(), 1u);
  EXPECT_EQ(sorted(flatten(batches)), range(10));
  EXPECT_NE(flatten(batches), range(10));  // shuffled
  BatchIterator iterator(data, options_for(3));
  EXPECT_EQ(iterator.shard_size(), 10);
  EXPECT_EQ(iterator.batches_per_epoch(), 4);
}

TEST(BatchesTest, NoShuffleKeepsTheOrder) {
  BatchOptions options = options_for(4);
  options.shuffle = false;
  EXPECT_EQ(flatten(epoch_batches(indexed(10), options)), range(10));
}

TEST(BatchesTest, DeterministicBySeedAndEpoch) {
  const Dataset data = indexed(50);
  const auto first = flatten(epoch_batches(data, options_for(8), 0));
  EXPECT_EQ(first, flatten(epoch_batches(data, options_for(8), 0)));
  EXPECT_NE(first, flatten(epoch_batches(data, options_for(8), 1)));
  BatchOptions other_seed = options_for(8);
  other_seed.seed = 43;
  EXPECT_NE(first, flatten(epoch_batches(data, other_seed, 0)));
  // The global seed plays no part, and restarting an epoch replays it.
  torch::manual_seed(7);
  BatchIterator iterator(data, options_for(50));
  Batch batch;
  iterator.start_epoch(3);
  ASSERT_TRUE(iterator.next(batch));
  const torch::Tensor epoch3 = batch.labels.clone();
  EXPECT_FALSE(iterator.next(batch));
  iterator.start_epoch(3);
  ASSERT_TRUE(iterator.next(batch));
  EXPECT_TRUE(torch::equal(batch.labels, epoch3));
}

TEST(BatchesTest, ShardsPartitionThePaddedPermutation) {
  // N = 10 over W = 3 ranks: padded to 12 by wrapping around; each rank gets 4 samples.
  const Dataset data = indexed(10);
  const int64_t world = 3;
  std::vector<int64_t> padded(12, -1);
  for (int64_t rank = 0; rank < world; ++rank) {
    const auto batches = epoch_batches(data, options_for(3, rank, world));
    ASSERT_EQ(batches.size(), 2u) << "rank " << rank;  // 3 + 1: equal counts on every rank
    const std::vector<int64_t> shard = flatten(batches);
    ASSERT_EQ(shard.size(), 4u);
    for (size_t i = 0; i < shard.size(); ++i) padded[rank + world * i] = shard[i];
  }
  const std::vector<int64_t> permutation(padded.begin(), padded.begin() + 10);
  EXPECT_EQ(sorted(permutation), range(10));
  EXPECT_EQ(padded[10], padded[0]);
  EXPECT_EQ(padded[11], padded[1]);
  // The same permutation as a single worker's.
  EXPECT_EQ(permutation, flatten(epoch_batches(data, options_for(10))));
}

TEST(BatchesTest, RankBatchesUnionEqualsTheSingleWorkerBatch) {
  const Dataset data = indexed(24);
  const int64_t world = 3, batch = 2;
  const auto single = epoch_batches(data, options_for(batch * world), 5);
  ASSERT_EQ(single.size(), 4u);
  std::vector<std::vector<std::vector<int64_t>>> ranks;
  for (int64_t rank = 0; rank < world; ++rank) {
    ranks.push_back(epoch_batches(data, options_for(batch, rank, world), 5));
    ASSERT_EQ(ranks.back().size(), single.size());
  }
  for (size_t i = 0; i < single.size(); ++i) {
    std::vector<int64_t> joined;
    for (const auto& rank_batches : ranks) {
      joined.insert(joined.end(), rank_batches[i].begin(), rank_batches[i].end());
    }
    EXPECT_EQ(sorted(joined), sorted(single[i])) << "batch " << i;
  }
}

TEST(BatchesTest, DropLastTruncatesShardsAndPartialBatches) {
  const Dataset data = indexed(10);
  BatchOptions options = options_for(2, 1, 3);
  options.drop_last = true;
  BatchIterator iterator(data, options);
  EXPECT_EQ(iterator.shard_size(), 3);         // 9 of 10 samples used
  EXPECT_EQ(iterator.batches_per_epoch(), 1);  // the partial batch of 1 is dropped
  const auto batches = epoch_batches(data, options);
  ASSERT_EQ(batches.size(), 1u);
  EXPECT_EQ(batches[0].size(), 2u);
  // Single worker: 10 = 4 + 4 + 2, the 2 dropped.
  BatchOptions single = options_for(4);
  single.drop_last = true;
  const auto full = epoch_batches(data, single);
  ASSERT_EQ(full.size(), 2u);
  const std::vector<int64_t> used = flatten(full);
  EXPECT_EQ(std::set<int64_t>(used.begin(), used.end()).size(), 8u);
  // Fewer samples than ranks: nothing to do with drop_last.
  BatchOptions tiny = options_for(1, 0, 3);
  tiny.drop_last = true;
  EXPECT_EQ(BatchIterator(indexed(2), tiny).batches_per_epoch(), 0);
}

TEST(BatchesTest, FewerSamplesThanRanksWrapAround) {
  const Dataset data = indexed(1);
  for (int64_t rank = 0; rank < 4; ++rank) {
    EXPECT_EQ(flatten(epoch_batches(data, options_for(8, rank, 4))), std::vector<int64_t>{0});
  }
}

TEST(BatchesTest, InvalidOptionsAreUsageErrors) {
  const Dataset data = indexed(10);
  EXPECT_THROW(BatchIterator(data, options_for(0)), UsageError);
  EXPECT_THROW(BatchIterator(data, options_for(4, 3, 3)), UsageError);
  EXPECT_THROW(BatchIterator(data, options_for(4, -1, 3)), UsageError);
  EXPECT_THROW(BatchIterator(data, options_for(4, 0, 0)), UsageError);
  EXPECT_THROW(BatchIterator(Dataset{}, options_for(4)), UsageError);
  BatchOptions flip_vectors = options_for(4);
  flip_vectors.augmentation.horizontal_flip = true;
  EXPECT_THROW(BatchIterator(indexed(10, {6}), flip_vectors), UsageError);
  BatchOptions negative_padding = options_for(4);
  negative_padding.augmentation.crop_padding = -1;
  EXPECT_THROW(BatchIterator(data, negative_padding), UsageError);
}

// Images [B, C, H, W] whose pixels are all distinct and non-zero.
torch::Tensor distinct_images(int64_t batch, int64_t channels, int64_t height, int64_t width) {
  return torch::arange(1, batch * channels * height * width + 1, torch::kFloat)
      .reshape({batch, channels, height, width});
}

// `image` [C, H, W] moved by (dy, dx) with zeros shifted in.
torch::Tensor shifted(const torch::Tensor& image, int64_t dy, int64_t dx) {
  const int64_t height = image.size(1), width = image.size(2);
  torch::Tensor out = torch::zeros_like(image);
  for (int64_t y = 0; y < height; ++y) {
    for (int64_t x = 0; x < width; ++x) {
      const int64_t sy = y - dy, sx = x - dx;
      if (sy >= 0 && sy < height && sx >= 0 && sx < width) {
        out.select(1, y).select(1, x).copy_(image.select(1, sy).select(1, sx));
      }
    }
  }
  return out;
}

TEST(BatchesTest, FlipMirrorsAboutHalfTheImages) {
  const torch::Tensor images = distinct_images(64, 2, 3, 5);
  Augmentation flip;
  flip.horizontal_flip = true;
  const torch::Tensor out = augment_batch(images, flip, 9);
  EXPECT_EQ(out.sizes(), images.sizes());
  int flipped = 0;
  for (int64_t i = 0; i < 64; ++i) {
    const bool same = torch::equal(out[i], images[i]);
    const bool mirrored = torch::equal(out[i], images[i].flip({2}));
    EXPECT_TRUE(same != mirrored) << "sample " << i;
    flipped += mirrored ? 1 : 0;
  }
  EXPECT_GT(flipped, 16);
  EXPECT_LT(flipped, 48);
  EXPECT_TRUE(torch::equal(out, augment_batch(images, flip, 9)));
  EXPECT_FALSE(torch::equal(out, augment_batch(images, flip, 10)));
}

TEST(BatchesTest, CropShiftsContentWithZeroPadding) {
  const torch::Tensor images = distinct_images(32, 3, 6, 6);
  Augmentation crop;
  crop.crop_padding = 2;
  const torch::Tensor out = augment_batch(images, crop, 1);
  EXPECT_EQ(out.sizes(), images.sizes());
  std::set<std::pair<int64_t, int64_t>> offsets;
  for (int64_t i = 0; i < 32; ++i) {
    int matches = 0;
    for (int64_t dy = -2; dy <= 2; ++dy) {
      for (int64_t dx = -2; dx <= 2; ++dx) {
        if (torch::equal(out[i], shifted(images[i], dy, dx))) {
          offsets.insert({dy, dx});
          ++matches;
        }
      }
    }
    EXPECT_EQ(matches, 1) << "sample " << i << " is no shifted copy of its input";
  }
  EXPECT_GE(offsets.size(), 8u);  // 25 possible offsets, 32 draws
  EXPECT_TRUE(torch::equal(out, augment_batch(images, crop, 1)));
  EXPECT_FALSE(torch::equal(out, augment_batch(images, crop, 2)));
}

TEST(BatchesTest, CropAndFlipTogetherKeepShapeAndDeterminism) {
  const torch::Tensor images = distinct_images(16, 3, 8, 8);
  Augmentation both;
  both.crop_padding = 4;
  both.horizontal_flip = true;
  const torch::Tensor out = augment_batch(images, both, 77);
  EXPECT_EQ(out.sizes(), images.sizes());
  EXPECT_TRUE(torch::equal(out, augment_batch(images, both, 77)));
  EXPECT_TRUE(torch::equal(augment_batch(images, Augmentation{}, 77), images));
  EXPECT_THROW(augment_batch(images.flatten(1), both, 1), UsageError);
}

TEST(BatchesTest, IteratorAugmentsDeterministicallyPerEpoch) {
  Dataset data = indexed(40, {1, 4, 4});
  data.inputs = distinct_images(40, 1, 4, 4);
  BatchOptions options = options_for(40);
  options.shuffle = false;
  options.augmentation.horizontal_flip = true;
  BatchIterator a(data, options), b(data, options);
  Batch first, second;
  ASSERT_TRUE(a.next(first));
  ASSERT_TRUE(b.next(second));
  EXPECT_TRUE(torch::equal(first.inputs, second.inputs));
  EXPECT_TRUE(torch::equal(first.labels, torch::arange(40)));  // labels untouched
  EXPECT_FALSE(torch::equal(first.inputs, data.inputs));       // some images flipped
  const torch::Tensor mirrored = data.inputs.flip({3});
  for (int64_t i = 0; i < 40; ++i) {
    EXPECT_TRUE(torch::equal(first.inputs[i], data.inputs[i]) ||
                torch::equal(first.inputs[i], mirrored[i]));
  }
  a.start_epoch(1);
  ASSERT_TRUE(a.next(first));
  EXPECT_FALSE(torch::equal(first.inputs, second.inputs));  // new flips in a new epoch
}

}  // namespace
}  // namespace tessera::data
