#include "tessera/data/cifar.h"

#include <gtest/gtest.h>

#include "tessera/core/error.h"
#include "test_files.h"

namespace tessera::data {
namespace {

using testing::Bytes;
using testing::expect_error;
using testing::TempDir;
using testing::write_gz;
using testing::write_raw;

constexpr size_t kPixels = 3 * 32 * 32;

// One record: the label bytes, then pixels whose value encodes (record tag, position).
Bytes record(const Bytes& labels, uint8_t tag) {
  Bytes bytes = labels;
  for (size_t i = 0; i < kPixels; ++i) bytes.push_back(static_cast<uint8_t>((tag * 7 + i) % 256));
  return bytes;
}

Bytes records(const std::vector<Bytes>& label_sets, uint8_t first_tag) {
  Bytes bytes;
  for (size_t r = 0; r < label_sets.size(); ++r) {
    const Bytes one = record(label_sets[r], static_cast<uint8_t>(first_tag + r));
    bytes.insert(bytes.end(), one.begin(), one.end());
  }
  return bytes;
}

// The decoded image of the record with `tag`.
torch::Tensor expected_image(uint8_t tag) {
  return torch::arange(static_cast<int64_t>(kPixels))
      .add(tag * 7)
      .remainder(256)
      .reshape({3, 32, 32})
      .to(torch::kFloat)
      .div(255.0);
}

void write_cifar10(const TempDir& dir) {
  for (int i = 1; i <= 5; ++i) {
    const auto tag = static_cast<uint8_t>(10 * i);
    write_raw(dir.file("data_batch_" + std::to_string(i) + ".bin"),
              records({{static_cast<uint8_t>(i)}, {static_cast<uint8_t>(9 - i)}}, tag));
  }
  write_gz(dir.file("test_batch.bin.gz"), records({{0}, {9}, {4}}, 100));
}

TEST(CifarTest, ReadsCifar10Exactly) {
  TempDir dir;
  write_cifar10(dir);
  const TrainTest data = read_cifar10_dir(dir.str());
  EXPECT_EQ(data.train.name, "cifar10/train");
  EXPECT_EQ(data.train.num_classes, 10);
  ASSERT_EQ(data.train.size(), 10);
  EXPECT_EQ(data.train.sample_shape(), (Shape{3, 32, 32}));
  // Files in order 1..5, records in file order.
  EXPECT_TRUE(
      torch::equal(data.train.labels, torch::tensor({1, 8, 2, 7, 3, 6, 4, 5, 5, 4}, torch::kLong)));
  EXPECT_TRUE(torch::allclose(data.train.inputs[0], expected_image(10)));
  EXPECT_TRUE(torch::allclose(data.train.inputs[3], expected_image(21)));
  EXPECT_TRUE(torch::allclose(data.train.inputs[9], expected_image(51)));
  // Channel-major layout: byte 1024 + 32 + 1 of a record is channel 1, row 1, column 1.
  EXPECT_FLOAT_EQ(data.train.inputs[0][1][1][1].item<float>(), ((70 + 1057) % 256) / 255.0f);
  ASSERT_EQ(data.test.size(), 3);
  EXPECT_TRUE(torch::equal(data.test.labels, torch::tensor({0, 9, 4}, torch::kLong)));
  EXPECT_TRUE(torch::allclose(data.test.inputs[2], expected_image(102)));
}

TEST(CifarTest, FindsTheArchiveSubfolder) {
  TempDir dir;
  std::filesystem::create_directories(dir.file("cifar-10-batches-bin"));
  for (int i = 1; i <= 5; ++i) {
    write_raw(dir.file("cifar-10-batches-bin/data_batch_" + std::to_string(i) + ".bin"),
              records({{1}}, 0));
  }
  write_raw(dir.file("cifar-10-batches-bin/test_batch.bin"), records({{2}}, 0));
  EXPECT_EQ(read_cifar10_dir(dir.str()).train.size(), 5);
}

TEST(CifarTest, ReadsCifar100FineAndCoarse) {
  TempDir dir;
  write_raw(dir.file("train.bin"), records({{3, 99}, {19, 0}, {0, 42}}, 1));
  write_raw(dir.file("test.bin"), records({{7, 55}}, 9));
  const TrainTest fine = read_cifar100_dir(dir.str(), true);
  EXPECT_EQ(fine.train.num_classes, 100);
  EXPECT_TRUE(torch::equal(fine.train.labels, torch::tensor({99, 0, 42}, torch::kLong)));
  EXPECT_TRUE(torch::allclose(fine.train.inputs[1], expected_image(2)));
  EXPECT_TRUE(torch::allclose(fine.test.inputs[0], expected_image(9)));
  const TrainTest coarse = read_cifar100_dir(dir.str(), false);
  EXPECT_EQ(coarse.train.num_classes, 20);
  EXPECT_TRUE(torch::equal(coarse.train.labels, torch::tensor({3, 19, 0}, torch::kLong)));
  EXPECT_TRUE(torch::equal(coarse.test.labels, torch::tensor({7}, torch::kLong)));
  EXPECT_TRUE(torch::equal(coarse.train.inputs, fine.train.inputs));
}

TEST(CifarTest, TruncatedFileIsAnError) {
  TempDir dir;
  write_cifar10(dir);
  Bytes cut = records({{1}, {2}}, 0);
  cut.resize(cut.size() - 100);
  write_raw(dir.file("data_batch_3.bin"), cut);
  expect_error<Error>([&] { read_cifar10_dir(dir.str()); },
                      {dir.file("data_batch_3.bin"), "truncated", "6046 bytes", "3073-byte"});
  // A CIFAR-10 file read as CIFAR-100 (3073-byte records, 3074 expected) is caught the same way.
  write_raw(dir.file("train.bin"), records({{1}, {2}}, 0));
  write_raw(dir.file("test.bin"), records({{1, 2}}, 0));
  expect_error<Error>([&] { read_cifar100_dir(dir.str(), true); },
                      {dir.file("train.bin"), "truncated", "3074-byte"});
}

TEST(CifarTest, EmptyFileIsAnError) {
  TempDir dir;
  write_raw(dir.file("test.bin"), {});
  expect_error<Error>([&] { read_cifar_files({dir.file("test.bin")}, CifarFormat{}, "x"); },
                      {dir.file("test.bin"), "empty"});
}

TEST(CifarTest, LabelOutOfRangeIsAnError) {
  TempDir dir;
  write_cifar10(dir);
  write_raw(dir.file("data_batch_2.bin"), records({{3}, {10}}, 0));
  expect_error<Error>([&] { read_cifar10_dir(dir.str()); },
                      {dir.file("data_batch_2.bin"), "label 10 of record 1", "10 classes"});
  write_raw(dir.file("train.bin"), records({{20, 5}}, 0));  // coarse label 20 of 20 classes
  write_raw(dir.file("test.bin"), records({{1, 2}}, 0));
  EXPECT_NO_THROW(read_cifar100_dir(dir.str(), true));
  expect_error<Error>([&] { read_cifar100_dir(dir.str(), false); },
                      {dir.file("train.bin"), "label 20", "20 classes"});
}

TEST(CifarTest, MissingFileIsAnError) {
  TempDir dir;
  write_cifar10(dir);
  std::filesystem::remove(dir.file("data_batch_4.bin"));
  expect_error<Error>([&] { read_cifar10_dir(dir.str()); },
                      {"missing data file", dir.file("data_batch_4.bin")});
  expect_error<Error>([&] { read_cifar100_dir(dir.str(), true); },
                      {"missing data file", dir.file("train.bin")});
}

}  // namespace
}  // namespace tessera::data
