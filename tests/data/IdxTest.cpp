#include "tessera/data/idx.h"

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>

#include "tessera/core/error.h"
#include "tessera/metrics/measurement_scope.h"
#include "tessera/metrics/memory_tracker.h"
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

// The float images the reader must produce from uint8 pixels [N, H, W].
torch::Tensor expected_images(const Bytes& pixels, int64_t count, int64_t rows, int64_t cols) {
  torch::Tensor bytes = torch::tensor(std::vector<int64_t>(pixels.begin(), pixels.end()));
  return bytes.reshape({count, 1, rows, cols}).to(torch::kFloat) / 255.0;
}

IdxSplit split_in(const TempDir& dir, int64_t classes = 10) {
  IdxSplit split;
  split.images_path = dir.file("images");
  split.labels_path = dir.file("labels");
  split.name = "test/train";
  split.num_classes = classes;
  return split;
}

TEST(IdxTest, ReadsRawFilesExactly) {
  TempDir dir;
  const Bytes pixels = counting_pixels(3 * 2 * 4);
  write_raw(dir.file("images"), idx_images(3, 2, 4, pixels));
  write_raw(dir.file("labels"), idx_labels({0, 9, 5}));
  const Dataset data = read_idx_dataset(split_in(dir));
  EXPECT_EQ(data.name, "test/train");
  EXPECT_EQ(data.num_classes, 10);
  EXPECT_EQ(data.inputs.sizes(), (std::vector<int64_t>{3, 1, 2, 4}));
  EXPECT_EQ(data.inputs.dtype(), torch::kFloat);
  EXPECT_TRUE(torch::equal(data.inputs, expected_images(pixels, 3, 2, 4)));
  EXPECT_EQ(data.labels.dtype(), torch::kLong);
  EXPECT_TRUE(torch::equal(data.labels, torch::tensor({0, 9, 5}, torch::kLong)));
  EXPECT_FLOAT_EQ(data.inputs[2][0][1][3].item<float>(), 23.0f / 255.0f);
}

TEST(IdxTest, ReadsGzipLikeRaw) {
  TempDir dir;
  const Bytes pixels = counting_pixels(300 * 5 * 5);  // values wrap around 255
  write_raw(dir.file("images"), idx_images(300, 5, 5, pixels));
  write_raw(dir.file("labels"), idx_labels(Bytes(300, 7)));
  const Dataset raw = read_idx_dataset(split_in(dir));
  write_gz(dir.file("images"), idx_images(300, 5, 5, pixels));
  write_gz(dir.file("labels"), idx_labels(Bytes(300, 7)));
  const Dataset gz = read_idx_dataset(split_in(dir));
  EXPECT_TRUE(torch::equal(gz.inputs, raw.inputs));
  EXPECT_TRUE(torch::equal(gz.labels, raw.labels));
  EXPECT_TRUE(torch::equal(gz.inputs, expected_images(pixels, 300, 5, 5)));
}

TEST(IdxTest, ReadsMnistDirectoryWithRawAndGzFiles) {
  TempDir dir;
  write_gz(dir.file("train-images-idx3-ubyte.gz"), idx_images(4, 3, 3, counting_pixels(36)));
  write_raw(dir.file("train-labels-idx1-ubyte"), idx_labels({1, 2, 3, 4}));
  write_raw(dir.file("t10k-images-idx3-ubyte"), idx_images(2, 3, 3, counting_pixels(18)));
  write_gz(dir.file("t10k-labels-idx1-ubyte.gz"), idx_labels({8, 9}));
  const TrainTest data = read_mnist_dir(dir.str(), "mnist");
  EXPECT_EQ(data.train.name, "mnist/train");
  EXPECT_EQ(data.test.name, "mnist/test");
  EXPECT_EQ(data.train.size(), 4);
  EXPECT_EQ(data.test.size(), 2);
  EXPECT_TRUE(torch::equal(data.test.labels, torch::tensor({8, 9}, torch::kLong)));
  EXPECT_EQ(data.train.sample_shape(), (Shape{1, 3, 3}));
}

TEST(IdxTest, TruncatedImagesFileIsAnError) {
  TempDir dir;
  Bytes images = idx_images(3, 2, 2, counting_pixels(12));
  images.pop_back();
  write_raw(dir.file("images"), images);
  expect_error<Error>([&] { read_idx_images(dir.file("images")); },
                      {dir.file("images"), "truncated", "27 bytes", "declares 28"});
  // Sizes whose product overflows 64 bits.
  write_raw(dir.file("images"), idx_images(0xffffffffu, 0xffffffffu, 0xffffffffu, {1, 2}));
  expect_error<Error>([&] { read_idx_images(dir.file("images")); },
                      {dir.file("images"), "truncated", "18 bytes"});
  write_raw(dir.file("images"), Bytes{0, 0, 8, 3, 0});  // cut inside the header
  expect_error<Error>([&] { read_idx_images(dir.file("images")); },
                      {dir.file("images"), "truncated", "header"});
}

