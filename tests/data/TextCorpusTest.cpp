#include "tessera/data/text_corpus.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "../text_support.h"
#include "tessera/core/error.h"
#include "tessera/data/batches.h"
#include "tessera/data/load.h"
#include "test_files.h"

namespace tessera::data {
namespace {

using tessera::testing::sample_records;
using tessera::testing::write_fortune_file;
using testing::expect_error;
using testing::TempDir;

TextConfig text_config(const TempDir& dir, const std::string& corpus, int64_t seq_len) {
  TextConfig config;
  config.path = corpus;
  config.seq_len = seq_len;
  config.cache_dir = dir.file("cache");
  return config;
}

std::string as_text(const torch::Tensor& tokens) {
  const torch::Tensor bytes = tokens.contiguous();
  return std::string(static_cast<const char*>(bytes.data_ptr()),
                     static_cast<size_t>(bytes.numel()));
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

TEST(TextCorpusTest, SplitsFortuneRecordsIntoDocuments) {
  const auto documents = split_documents("first\nline\n%\n\n%\nsecond\n%\nthird", "f");
  ASSERT_EQ(documents.size(), 3u);
  EXPECT_EQ(documents[0], "first\nline\n");
  EXPECT_EQ(documents[1], "second\n");
  EXPECT_EQ(documents[2], "third");
  // A file without separators is one document; a '%' inside a line is text.
  EXPECT_EQ(split_documents("100% sure\n", "f").size(), 1u);
}

TEST(TextCorpusTest, SkipsIndexFilesAndLinksInPathOrder) {
  TempDir dir;
  write_fortune_file(dir.file("b"), {"bee"});
  write_fortune_file(dir.file("a"), {"ay"});
  write_bytes(dir.file("a.dat"), std::string("\0\0\0\2", 4));
  std::filesystem::create_symlink(dir.file("a"), dir.file("a.u8"));
  std::filesystem::create_symlink(dir.file("b"), dir.file("link"));
  EXPECT_EQ(text_files(dir.str()), (std::vector<std::string>{dir.file("a"), dir.file("b")}));
}

TEST(TextCorpusTest, SplitIsDeterministicAndWindowsNeverCrossIt) {
  TempDir dir;
  std::filesystem::create_directories(dir.file("corpus"));
  const auto records = sample_records(400);
  write_fortune_file(dir.file("corpus/one"), {records.begin(), records.begin() + 200});
  write_fortune_file(dir.file("corpus/two"), {records.begin() + 200, records.end()});
  const TextConfig config = text_config(dir, dir.file("corpus"), 32);
  const TrainTest first = load_text_corpus(config);
  std::filesystem::remove_all(dir.file("cache"));  // built again from the files, not the cache
  const TrainTest second = load_text_corpus(config);
  EXPECT_TRUE(torch::equal(first.train.windows->tokens, second.train.windows->tokens));
  EXPECT_TRUE(torch::equal(first.test.windows->tokens, second.test.windows->tokens));

  // The split is by whole documents, about 5% held out, each document on exactly one side.
  const std::string train = as_text(first.train.windows->tokens);
  const std::string validation = as_text(first.test.windows->tokens);
  int64_t held_out = 0;
  for (int64_t i = 0; i < 400; ++i) {
    const std::string record = records[i] + "\n";
    const bool in_train = train.find(record) != std::string::npos;
    const bool in_validation = validation.find(record) != std::string::npos;
    EXPECT_NE(in_train, in_validation) << "record " << i;
    EXPECT_EQ(in_validation, is_validation_document(i, 0.05, 0)) << "record " << i;
    held_out += in_validation ? 1 : 0;
  }
  EXPECT_GT(held_out, 8);
  EXPECT_LT(held_out, 40);

  // Every training window of several epochs lies inside the training tokens, and its text (a
  // window of seq_len + 1 bytes spans at most two records) never contains a held-out record's
  // words: the windows come from the training documents only.
  const TokenWindows& windows = *first.train.windows;
  EXPECT_EQ(windows.count, (windows.tokens.size(0) - 1) / 32);
  for (int64_t epoch = 0; epoch < 3; ++epoch) {
    const torch::Tensor starts = windows.offsets(7, epoch);
    EXPECT_GE(starts.min().item<int64_t>(), 0);
    EXPECT_LE(starts.max().item<int64_t>(), windows.tokens.size(0) - 33);
  }
  EXPECT_FALSE(torch::equal(windows.offsets(7, 0), windows.offsets(7, 1)));
  EXPECT_TRUE(torch::equal(windows.offsets(7, 1), windows.offsets(7, 1)));
  // Validation windows are fixed, non-overlapping and inside the validation tokens.
  const TokenWindows& held = *first.test.windows;
  const torch::Tensor starts = held.offsets(7, 3);
  EXPECT_TRUE(torch::equal(starts, torch::arange(held.count, torch::kLong) * 32));
  EXPECT_LE(starts.max().item<int64_t>() + 32, held.tokens.size(0) - 1);
}

TEST(TextCorpusTest, BatchesAreWindowsWithNextTokenLabelsShardedLikeImages) {
  TempDir dir;
  write_fortune_file(dir.file("corpus"), sample_records(300));
  const TrainTest data = load_text_corpus(text_config(dir, dir.file("corpus"), 16));
  BatchOptions options;
  options.batch_size = 8;
  options.seed = 3;
  BatchIterator single(data.train, options);
  options.batch_size = 4;
  options.world_size = 2;
  BatchIterator rank0(data.train, options);
  options.rank = 1;
  BatchIterator rank1(data.train, options);
  single.start_epoch(1);
  rank0.start_epoch(1);
  rank1.start_epoch(1);
  Batch whole, a, b;
  ASSERT_TRUE(single.next(whole));
  ASSERT_TRUE(rank0.next(a));
  ASSERT_TRUE(rank1.next(b));
  EXPECT_EQ(whole.inputs.sizes(), torch::IntArrayRef({8, 16}));
  EXPECT_EQ(whole.inputs.scalar_type(), torch::kLong);
  // Labels are the inputs shifted by one byte.
  EXPECT_TRUE(torch::equal(whole.inputs.narrow(1, 1, 15), whole.labels.narrow(1, 0, 15)));
  // Rank r takes samples r, r + 2, ... of the single worker's order (DistributedSampler).
  std::set<std::string> union_rows, single_rows;
  for (int64_t i = 0; i < 4; ++i) {
    union_rows.insert(as_text(a.inputs[i].to(torch::kUInt8)));
    union_rows.insert(as_text(b.inputs[i].to(torch::kUInt8)));
  }
  for (int64_t i = 0; i < 8; ++i) single_rows.insert(as_text(whole.inputs[i].to(torch::kUInt8)));
  EXPECT_EQ(union_rows, single_rows);
}

TEST(TextCorpusTest, LoadDatasetLimitsWindowsAndDoesNotNormalise) {
  TempDir dir;
  write_fortune_file(dir.file("corpus"), sample_records(300));
  DataConfig config = tessera::testing::text_data_config(dir.file("corpus"), 16);
  config.limit_train = 10;
  const TrainTest data = load_dataset(config);
  EXPECT_EQ(data.train.size(), 10);
  EXPECT_EQ(data.train.sample_shape(), (Shape{16}));
  EXPECT_EQ(data.train.num_classes, 256);
  EXPECT_GT(data.test.size(), 0);
}

TEST(TextCorpusTest, BadCorporaAreClearErrors) {
  TempDir dir;
  auto load = [&](const std::string& path, int64_t seq_len = 16) {
    return [&dir, path, seq_len] { load_text_corpus(text_config(dir, path, seq_len)); };
  };
  expect_error<Error>(load(dir.file("missing")), {"missing", "does not exist"});

  std::filesystem::create_directories(dir.file("empty_dir"));
  expect_error<Error>(load(dir.file("empty_dir")), {"empty_dir", "holds no text file"});

  write_bytes(dir.file("empty"), "");
  expect_error<Error>(load(dir.file("empty")), {"empty", "is empty"});
  write_bytes(dir.file("blank"), "\n%\n  \n%\n");
  expect_error<Error>(load(dir.file("blank")), {"is empty"});

  write_bytes(dir.file("nul"), std::string("text\0more", 9));
  expect_error<Error>(load(dir.file("nul")), {"nul", "NUL byte at offset 4"});
  write_bytes(dir.file("latin1"), "caf\xe9 au lait\n");
  expect_error<Error>(load(dir.file("latin1")), {"latin1", "not UTF-8", "0xE9", "offset 3"});
  write_bytes(dir.file("utf8"), "caf\xc3\xa9\n%\n");  // valid: loads as far as its size allows
  expect_error<Error>(load(dir.file("utf8")), {"fewer than one window"});

  write_fortune_file(dir.file("short"), {"a few words", "and a few more"});
  expect_error<Error>(load(dir.file("short"), 64),
                      {"training split", "fewer than one window", "65"});

  // Enough text to train on, but the held-out documents are too short for one window.
  write_fortune_file(dir.file("one_document"), {std::string(5000, 'x')});
  expect_error<Error>(load(dir.file("one_document")), {"validation split", "no whole window"});

  expect_error<UsageError>(load(dir.file("utf8"), 0), {"--seq-len"});
}

// The cache file is read back from disk, so its header is input too: sizes that do not add up to
// the file (negative, past the end, or overflowing when added: found by fuzz_text) are a damaged
// cache, never undefined arithmetic or a read past the mapping.
TEST(TextCorpusTest, DamagedCacheHeadersAreClearErrors) {
  TempDir dir;
  write_fortune_file(dir.file("corpus"), sample_records(40));
  const TextConfig config = text_config(dir, dir.file("corpus"), 8);
  load_text_corpus(config);
  std::string cache_path;
  for (const auto& entry : std::filesystem::directory_iterator(dir.file("cache")))
    cache_path = entry.path().string();
  std::ifstream in(cache_path, std::ios::binary);
  const std::string good((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // The header: 8 magic bytes, then train bytes, validation bytes, train and validation documents.
  auto with_fields = [&](std::vector<std::pair<size_t, int64_t>> fields) {
    std::string bytes = good;
    for (const auto& [field, value] : fields)
      std::memcpy(bytes.data() + 8 + 8 * field, &value, sizeof value);
    return bytes;
  };
  const int64_t huge = int64_t{1} << 62;
  const std::vector<std::string> damaged = {
      with_fields({{0, -1}}), with_fields({{1, huge}}), with_fields({{2, -5}}),
      with_fields({{3, huge}}), good.substr(0, 20), good + "x",
      // The sizes fuzz_text found: their sum is past INT64_MAX (undefined in the old check).
      with_fields({{0, 5931893862272161068}, {1, 5931814697489814098}})};
  for (const std::string& bad : damaged) {
    write_bytes(cache_path, bad);
    expect_error<Error>([&] { load_text_corpus(config); }, {cache_path, "damaged"});
  }
  write_bytes(cache_path, good);
  EXPECT_NO_THROW(load_text_corpus(config));
}

}  // namespace
}  // namespace tessera::data
