#include "tessera/train/checkpoint_archive.h"

#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <fstream>
#include <limits>
#include <memory>
#include <vector>

#include "tessera/core/error.h"

namespace tessera::train {
namespace {

// Zip record signatures and sizes (APPNOTE.TXT, sections 4.3.7 - 4.3.16).
constexpr uint32_t kLocalHeader = 0x04034b50;
constexpr uint32_t kCentralHeader = 0x02014b50;
constexpr uint32_t kEndOfDirectory = 0x06054b50;
constexpr uint32_t kZip64EndOfDirectory = 0x06064b50;
constexpr uint32_t kZip64Locator = 0x07064b50;
constexpr uint64_t kLocalHeaderBytes = 30;
constexpr uint64_t kCentralHeaderBytes = 46;
constexpr uint64_t kEndBytes = 22;
constexpr uint64_t kZip64EndBytes = 56;
constexpr uint64_t kZip64LocatorBytes = 20;
constexpr uint64_t kMaxCommentBytes = 0xffff;
constexpr uint16_t kZip64ExtraId = 0x0001;
// What caffe2/serialize/versions.h of libtorch 1.13 accepts.
constexpr uint64_t kMinVersion = 1, kMaxVersion = 10;

uint64_t little_endian(const uint8_t* bytes, int count) {
  uint64_t value = 0;
  for (int i = count - 1; i >= 0; --i) value = (value << 8) | bytes[i];
  return value;
}

// Random access to the file, every read checked against its size.
class ArchiveFile {
 public:
  explicit ArchiveFile(const std::string& path) : path_(path), in_(path, std::ios::binary) {
    if (!in_) throw Error("cannot open checkpoint " + path);
    in_.seekg(0, std::ios::end);
    size_ = static_cast<uint64_t>(in_.tellg());
  }
  uint64_t size() const { return size_; }

  std::vector<uint8_t> read(uint64_t offset, uint64_t count, const std::string& what) {
    if (offset > size_ || count > size_ - offset) fail(what + " lies outside the file");
    std::vector<uint8_t> bytes(count);
    in_.seekg(static_cast<std::streamoff>(offset));
    in_.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(count));
    if (!in_) fail("cannot read " + what);
    return bytes;
  }

  [[noreturn]] void fail(const std::string& problem) const {
    throw Error("checkpoint " + path_ + " is corrupt or not a tessera checkpoint: " + problem);
  }

