#include "tessera/data/synthetic.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "tessera/core/error.h"
#include "tessera/core/seeding.h"
#include "tessera/data/large_tensor.h"

namespace tessera::data {

namespace {

// Noise standard deviation relative to sqrt(sample size): the distance between two prototypes
// grows like sqrt(D), so scaling the noise the same way keeps the difficulty independent of the
// sample shape. Tuned so that a small MLP reaches ~99% in a few epochs.
constexpr double kNoisePerSqrtDim = 0.1;
// Each sample's prototype is scaled by a factor in [kMinScale, kMaxScale]: a spread of
// signal-to-noise ratios, so the task is not separable by one threshold.
constexpr double kMinScale = 0.5;
constexpr double kMaxScale = 1.5;

// Rows per step when adding the prototypes (a bounded temporary).
constexpr int64_t kChunkRows = 1024;

// Streams of the seed: prototypes, training samples and test samples are drawn independently.
enum Stream : uint64_t { kPrototypes = 1, kTrain = 2, kTest = 3 };

void validate(const SyntheticConfig& config) {
  require(config.train_size >= 1,
          "synthetic data: train size must be >= 1, got " + std::to_string(config.train_size));
  require(config.test_size >= 1,
          "synthetic data: test size must be >= 1, got " + std::to_string(config.test_size));
  require(config.num_classes >= 2,
          "synthetic data: needs >= 2 classes, got " + std::to_string(config.num_classes));
  bool positive = !config.sample_shape.empty();
  for (int64_t size : config.sample_shape) positive = positive && size >= 1;
  require(positive, "synthetic data: sample shape " + to_string(config.sample_shape) +
                        " must be non-empty with positive sizes");
}

Dataset draw_split(const SyntheticConfig& config, const torch::Tensor& prototypes, Stream stream,
                   int64_t count, const std::string& name) {
  at::Generator generator = make_generator(mix_seed(config.seed, stream));
  // Balanced labels in random order.
  const torch::Tensor labels = torch::arange(count, torch::kLong)
                                   .remainder(config.num_classes)
                                   .index_select(0, torch::randperm(count, generator));
  const torch::Tensor scale =
      torch::rand({count, 1}, generator).mul_(kMaxScale - kMinScale).add_(kMinScale);
  const int64_t dim = prototypes.size(1);
  // In place, in row chunks: a large set (e.g. 50000 x 3072) would otherwise allocate several
  // temporaries of its full size, and first-touching that memory dominates the cost.
  torch::Tensor samples = empty_large({count, dim}, torch::kFloat);
  samples.normal_(0.0, kNoisePerSqrtDim * std::sqrt(static_cast<double>(dim)), generator);
  for (int64_t row = 0; row < count; row += kChunkRows) {
    const int64_t end = std::min(row + kChunkRows, count);
    samples.slice(0, row, end)
        .addcmul_(prototypes.index_select(0, labels.slice(0, row, end)), scale.slice(0, row, end));
  }
  Dataset dataset;
  dataset.name = name;
  dataset.inputs = samples.view(with_batch(count, config.sample_shape));
  dataset.labels = labels;
  dataset.num_classes = config.num_classes;
  return dataset;
}

}  // namespace

TrainTest make_synthetic(const SyntheticConfig& config) {
  validate(config);
  at::Generator generator = make_generator(mix_seed(config.seed, kPrototypes));
  const torch::Tensor prototypes =
      torch::randn({config.num_classes, numel(config.sample_shape)}, generator);
  return {draw_split(config, prototypes, kTrain, config.train_size, "synthetic/train"),
          draw_split(config, prototypes, kTest, config.test_size, "synthetic/test")};
}

}  // namespace tessera::data
