#include "tessera/train/checkpoint_archive.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#include "../test_support.h"
#include "tessera/core/error.h"
#include "tessera/models/staged_model.h"
#include "tessera/train/checkpoint.h"

using namespace tessera;

namespace {

using tessera::testing::fresh_dir;

// A real checkpoint of a small MLP, as bytes.
std::string saved_archive(const std::string& path) {
  models::ModelConfig config;
  config.input_shape = {1, 2, 2};
  config.num_classes = 2;
  config.hidden = {3};
  auto model = models::build_model(config);
  train::save_checkpoint(path, *model, nullptr, {{"epoch", 1}});
  std::ifstream in(path, std::ios::binary);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

void put_little_endian(std::string& bytes, size_t offset, uint64_t value, int count) {
  for (int i = 0; i < count; ++i) bytes[offset + i] = static_cast<char>(value >> (8 * i));
}

// Offset of the central directory entry whose name ends with `suffix`.
size_t central_entry(const std::string& bytes, const std::string& suffix) {
  for (size_t at = bytes.find("PK\x01\x02"); at != std::string::npos;
       at = bytes.find("PK\x01\x02", at + 4)) {
    const size_t name_bytes =
        static_cast<uint8_t>(bytes[at + 28]) | (static_cast<uint8_t>(bytes[at + 29]) << 8);
    const std::string name = bytes.substr(at + 46, name_bytes);
    if (name.size() >= suffix.size() &&
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0)
      return at;
  }
  ADD_FAILURE() << "no directory entry ending in " << suffix;
  return 0;
}

// Rejected by check_checkpoint_archive, and so by read_checkpoint_meta, with a message naming the
// file and `problem`.
void expect_rejected(const std::string& path, const std::string& bytes,
                     const std::string& problem) {
  write_file(path, bytes);
  for (auto read : {+[](const std::string& p) { train::check_checkpoint_archive(p); },
                    +[](const std::string& p) { train::read_checkpoint_meta(p); }}) {
    try {
      read(path);
      ADD_FAILURE() << "accepted: " << problem;
    } catch (const Error& e) {
      const std::string message = e.what();
      EXPECT_NE(message.find(path), std::string::npos) << message;
      EXPECT_NE(message.find(problem), std::string::npos) << message;
    }
  }
}

TEST(CheckpointArchiveTest, AcceptsWhatSaveCheckpointWrites) {
  const std::string dir = fresh_dir("checkpoint_archive_good");
  saved_archive(dir + "/model.pt");
  EXPECT_NO_THROW(train::check_checkpoint_archive(dir + "/model.pt"));
  EXPECT_EQ(train::read_checkpoint_meta(dir + "/model.pt").at("epoch"), 1);
}

TEST(CheckpointArchiveTest, RejectsDamagedArchivesBeforeLibtorchReadsThem) {
  const std::string dir = fresh_dir("checkpoint_archive_bad");
  const std::string path = dir + "/bad.pt";
  const std::string good = saved_archive(dir + "/model.pt");
  expect_rejected(path, "not a checkpoint", "shorter than a zip archive");
  expect_rejected(path, std::string(100, 'x'), "not a zip archive");
  expect_rejected(path, good.substr(0, good.size() - 30), "not a zip archive");

  // libtorch always writes zip64 end records; their directory offset (at +48) moved past the end.
  const size_t zip64_end = good.rfind("PK\x06\x06");
  ASSERT_NE(zip64_end, std::string::npos);
  std::string bytes = good;
  put_little_endian(bytes, zip64_end + 48, uint64_t{1} << 40, 8);
  expect_rejected(path, bytes, "central directory lies outside");

  // The first directory entry's local header offset (at +42) past the end of the file.
  const size_t directory = good.find("PK\x01\x02");
  bytes = good;
  put_little_endian(bytes, directory + 42, 0x7ffffff0, 4);
  expect_rejected(path, bytes, "lies outside the file");

  // A stored record whose size reaches past the directory.
  bytes = good;
  put_little_endian(bytes, directory + 20, 0x7ffffff0, 4);
  put_little_endian(bytes, directory + 24, 0x7ffffff0, 4);
  expect_rejected(path, bytes, "lies outside the archive");

  // The first record marked encrypted (flag bit 0 at +8): miniz refuses it, and libtorch 1.13
  // leaked its reader when it did (fuzz_checkpoint's regression input leak-8407852...).
  bytes = good;
  bytes[directory + 8] = static_cast<char>(bytes[directory + 8] | 1);
  expect_rejected(path, bytes, "is encrypted or patched");

  // One flipped bit in the first tensor's data (libtorch would load it silently), and a local
  // header naming another record.
  const size_t first_local = good.find("PK\x03\x04");
  const size_t first_data = first_local + 30 + static_cast<uint8_t>(good[first_local + 26]) +
                            static_cast<uint8_t>(good[first_local + 28]) +
                            (static_cast<uint8_t>(good[first_local + 29]) << 8);
  bytes = good;
  bytes[first_data] = static_cast<char>(bytes[first_data] ^ 1);
  expect_rejected(path, bytes, "CRC-32 does not match");
  bytes = good;
  bytes[first_local + 30 + 1] = '%';
  expect_rejected(path, bytes, "names another record");

  // A format version libtorch does not read (the version record holds "3\n" or similar); the
  // record's data follows its local header's name and extra field (libtorch pads with one).
  const size_t version_name = good.find("/version");
  ASSERT_NE(version_name, std::string::npos);
  bytes = good;
  const size_t local = bytes.rfind("PK\x03\x04", version_name);
  const size_t name_bytes =
      static_cast<uint8_t>(bytes[local + 26]) | (static_cast<uint8_t>(bytes[local + 27]) << 8);
  const size_t extra_bytes =
      static_cast<uint8_t>(bytes[local + 28]) | (static_cast<uint8_t>(bytes[local + 29]) << 8);
  const size_t data = local + 30 + name_bytes + extra_bytes;
  bytes[data] = '9';
  bytes[data + 1] = '9';
  // With the CRC-32 the directory records for it updated, so that only the version is wrong.
  const size_t central = central_entry(bytes, "/version");
  const size_t size = static_cast<uint8_t>(bytes[central + 24]);
  put_little_endian(
      bytes, central + 16,
      crc32(0, reinterpret_cast<const Bytef*>(bytes.data() + data), static_cast<uInt>(size)), 4);
  expect_rejected(path, bytes, "format version");
}

}  // namespace