 private:
  std::string path_;
  std::ifstream in_;
  uint64_t size_ = 0;
};

struct Directory {
  uint64_t entries = 0;
  uint64_t offset = 0;
  uint64_t bytes = 0;
  uint64_t end = 0;  // where the end records start: the directory must lie before
};

struct Entry {
  std::string name;
  uint16_t method = 0;
  uint16_t flags = 0;  // the general-purpose bit flags of its directory entry
  uint32_t crc = 0;
  uint64_t compressed = 0;
  uint64_t uncompressed = 0;
  uint64_t local_offset = 0;
};

Directory read_zip64_directory(ArchiveFile& file, uint64_t end_offset) {
  const auto locator =
      file.read(end_offset - kZip64LocatorBytes, kZip64LocatorBytes, "the zip64 locator");
  const uint64_t record_offset = little_endian(locator.data() + 8, 8);
  if (little_endian(locator.data() + 4, 4) != 0 || record_offset > end_offset - kZip64LocatorBytes)
    file.fail("its zip64 locator points outside the archive");
  const auto record = file.read(record_offset, kZip64EndBytes, "the zip64 end record");
  if (little_endian(record.data(), 4) != kZip64EndOfDirectory)
    file.fail("its zip64 end record is missing");
  if (little_endian(record.data() + 24, 8) != little_endian(record.data() + 32, 8) ||
      little_endian(record.data() + 16, 4) != 0)
    file.fail("it is a multi-part archive");
  return {little_endian(record.data() + 32, 8), little_endian(record.data() + 48, 8),
          little_endian(record.data() + 40, 8), record_offset};
}

// Finds the end-of-directory record (followed by at most a 64 KiB comment) and, through the zip64
// records when there are any, the central directory.
Directory find_directory(ArchiveFile& file) {
  if (file.size() < kEndBytes) file.fail("it is shorter than a zip archive's end record");
  const uint64_t tail_bytes = std::min(file.size(), kEndBytes + kMaxCommentBytes);
  const auto tail = file.read(file.size() - tail_bytes, tail_bytes, "the archive's end");
  for (uint64_t i = tail_bytes - kEndBytes + 1; i-- > 0;) {
    const uint8_t* end = tail.data() + i;
    if (little_endian(end, 4) != kEndOfDirectory) continue;
    if (i + kEndBytes + little_endian(end + 20, 2) != tail_bytes) continue;  // not the last bytes
    const uint64_t end_offset = file.size() - tail_bytes + i;
    if (end_offset >= kZip64LocatorBytes) {
      const auto locator = file.read(end_offset - kZip64LocatorBytes, 4, "the zip64 locator");
      if (little_endian(locator.data(), 4) == kZip64Locator)
        return read_zip64_directory(file, end_offset);
    }
    if (little_endian(end + 4, 4) != 0 || little_endian(end + 8, 2) != little_endian(end + 10, 2))
      file.fail("it is a multi-part archive");
    return {little_endian(end + 10, 2), little_endian(end + 16, 4), little_endian(end + 12, 4),
            end_offset};
  }
  file.fail("it is not a zip archive (no end-of-directory record)");
}

// Replaces the 0xffffffff placeholders of `entry` with the values of its zip64 extra field.
void apply_zip64_extra(ArchiveFile& file, const uint8_t* extra, uint64_t length, Entry& entry) {
  for (uint64_t at = 0; at + 4 <= length;) {
    const uint64_t id = little_endian(extra + at, 2), size = little_endian(extra + at + 2, 2);
    if (at + 4 + size > length) file.fail("record " + entry.name + " has a cut-off extra field");
    if (id == kZip64ExtraId) {
      uint64_t used = 0;
      for (uint64_t* field : {&entry.uncompressed, &entry.compressed, &entry.local_offset}) {
        if (*field != 0xffffffff) continue;
        if (used + 8 > size) file.fail("record " + entry.name + " has a short zip64 field");
        *field = little_endian(extra + at + 4 + used, 8);
        used += 8;
      }
    }
    at += 4 + size;
  }
}

std::vector<Entry> read_entries(ArchiveFile& file, const Directory& directory) {
  if (directory.entries == 0) file.fail("the archive holds no records");
  if (directory.offset > directory.end || directory.bytes > directory.end - directory.offset ||
      directory.entries > directory.bytes / kCentralHeaderBytes)
    file.fail("its central directory lies outside the archive");
  const auto bytes = file.read(directory.offset, directory.bytes, "the central directory");
  std::vector<Entry> entries;
  uint64_t at = 0;
  for (uint64_t n = 0; n < directory.entries; ++n) {
    if (at + kCentralHeaderBytes > bytes.size() ||
        little_endian(bytes.data() + at, 4) != kCentralHeader)
      file.fail("directory entry " + std::to_string(n) + " is damaged");
    const uint8_t* header = bytes.data() + at;
    const uint64_t name_bytes = little_endian(header + 28, 2);
    const uint64_t extra_bytes = little_endian(header + 30, 2);
    const uint64_t variable = name_bytes + extra_bytes + little_endian(header + 32, 2);
    if (at + kCentralHeaderBytes + variable > bytes.size())
      file.fail("directory entry " + std::to_string(n) + " is cut off");
    Entry entry;
    entry.name.assign(reinterpret_cast<const char*>(header + kCentralHeaderBytes), name_bytes);
    entry.flags = static_cast<uint16_t>(little_endian(header + 8, 2));
    entry.method = static_cast<uint16_t>(little_endian(header + 10, 2));
    entry.crc = static_cast<uint32_t>(little_endian(header + 16, 4));
    entry.compressed = little_endian(header + 20, 4);
    entry.uncompressed = little_endian(header + 24, 4);
    entry.local_offset = little_endian(header + 42, 4);
    apply_zip64_extra(file, header + kCentralHeaderBytes + name_bytes, extra_bytes, entry);
    entries.push_back(std::move(entry));
    at += kCentralHeaderBytes + variable;
  }
  return entries;
}

// CRC-32 of the record's content: its stored bytes, or what they inflate to (which must be
// exactly the declared size). Reads and inflates in pieces, so a record costs no more memory than
// a piece, whatever it claims.
uint32_t content_crc(ArchiveFile& file, const Entry& entry, uint64_t data) {
  constexpr uint64_t kPiece = 1 << 20;
  uLong crc = crc32(0, nullptr, 0);
  if (entry.method == 0) {
    for (uint64_t done = 0; done < entry.compressed;) {
      const uint64_t count = std::min(kPiece, entry.compressed - done);
      const auto piece = file.read(data + done, count, "record " + entry.name);
      crc = crc32(crc, piece.data(), static_cast<uInt>(count));
      done += count;
    }
    return static_cast<uint32_t>(crc);
  }
  z_stream stream{};
  if (inflateInit2(&stream, -MAX_WBITS) != Z_OK) file.fail("cannot inflate record " + entry.name);
  // inflateEnd on every exit, including a failed read.
  const std::unique_ptr<z_stream, int (*)(z_stream*)> end_inflate(&stream, inflateEnd);
  std::vector<uint8_t> piece, out(kPiece);
  uint64_t done = 0, produced = 0;
  int status = Z_OK;
  while (status == Z_OK && produced <= entry.uncompressed) {
    if (stream.avail_in == 0) {
      if (done == entry.compressed) break;  // the data ends before the deflate stream does
      piece = file.read(data + done, std::min(kPiece, entry.compressed - done), entry.name);
      done += piece.size();
      stream.next_in = piece.data();
      stream.avail_in = static_cast<uInt>(piece.size());
    }
    stream.next_out = out.data();
    stream.avail_out = static_cast<uInt>(out.size());
    status = inflate(&stream, Z_NO_FLUSH);
    const uint64_t count = out.size() - stream.avail_out;
    produced += count;
    crc = crc32(crc, out.data(), static_cast<uInt>(count));
  }
  if (status != Z_STREAM_END || produced != entry.uncompressed)
    file.fail("record " + entry.name + " does not inflate to its declared size");
  return static_cast<uint32_t>(crc);
}

// The record's local header matches the directory, its data lies before the directory, and its
// content has the CRC-32 the directory records (libtorch itself does not check it, so a damaged
// byte in a weight would load silently, and one in a TorchScript code record reaches libtorch's
// parser: fuzz_checkpoint made it crash that way).
void check_record(ArchiveFile& file, const Entry& entry, uint64_t directory_offset) {
  // Encrypted (bits 0 and 6), patched (bit 5) or masked-directory (bit 13) records: miniz refuses
  // to extract them, and libtorch 1.13 then leaks its reader's buffers (fuzz_checkpoint found it).
  constexpr uint16_t kUnreadableFlags = 0x0001 | 0x0020 | 0x0040 | 0x2000;
  if (entry.flags & kUnreadableFlags)
    file.fail("record " + entry.name + " is encrypted or patched (zip flags " +
              std::to_string(entry.flags) + "), which libtorch cannot read");
  if (entry.method != 0 && entry.method != 8)
    file.fail("record " + entry.name + " uses compression method " + std::to_string(entry.method));
  if (entry.method == 0 && entry.compressed != entry.uncompressed)
    file.fail("stored record " + entry.name + " has two different sizes");
  const auto header =
      file.read(entry.local_offset, kLocalHeaderBytes, "the local header of " + entry.name);
  if (little_endian(header.data(), 4) != kLocalHeader)
    file.fail("the local header of record " + entry.name + " is missing");
  const uint64_t name_bytes = little_endian(header.data() + 26, 2);
  const auto name = file.read(entry.local_offset + kLocalHeaderBytes, name_bytes, entry.name);
  if (std::string(name.begin(), name.end()) != entry.name)
    file.fail("the local header of record " + entry.name + " names another record");
  const uint64_t data =
      entry.local_offset + kLocalHeaderBytes + name_bytes + little_endian(header.data() + 28, 2);
  if (data > directory_offset || entry.compressed > directory_offset - data)
    file.fail("the data of record " + entry.name + " lies outside the archive");
  if (content_crc(file, entry, data) != entry.crc)
    file.fail("record " + entry.name + " is damaged (its CRC-32 does not match)");
}

void check_version(ArchiveFile& file, const std::vector<Entry>& entries,
                   const std::string& folder) {
  const auto version = std::find_if(entries.begin(), entries.end(), [&](const Entry& entry) {
    return entry.name == folder + "/version" || entry.name == folder + "/.data/version";
  });
  if (version == entries.end()) file.fail("it has no " + folder + "/version record");
  if (version->method != 0 || version->uncompressed == 0 || version->uncompressed > 20)
    file.fail("its version record is not a short stored number");
  const auto header = file.read(version->local_offset, kLocalHeaderBytes, "the version record");
  const uint64_t data = version->local_offset + kLocalHeaderBytes +
                        little_endian(header.data() + 26, 2) + little_endian(header.data() + 28, 2);
  const auto text = file.read(data, version->uncompressed, "the version record");
  uint64_t value = 0;
  size_t digits = 0;
  while (digits < text.size() && std::isdigit(text[digits]))
    value = value * 10 + (text[digits++] - '0');
  const bool trailing_space = std::all_of(text.begin() + static_cast<std::ptrdiff_t>(digits),
                                          text.end(), [](uint8_t c) { return std::isspace(c); });
  if (digits == 0 || digits > 2 || !trailing_space || value < kMinVersion || value > kMaxVersion)
    file.fail("its format version is not one libtorch " + std::to_string(kMinVersion) + ".." +
              std::to_string(kMaxVersion) + " reads");
}

}  // namespace

void check_checkpoint_archive(const std::string& path) {
  ArchiveFile file(path);
  const Directory directory = find_directory(file);
  const std::vector<Entry> entries = read_entries(file, directory);
  for (const Entry& entry : entries) check_record(file, entry, directory.offset);
  const size_t slash = entries.front().name.find('/');
  if (slash == std::string::npos || slash == 0)
    file.fail("its first record " + entries.front().name + " is not in a folder");
  check_version(file, entries, entries.front().name.substr(0, slash));
}

}  // namespace tessera::train
