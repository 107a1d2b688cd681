#include "tessera/data/data_file.h"

#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>

#include "tessera/core/error.h"
#include "tessera/data/large_tensor.h"

namespace tessera::data {

namespace fs = std::filesystem;

std::string find_data_file(const std::string& dir, const std::string& base_name) {
  const fs::path raw = fs::path(dir) / base_name;
  if (fs::is_regular_file(raw)) return raw.string();
  const fs::path gz = fs::path(dir) / (base_name + ".gz");
  if (fs::is_regular_file(gz)) return gz.string();
  throw Error("missing data file: neither " + raw.string() + " nor " + gz.string() + " exists");
}

namespace {

// Closes the gzFile on every exit path, including exceptions.
struct GzCloser {
  void operator()(gzFile_s* file) const { gzclose(file); }
};

// Expected content size, so the buffer is allocated once: the file size for a raw file; for gzip,
// the trailer's ISIZE (uncompressed size mod 2^32 of the last member; only a hint).
size_t size_hint(const std::string& path) {
  const auto on_disk = static_cast<size_t>(fs::file_size(path));
  std::ifstream in(path, std::ios::binary);
  unsigned char head[2] = {0, 0};
  in.read(reinterpret_cast<char*>(head), 2);
  if (!in || head[0] != 0x1f || head[1] != 0x8b || on_disk < 18) return on_disk;
  unsigned char trailer[4];
  in.seekg(-4, std::ios::end);
  in.read(reinterpret_cast<char*>(trailer), 4);
  if (!in) return on_disk;
  const uint32_t isize = uint32_t{trailer[0]} | (uint32_t{trailer[1]} << 8) |
                         (uint32_t{trailer[2]} << 16) | (uint32_t{trailer[3]} << 24);
  // Deflate expands at most ~1032:1; a cut-off file's "trailer" is arbitrary data.
  return std::min<size_t>(isize, on_disk * 1032);
}

}  // namespace

torch::Tensor read_file_bytes(const std::string& path) {
  std::error_code ignored;
  if (!fs::is_regular_file(path, ignored)) throw Error("missing data file: " + path);
  std::unique_ptr<gzFile_s, GzCloser> file(gzopen(path.c_str(), "rb"));
  if (!file) throw Error("cannot open data file: " + path);
  gzbuffer(file.get(), 1 << 20);
  // One spare byte: reaching end-of-file without filling it confirms the hint was large enough.
  torch::Tensor buffer = empty_large({static_cast<int64_t>(size_hint(path)) + 1}, torch::kUInt8);
  int64_t filled = 0;
  for (;;) {
    if (filled == buffer.numel()) {
      torch::Tensor larger = empty_large({2 * buffer.numel()}, torch::kUInt8);
      larger.slice(0, 0, filled).copy_(buffer);
      buffer = larger;
    }
    const int64_t room = std::min<int64_t>(buffer.numel() - filled, int64_t{1} << 30);
    const int got =
        gzread(file.get(), buffer.data_ptr<uint8_t>() + filled, static_cast<unsigned>(room));
    if (got <= 0) break;
    filled += got;
  }
  // zlib reports a cut-off gzip stream (Z_BUF_ERROR) only through gzerror, not gzread's result.
  int code = Z_OK;
  const char* message = gzerror(file.get(), &code);
  if (code != Z_OK) throw Error("corrupt or truncated data file " + path + ": " + message);
  return buffer.slice(0, 0, filled);
}

}  // namespace tessera::data
