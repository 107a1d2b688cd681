#include "tessera/data/synthetic.h"

#include <gtest/gtest.h>

#include "tessera/core/error.h"
#include "tessera/data/batches.h"
#include "tessera/data/load.h"

namespace tessera::data {
namespace {

SyntheticConfig config_with(Shape shape, uint64_t seed = 0) {
  SyntheticConfig config;
  config.train_size = 300;
  config.test_size = 100;
  config.num_classes = 7;
  config.sample_shape = std::move(shape);
  config.seed = seed;
  return config;
}

TEST(SyntheticTest, ShapesAndBalancedLabels) {
  const TrainTest data = make_synthetic(config_with({1, 28, 28}));
  EXPECT_EQ(data.train.inputs.sizes(), (std::vector<int64_t>{300, 1, 28, 28}));
  EXPECT_EQ(data.test.inputs.sizes(), (std::vector<int64_t>{100, 1, 28, 28}));
  EXPECT_EQ(data.train.inputs.dtype(), torch::kFloat);
  EXPECT_EQ(data.train.labels.dtype(), torch::kLong);
  EXPECT_EQ(data.train.num_classes, 7);
  EXPECT_EQ(data.train.name, "synthetic/train");
  // 300 = 6 * 43 + 2 * 42... every class has 42 or 43 samples.
  const torch::Tensor counts = torch::bincount(data.train.labels, {}, 7);
  EXPECT_GE(counts.min().item<int64_t>(), 42);
  EXPECT_LE(counts.max().item<int64_t>(), 43);
  // Shuffled, not in class order.
  EXPECT_FALSE(torch::equal(data.train.labels.slice(0, 0, 7), torch::arange(7)));

  const TrainTest vectors = make_synthetic(config_with({16}));
  EXPECT_EQ(vectors.train.inputs.sizes(), (std::vector<int64_t>{300, 16}));
}

TEST(SyntheticTest, DeterministicBySeed) {
  const TrainTest a = make_synthetic(config_with({3, 4, 4}, 5));
  const TrainTest b = make_synthetic(config_with({3, 4, 4}, 5));
  EXPECT_TRUE(torch::equal(a.train.inputs, b.train.inputs));
  EXPECT_TRUE(torch::equal(a.train.labels, b.train.labels));
  EXPECT_TRUE(torch::equal(a.test.inputs, b.test.inputs));
  const TrainTest c = make_synthetic(config_with({3, 4, 4}, 6));
  EXPECT_FALSE(torch::equal(a.train.inputs, c.train.inputs));
  // The global seed plays no part.
  torch::manual_seed(123);
  const TrainTest d = make_synthetic(config_with({3, 4, 4}, 5));
  EXPECT_TRUE(torch::equal(a.train.inputs, d.train.inputs));
}

TEST(SyntheticTest, TestSplitIsIndependentOfTrainSize) {
  SyntheticConfig small = config_with({16});
  SyntheticConfig large = small;
  large.train_size = 1000;
  const TrainTest a = make_synthetic(small);
  const TrainTest b = make_synthetic(large);
  EXPECT_TRUE(torch::equal(a.test.inputs, b.test.inputs));
  EXPECT_TRUE(torch::equal(a.test.labels, b.test.labels));
}

// Per-class means of `data` [classes, D].
torch::Tensor class_means(const Dataset& data) {
  const torch::Tensor flat = data.inputs.reshape({data.size(), -1});
  const torch::Tensor one_hot = torch::one_hot(data.labels, data.num_classes).to(torch::kFloat);
  return one_hot.t().matmul(flat) / one_hot.sum(0).unsqueeze(1);
}

TEST(SyntheticTest, TrainAndTestShareTheDistributionNotTheSamples) {
  SyntheticConfig config = config_with({64});
  config.train_size = 4000;
  config.test_size = 4000;
  const TrainTest data = make_synthetic(config);
  EXPECT_FALSE(torch::equal(data.train.inputs, data.test.inputs));
  const torch::Tensor train_means = class_means(data.train);
  const torch::Tensor test_means = class_means(data.test);
  // Same prototypes: class means agree up to sampling noise (noise std 0.8 over ~570 samples).
  EXPECT_LT((train_means - test_means).abs().max().item<float>(), 0.25f);
  // ...and the classes really differ.
  EXPECT_GT((train_means[0] - train_means[1]).abs().max().item<float>(), 0.5f);
}

double accuracy(torch::nn::Sequential& model, const Dataset& data) {
  torch::NoGradGuard no_grad;
  const torch::Tensor predictions = model->forward(data.inputs.flatten(1)).argmax(1);
  return predictions.eq(data.labels).to(torch::kDouble).mean().item<double>();
}

// Trains a small MLP on the normalised synthetic set; returns (accuracy before, after).
std::pair<double, double> train_mlp(const Shape& shape, int epochs) {
  DataConfig config;
  config.name = "synthetic";
  config.synthetic_shape = shape;
  config.synthetic_seed = 3;
  const TrainTest data = load_dataset(config);
  torch::manual_seed(0);
  torch::nn::Sequential model(torch::nn::Linear(numel(shape), 64), torch::nn::ReLU(),
                              torch::nn::Linear(64, data.train.num_classes));
  const double before = accuracy(model, data.test);
  torch::optim::Adam optimizer(model->parameters(), torch::optim::AdamOptions(1e-3));
  BatchOptions options;
  options.batch_size = 64;
  options.seed = 1;
  BatchIterator batches(data.train, options);
  Batch batch;
  for (int epoch = 0; epoch < epochs; ++epoch) {
    batches.start_epoch(epoch);
    while (batches.next(batch)) {
      optimizer.zero_grad();
      torch::nn::functional::cross_entropy(model->forward(batch.inputs.flatten(1)), batch.labels)
          .backward();
      optimizer.step();
    }
  }
  return {before, accuracy(model, data.test)};
}

TEST(SyntheticTest, ImagesAreLearnableByASmallMlp) {
  const auto [before, after] = train_mlp({1, 28, 28}, 3);
  EXPECT_LT(before, 0.3);
  EXPECT_GE(after, 0.95);
}

TEST(SyntheticTest, VectorsAreLearnableByASmallMlp) {
  const auto [before, after] = train_mlp({16}, 5);
  EXPECT_LT(before, 0.3);
  EXPECT_GE(after, 0.95);
}

TEST(SyntheticTest, BadConfigIsAUsageError) {
  SyntheticConfig config = config_with({16});
  config.train_size = 0;
  EXPECT_THROW(make_synthetic(config), UsageError);
  config = config_with({16});
  config.test_size = -1;
  EXPECT_THROW(make_synthetic(config), UsageError);
  config = config_with({16});
  config.num_classes = 1;
  EXPECT_THROW(make_synthetic(config), UsageError);
  EXPECT_THROW(make_synthetic(config_with({})), UsageError);
  EXPECT_THROW(make_synthetic(config_with({3, 0, 2})), UsageError);
}

}  // namespace
}  // namespace tessera::data