TEST(IdxTest, TruncatedLabelsFileIsAnError) {
  TempDir dir;
  Bytes labels = idx_labels({1, 2, 3});
  labels.pop_back();
  write_raw(dir.file("labels"), labels);
  expect_error<Error>([&] { read_idx_labels(dir.file("labels")); },
                      {dir.file("labels"), "truncated"});
}

TEST(IdxTest, TruncatedGzipStreamIsAnError) {
  TempDir dir;
  write_gz(dir.file("images.gz"), idx_images(50, 8, 8, counting_pixels(50 * 64)));
  std::ifstream in(dir.file("images.gz"), std::ios::binary);
  Bytes gz((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  gz.resize(gz.size() / 2);
  write_raw(dir.file("images.gz"), gz);
  expect_error<Error>([&] { read_idx_images(dir.file("images.gz")); },
                      {dir.file("images.gz"), "truncated"});
}

// A gzip trailer is only a hint of the content's size: one claiming 4 GiB on a small file makes
// the reader allocate no more than deflate could expand the file to (1032:1), then report the
// mismatch, instead of reserving what the trailer says.
TEST(IdxTest, GzipTrailerClaimingGigabytesIsBoundedByTheFileSize) {
  TempDir dir;
  write_gz(dir.file("images.gz"), idx_images(2, 4, 4, counting_pixels(32)));
  std::ifstream in(dir.file("images.gz"), std::ios::binary);
  Bytes gz((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (size_t i = gz.size() - 4; i < gz.size(); ++i) gz[i] = 0xff;  // ISIZE: 4 GiB - 1
  write_raw(dir.file("images.gz"), gz);
  metrics::install_memory_tracker();
  const int64_t before = metrics::live_tensor_bytes();
  metrics::MeasurementScope scope;
  expect_error<Error>([&] { read_idx_images(dir.file("images.gz")); },
                      {dir.file("images.gz"), "corrupt"});
  EXPECT_LE(scope.peak_tensor_bytes() - before, static_cast<int64_t>(gz.size() * 1032 + 1));
}

TEST(IdxTest, TrailingGarbageIsAnError) {
  TempDir dir;
  Bytes images = idx_images(1, 2, 2, counting_pixels(4));
  images.push_back(42);
  write_raw(dir.file("images"), images);
  expect_error<Error>([&] { read_idx_images(dir.file("images")); },
                      {dir.file("images"), "trailing data"});
}

TEST(IdxTest, WrongMagicIsAnError) {
  TempDir dir;
  write_raw(dir.file("labels"), idx_labels({1, 2}));
  // A labels file given as the images file.
  expect_error<Error>([&] { read_idx_images(dir.file("labels")); },
                      {dir.file("labels"), "wrong magic number 0x00000801", "0x00000803"});
  Bytes images = idx_images(1, 1, 1, {5});
  images[2] = 0x09;  // signed-byte type
  write_raw(dir.file("images"), images);
  expect_error<Error>([&] { read_idx_images(dir.file("images")); },
                      {dir.file("images"), "wrong magic number 0x00000903"});
}

TEST(IdxTest, ZeroSizeIsAnError) {
  TempDir dir;
  write_raw(dir.file("images"), idx_images(2, 0, 3, {}));
  expect_error<Error>([&] { read_idx_images(dir.file("images")); },
                      {dir.file("images"), "zero size"});
}

TEST(IdxTest, CountMismatchIsAnError) {
  TempDir dir;
  write_raw(dir.file("images"), idx_images(3, 2, 2, counting_pixels(12)));
  write_raw(dir.file("labels"), idx_labels({1, 2}));
  expect_error<Error>([&] { read_idx_dataset(split_in(dir)); },
                      {dir.file("images"), dir.file("labels"), "3 images", "2 labels"});
}

TEST(IdxTest, LabelOutOfRangeIsAnError) {
  TempDir dir;
  write_raw(dir.file("images"), idx_images(3, 2, 2, counting_pixels(12)));
  write_raw(dir.file("labels"), idx_labels({1, 10, 2}));
  expect_error<Error>([&] { read_idx_dataset(split_in(dir, 10)); },
                      {dir.file("labels"), "label 10 at index 1", "out of range", "10 classes"});
  // The same file is fine with more classes.
  EXPECT_EQ(read_idx_dataset(split_in(dir, 11)).labels[1].item<int64_t>(), 10);
}

TEST(IdxTest, MissingFileIsAnError) {
  TempDir dir;
  expect_error<Error>([&] { read_idx_images(dir.file("nothing")); },
                      {"missing data file", dir.file("nothing")});
  write_raw(dir.file("train-images-idx3-ubyte"), idx_images(1, 1, 1, {0}));
  expect_error<Error>([&] { read_mnist_dir(dir.str(), "mnist"); },
                      {"missing data file", dir.file("train-labels-idx1-ubyte"),
                       dir.file("train-labels-idx1-ubyte.gz")});
}

// Writes an EMNIST split whose first training image is [[1, 2, 3], [4, 5, 6]] as stored.
void write_emnist(const TempDir& dir, const std::string& split, const Bytes& labels) {
  const auto count = static_cast<uint32_t>(labels.size());
  Bytes pixels = counting_pixels(count * 6);
  for (size_t i = 0; i < 6; ++i) pixels[i] = static_cast<uint8_t>(i + 1);
  const std::string prefix = dir.file("emnist-" + split + "-");
  write_gz(prefix + "train-images-idx3-ubyte.gz", idx_images(count, 2, 3, pixels));
  write_gz(prefix + "train-labels-idx1-ubyte.gz", idx_labels(labels));
  write_raw(prefix + "test-images-idx3-ubyte", idx_images(count, 2, 3, pixels));
  write_raw(prefix + "test-labels-idx1-ubyte", idx_labels(labels));
}

TEST(IdxTest, EmnistImagesAreTransposed) {
  TempDir dir;
  write_emnist(dir, "digits", {3, 9});
  const TrainTest data = read_emnist_dir(dir.str(), "digits");
  EXPECT_EQ(data.train.name, "emnist-digits/train");
  EXPECT_EQ(data.train.num_classes, 10);
  EXPECT_EQ(data.train.sample_shape(), (Shape{1, 3, 2}));
  const torch::Tensor expected = torch::tensor({1, 4, 2, 5, 3, 6}).reshape({3, 2}) / 255.0;
  EXPECT_TRUE(torch::allclose(data.train.inputs[0][0], expected.to(torch::kFloat)));
  EXPECT_TRUE(data.train.inputs.is_contiguous());
  EXPECT_TRUE(torch::equal(data.test.labels, torch::tensor({3, 9}, torch::kLong)));
}

TEST(IdxTest, EmnistLettersShiftLabels) {
  TempDir dir;
  write_emnist(dir, "letters", {1, 26, 13});
  const TrainTest data = read_emnist_dir(dir.str(), "letters");
  EXPECT_EQ(data.train.num_classes, 26);
  EXPECT_TRUE(torch::equal(data.train.labels, torch::tensor({0, 25, 12}, torch::kLong)));
  // Letters has no class 0.
  write_emnist(dir, "letters", {0, 5});
  expect_error<Error>(
      [&] { read_emnist_dir(dir.str(), "letters"); },
      {"emnist-letters-train-labels-idx1-ubyte.gz", "label 0 at index 0", "[1, 27)"});
}

TEST(IdxTest, EmnistSplits) {
  EXPECT_EQ(emnist_num_classes("balanced"), 47);
  EXPECT_EQ(emnist_num_classes("byclass"), 62);
  EXPECT_EQ(emnist_num_classes("bymerge"), 47);
  EXPECT_EQ(emnist_num_classes("digits"), 10);
  EXPECT_EQ(emnist_num_classes("letters"), 26);
  EXPECT_EQ(emnist_num_classes("mnist"), 10);
  expect_error<UsageError>([] { emnist_num_classes("vowels"); },
                           {"vowels", "balanced, byclass, bymerge, digits, letters, mnist"});
}

TEST(IdxTest, EmnistBalancedAcceptsLabelsUpTo46) {
  TempDir dir;
  write_emnist(dir, "balanced", {0, 46});
  EXPECT_EQ(read_emnist_dir(dir.str(), "balanced").train.labels[1].item<int64_t>(), 46);
  write_emnist(dir, "balanced", {47, 0});
  expect_error<Error>([&] { read_emnist_dir(dir.str(), "balanced"); },
                      {"emnist-balanced-train-labels", "label 47"});
}

}  // namespace
}  // namespace tessera::data
