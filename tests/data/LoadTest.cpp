#include "tessera/data/load.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <filesystem>

#include "tessera/core/error.h"
#include "tessera/data/synthetic.h"
#include "test_files.h"

namespace tessera::data {
namespace {

using testing::Bytes;
using testing::counting_pixels;
using testing::expect_error;
using testing::idx_images;
using testing::idx_labels;
using testing::TempDir;
using testing::write_gz;
using testing::write_raw;

constexpr const char* kFashionMnist = "/usr/share/datasets/fashion-mnist";

DataConfig synthetic_config() {
  DataConfig config;
  config.name = "synthetic";
  config.synthetic_train = 200;
  config.synthetic_test = 50;
  config.synthetic_shape = {3, 4, 4};
  config.synthetic_seed = 11;
  return config;
}

TEST(LoadTest, ChannelStatisticsAndNormalisation) {
  // Two images, two channels of 1 x 2 pixels: channel 0 = {0, 2, 4, 6}, channel 1 = {1, 1, 1, 1}.
  torch::Tensor images =
      torch::tensor({0.f, 2.f, 1.f, 1.f, 4.f, 6.f, 1.f, 1.f}).reshape({2, 2, 1, 2});
  const Normalization stats = channel_statistics(images);
  EXPECT_TRUE(torch::allclose(stats.mean, torch::tensor({3.f, 1.f})));
  // Population std of channel 0 is sqrt(5); the constant channel keeps its scale (std 1).
  EXPECT_TRUE(torch::allclose(stats.std, torch::tensor({std::sqrt(5.f), 1.f})));
  normalize_in_place(images, stats);
  EXPECT_TRUE(torch::allclose(images[1][0], (torch::tensor({{4.f, 6.f}}) - 3.f) / std::sqrt(5.f)));
  EXPECT_TRUE(torch::allclose(images.select(1, 1), torch::zeros({2, 1, 2})));
  // Vectors are one channel.
  torch::Tensor vectors = torch::tensor({1.f, 3.f, 5.f, 7.f}).reshape({2, 2});
  const Normalization flat = channel_statistics(vectors);
  EXPECT_EQ(flat.mean.numel(), 1);
  EXPECT_FLOAT_EQ(flat.mean.item<float>(), 4.f);
  normalize_in_place(vectors, flat);
  EXPECT_NEAR(vectors.std(false).item<float>(), 1.f, 1e-6);
}

TEST(LoadTest, SyntheticIsNormalisedWithTrainingStatistics) {
  const DataConfig config = synthetic_config();
  const TrainTest data = load_dataset(config);
  SyntheticConfig raw_config;
  raw_config.train_size = 200;
  raw_config.test_size = 50;
  raw_config.sample_shape = {3, 4, 4};
  raw_config.seed = 11;
  const TrainTest raw = make_synthetic(raw_config);
  const Normalization stats = channel_statistics(raw.train.inputs);
  const torch::Tensor mean = stats.mean.view({1, 3, 1, 1}), std = stats.std.view({1, 3, 1, 1});
  EXPECT_TRUE(torch::allclose(data.train.inputs, (raw.train.inputs - mean) / std, 1e-5, 1e-5));
  EXPECT_TRUE(torch::allclose(data.test.inputs, (raw.test.inputs - mean) / std, 1e-5, 1e-5));
  for (int64_t c = 0; c < 3; ++c) {
    EXPECT_NEAR(data.train.inputs.select(1, c).mean().item<float>(), 0.f, 1e-5);
    EXPECT_NEAR(data.train.inputs.select(1, c).std(false).item<float>(), 1.f, 1e-4);
  }
  EXPECT_TRUE(torch::equal(data.test.labels, raw.test.labels));
}

TEST(LoadTest, LimitsKeepTheFirstSamples) {
  DataConfig config = synthetic_config();
  const TrainTest all = load_dataset(config);
  config.limit_train = 30;
  config.limit_test = 1000;  // more than there are: all kept
  const TrainTest limited = load_dataset(config);
  EXPECT_EQ(limited.train.size(), 30);
  EXPECT_EQ(limited.test.size(), 50);
  EXPECT_TRUE(torch::equal(limited.train.labels, all.train.labels.slice(0, 0, 30)));
  // Statistics come from the kept training samples.
  EXPECT_NEAR(limited.train.inputs.mean().item<float>(), 0.f, 1e-5);
  config.limit_train = -1;
  expect_error<UsageError>([&] { load_dataset(config); }, {"limit_train", "-1"});
}

TEST(LoadTest, UnknownNameListsTheNames) {
  DataConfig config;
  config.name = "imagenet";
  expect_error<UsageError>(
      [&] { load_dataset(config); },
      {"imagenet", "cifar10", "cifar100", "emnist", "fashion-mnist", "mnist", "synthetic"});
}

TEST(LoadTest, BadOptionsAreUsageErrors) {
  TempDir dir;
  DataConfig config;
  config.name = "mnist";
  expect_error<UsageError>([&] { load_dataset(config); }, {"mnist", "needs a directory"});
  config.name = "cifar100";
  config.dir = dir.str();
  config.cifar100_labels = "medium";
  expect_error<UsageError>([&] { load_dataset(config); }, {"medium", "fine", "coarse"});
  config.name = "emnist";
  config.emnist_split = "vowels";
  expect_error<UsageError>([&] { load_dataset(config); }, {"vowels", "balanced"});
  config = synthetic_config();
  config.synthetic_classes = 1;
  EXPECT_THROW(load_dataset(config), UsageError);
}

TEST(LoadTest, MissingDirectoryIsAnError) {
  DataConfig config;
  config.name = "cifar10";
  config.dir = "/nonexistent/tessera-data";
  expect_error<Error>([&] { load_dataset(config); }, {"/nonexistent/tessera-data", "not exist"});
}

TEST(LoadTest, LoadsMnistFromADirectory) {
  TempDir dir;
  write_gz(dir.file("train-images-idx3-ubyte.gz"), idx_images(5, 2, 2, counting_pixels(20)));
  write_gz(dir.file("train-labels-idx1-ubyte.gz"), idx_labels({0, 1, 2, 3, 4}));
  write_gz(dir.file("t10k-images-idx3-ubyte.gz"), idx_images(2, 2, 2, counting_pixels(8)));
  write_gz(dir.file("t10k-labels-idx1-ubyte.gz"), idx_labels({5, 6}));
  DataConfig config;
  config.name = "mnist";
  config.dir = dir.str();
  const TrainTest data = load_dataset(config);
  EXPECT_EQ(data.train.size(), 5);
  EXPECT_EQ(data.test.size(), 2);
  EXPECT_NEAR(data.train.inputs.mean().item<float>(), 0.f, 1e-5);
  EXPECT_NEAR(data.train.inputs.std(false).item<float>(), 1.f, 1e-5);
  // Test pixels 0..7 with the training statistics of pixels 0..19 (mean 9.5, std sqrt(33.25)).
  EXPECT_NEAR(data.test.inputs[0][0][0][0].item<float>(), -9.5f / std::sqrt(33.25f), 1e-5);
}

TEST(LoadTest, FashionMnistFromTheDebianPackage) {
  DataConfig config;  // the defaults: fashion-mnist from the package's directory
  if (!std::filesystem::is_directory(kFashionMnist)) {
    expect_error<Error>([&] { load_dataset(config); }, {"apt-get install dataset-fashion-mnist"});
    GTEST_SKIP() << kFashionMnist << " is absent (Debian package dataset-fashion-mnist)";
  }
  const auto start = std::chrono::steady_clock::now();
  const std::clock_t cpu_start = std::clock();
  const TrainTest data = load_dataset(config);
  const double cpu = static_cast<double>(std::clock() - cpu_start) / CLOCKS_PER_SEC;
  const double wall =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  // Wall time grows when other jobs share the cores, process CPU time when libtorch uses several
  // threads: either one under 2 s shows the loader is fast.
  EXPECT_LT(std::min(wall, cpu), 2.0) << "wall " << wall << " s, cpu " << cpu << " s";
  EXPECT_EQ(data.train.size(), 60000);
  EXPECT_EQ(data.test.size(), 10000);
  EXPECT_EQ(data.train.num_classes, 10);
  EXPECT_EQ(data.train.sample_shape(), (Shape{1, 28, 28}));
  EXPECT_EQ(data.train.name, "fashion-mnist/train");
  EXPECT_NEAR(data.train.inputs.mean().item<float>(), 0.f, 1e-3);
  EXPECT_NEAR(data.train.inputs.std().item<float>(), 1.f, 1e-3);
  EXPECT_NEAR(data.test.inputs.mean().item<float>(), 0.f, 0.05);
  // Fashion-MNIST is balanced: 6000 / 1000 per class.
  EXPECT_TRUE(
      torch::equal(torch::bincount(data.train.labels), torch::full({10}, 6000, torch::kLong)));
  EXPECT_TRUE(
      torch::equal(torch::bincount(data.test.labels), torch::full({10}, 1000, torch::kLong)));
}

}  // namespace
}  // namespace tessera::data
