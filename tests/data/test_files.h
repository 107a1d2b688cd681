// Helpers for the data tests: a scratch directory and writers for small IDX / CIFAR files.
#pragma once

#include <unistd.h>
#include <zlib.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <type_traits>
#include <vector>

#include <gtest/gtest.h>

#include "tessera/core/error.h"

namespace tessera::data::testing {

// A fresh directory under the system temp dir, removed at destruction.
class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = std::filesystem::temp_directory_path() /
            ("tessera-data-" + std::string(info->test_suite_name()) + "-" + info->name() + "-" +
             std::to_string(::getpid()));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  std::string str() const { return path_.string(); }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

using Bytes = std::vector<uint8_t>;

inline void append_big_endian(Bytes& bytes, uint32_t value) {
  for (int shift = 24; shift >= 0; shift -= 8)
    bytes.push_back(static_cast<uint8_t>(value >> shift));
}

// An IDX images file: magic 0x803, [count, rows, cols], then `pixels` (row-major).
inline Bytes idx_images(uint32_t count, uint32_t rows, uint32_t cols, const Bytes& pixels) {
  Bytes bytes;
  for (uint32_t value : {0x00000803u, count, rows, cols}) append_big_endian(bytes, value);
  bytes.insert(bytes.end(), pixels.begin(), pixels.end());
  return bytes;
}

// An IDX labels file: magic 0x801, [count], then the labels.
inline Bytes idx_labels(const Bytes& labels) {
  Bytes bytes;
  append_big_endian(bytes, 0x00000801u);
  append_big_endian(bytes, static_cast<uint32_t>(labels.size()));
  bytes.insert(bytes.end(), labels.begin(), labels.end());
  return bytes;
}

inline void write_raw(const std::string& path, const Bytes& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

inline void write_gz(const std::string& path, const Bytes& bytes) {
  gzFile file = gzopen(path.c_str(), "wb");
  ASSERT_NE(file, nullptr) << path;
  ASSERT_EQ(gzwrite(file, bytes.data(), static_cast<unsigned>(bytes.size())),
            static_cast<int>(bytes.size()));
  ASSERT_EQ(gzclose(file), Z_OK);
}

// Pixel values 0, 1, 2, ... (mod 256) for `count` images of rows x cols.
inline Bytes counting_pixels(size_t count) {
  Bytes pixels(count);
  for (size_t i = 0; i < count; ++i) pixels[i] = static_cast<uint8_t>(i % 256);
  return pixels;
}

// Runs `action` and checks it throws `ErrorType` whose message contains every `needle`. A file
// problem must be a plain Error (exit code 1), not a UsageError (a bad setting, exit code 2).
template <typename ErrorType, typename Action>
void expect_error(Action action, const std::vector<std::string>& needles) {
  try {
    action();
    ADD_FAILURE() << "no exception thrown";
  } catch (const ErrorType& error) {
    if constexpr (std::is_same_v<ErrorType, Error>) {
      EXPECT_EQ(dynamic_cast<const UsageError*>(&error), nullptr) << "unexpected UsageError";
    }
    const std::string message = error.what();
    for (const std::string& needle : needles) {
      EXPECT_NE(message.find(needle), std::string::npos)
          << "message '" << message << "' lacks '" << needle << "'";
    }
  }
}

}  // namespace tessera::data::testing
