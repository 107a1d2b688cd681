#include "tessera/data/text_corpus.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "tessera/core/error.h"
#include "tessera/core/seeding.h"

namespace tessera::data {

namespace fs = std::filesystem;

namespace {

constexpr char kCacheMagic[8] = {'T', 'S', 'R', 'T', 'X', 'T', '0', '1'};

bool has_suffix(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Fortune index files: `x.dat` (offsets) and `x.u8` (a link to `x`).
bool is_index_file(const fs::path& path) {
  const std::string name = path.filename().string();
  return has_suffix(name, ".dat") || has_suffix(name, ".u8");
}

std::string read_whole_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot open text file " + path);
  std::ostringstream content;
  content << in.rdbuf();
  return content.str();
}

// Length of the UTF-8 sequence starting at `text[i]` (0 if invalid): no overlong forms, no
// surrogates, nothing above U+10FFFF.
size_t utf8_sequence_length(const std::string& text, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char lead = byte(i);
  if (lead < 0x80) return 1;
  size_t length = 0;
  unsigned char low = 0x80, high = 0xBF;  // allowed range of the second byte
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    if (lead == 0xE0) low = 0xA0;
    if (lead == 0xED) high = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    if (lead == 0xF0) low = 0x90;
    if (lead == 0xF4) high = 0x8F;
  } else {
    return 0;
  }
  if (i + length > text.size()) return 0;
  if (byte(i + 1) < low || byte(i + 1) > high) return 0;
  for (size_t k = 2; k < length; ++k)
    if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) return 0;
  return length;
}

void check_text(const std::string& text, const std::string& origin) {
  for (size_t i = 0; i < text.size();) {
    if (text[i] == '\0')
      throw Error(origin + " is not text: it holds a NUL byte at offset " + std::to_string(i) +
                  " (a binary file?)");
    const size_t length = utf8_sequence_length(text, i);
    if (length == 0) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "0x%02X", static_cast<unsigned char>(text[i]));
      throw Error(origin + " is not UTF-8 text: invalid byte " + hex + " at offset " +
                  std::to_string(i));
    }
    i += length;
  }
}

bool is_blank(const std::string& text) {
  return std::all_of(text.begin(), text.end(),
                     [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; });
}

uint64_t fnv1a(uint64_t hash, const std::string& text) {
  for (unsigned char c : text) {
    hash ^= c;
    hash *= 1099511628211ULL;
  }
  return hash;
}

std::string cache_directory(const TextConfig& config) {
  if (!config.cache_dir.empty()) return config.cache_dir;
  if (const char* env = std::getenv("TESSERA_CACHE_DIR"); env != nullptr && *env != '\0')
    return env;
  return (fs::temp_directory_path() / "tessera-cache").string();
}

// Names the prepared tokens by everything they depend on.
std::string cache_key(const std::vector<std::string>& files, const TextConfig& config) {
  uint64_t hash = 14695981039346656037ULL;
  for (const auto& file : files) {
    std::error_code error;
    const auto size = fs::file_size(file, error);
    const auto time = fs::last_write_time(file, error).time_since_epoch().count();
    hash = fnv1a(hash, fs::absolute(file).string() + "|" + std::to_string(size) + "|" +
                           std::to_string(static_cast<long long>(time)) + ";");
  }
  char settings[96];
  std::snprintf(settings, sizeof settings, "fraction=%.17g seed=%llu v1",
                config.validation_fraction, static_cast<unsigned long long>(config.split_seed));
  hash = fnv1a(hash, settings);
  char name[64];
  std::snprintf(name, sizeof name, "text-%016llx.tokens", static_cast<unsigned long long>(hash));
  return name;
}

struct Header {
  char magic[8];
  int64_t train_bytes;
  int64_t validation_bytes;
  int64_t train_documents;
  int64_t validation_documents;
};

// Whether a cache file of `file_bytes` bytes holds exactly what its header declares. The sizes
// come from the file: each is checked against the file before they are added (a damaged header
// may hold any value, and their sum could overflow).
bool header_matches(const Header& header, size_t file_bytes) {
  if (std::memcmp(header.magic, kCacheMagic, sizeof kCacheMagic) != 0 || file_bytes < sizeof header)
    return false;
  const auto payload = static_cast<uint64_t>(file_bytes - sizeof header);
  const auto fits = [&](int64_t bytes) {
    return bytes >= 0 && static_cast<uint64_t>(bytes) <= payload;
  };
  // Every document holds at least one (non-blank) byte.
  const auto documents_fit = [](int64_t documents, int64_t bytes) {
    return documents >= 0 && documents <= bytes;
  };
  return fits(header.train_bytes) && fits(header.validation_bytes) &&
         static_cast<uint64_t>(header.train_bytes) +
                 static_cast<uint64_t>(header.validation_bytes) ==
             payload &&
         documents_fit(header.train_documents, header.train_bytes) &&
         documents_fit(header.validation_documents, header.validation_bytes);
}

// Reads the corpus, splits it and writes the cache file atomically (a unique temporary name, then
// rename: workers of a host that build it at the same time write the same bytes).
void write_cache(const std::vector<std::string>& files, const TextConfig& config,
                 const std::string& cache_path) {
  std::string train, validation;
  Header header{};
  std::memcpy(header.magic, kCacheMagic, sizeof kCacheMagic);
  int64_t index = 0;
  for (const auto& file : files) {
    for (auto& document : split_documents(read_whole_file(file), file)) {
      const bool held_out =
          is_validation_document(index++, config.validation_fraction, config.split_seed);
      std::string& split = held_out ? validation : train;
      if (!split.empty()) split += '\n';  // a blank line between documents
      split += document;
      ++(held_out ? header.validation_documents : header.train_documents);
    }
  }
  header.train_bytes = static_cast<int64_t>(train.size());
  header.validation_bytes = static_cast<int64_t>(validation.size());
  fs::create_directories(fs::path(cache_path).parent_path());
  const std::string temporary = cache_path + ".tmp" + std::to_string(::getpid());
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(&header), sizeof header);
    out.write(train.data(), static_cast<std::streamsize>(train.size()));
    out.write(validation.data(), static_cast<std::streamsize>(validation.size()));
    if (!out) throw Error("cannot write the text cache file " + temporary);
  }
  fs::rename(temporary, cache_path);
}

// A read-only mapping of a whole file, unmapped when the last tensor viewing it goes.
struct Mapping {
  void* address = MAP_FAILED;
  size_t bytes = 0;
  ~Mapping() {
    if (address != MAP_FAILED) ::munmap(address, bytes);
  }
};

std::shared_ptr<Mapping> map_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) throw Error("cannot open the text cache file " + path);
  struct stat info {};
  ::fstat(fd, &info);
  auto mapping = std::make_shared<Mapping>();
  mapping->bytes = static_cast<size_t>(info.st_size);
  if (mapping->bytes > 0)
    mapping->address = ::mmap(nullptr, mapping->bytes, PROT_READ, MAP_SHARED, fd, 0);
  ::close(fd);
  if (mapping->address == MAP_FAILED) throw Error("cannot memory-map " + path);
  return mapping;
}

Dataset token_split(const std::string& name, const std::shared_ptr<Mapping>& mapping,
                    int64_t offset, int64_t length, int64_t seq_len, bool random_offsets) {
  auto windows = std::make_shared<TokenWindows>();
  char* base = static_cast<char*>(mapping->address) + offset;
  // The tensor keeps the mapping alive; nothing ever writes through it (PROT_READ).
  windows->tokens = torch::from_blob(
      base, {length}, [mapping](void*) {}, torch::TensorOptions().dtype(torch::kUInt8));
  windows->seq_len = seq_len;
  windows->count = (length - 1) / seq_len;
  windows->random_offsets = random_offsets;
  Dataset dataset;
  dataset.name = name;
  dataset.num_classes = kByteVocabulary;
  dataset.windows = std::move(windows);
  return dataset;
}

}  // namespace

std::vector<std::string> text_files(const std::string& path) {
  require(!path.empty(), "text data needs a corpus path (--data-path FILE|DIR)");
  std::error_code error;
  const auto status = fs::status(path, error);
  if (error || !fs::exists(status)) throw Error("text corpus " + path + " does not exist");
  if (fs::is_regular_file(status)) return {path};
  if (!fs::is_directory(status))
    throw Error("text corpus " + path + " is neither a file nor a directory");
  std::vector<std::string> files;
  for (const auto& entry : fs::recursive_directory_iterator(path)) {
    if (entry.is_symlink() || !entry.is_regular_file() || is_index_file(entry.path())) continue;
    if (entry.path().filename().string().rfind('.', 0) == 0) continue;  // hidden
    files.push_back(entry.path().string());
  }
  std::sort(files.begin(), files.end());
  if (files.empty())
    throw Error("text corpus " + path +
                " holds no text file (symbolic links and *.dat / *.u8 index files are skipped)");
  return files;
}

std::vector<std::string> split_documents(const std::string& text, const std::string& origin) {
  check_text(text, origin);
  std::vector<std::string> documents;
  std::string current;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    const size_t next = end == std::string::npos ? text.size() : end + 1;
    const std::string line = text.substr(start, next - start);
    if (line == "%\n" || line == "%" || line == "%\r\n") {
      if (!is_blank(current)) documents.push_back(current);
      current.clear();
    } else {
      current += line;
    }
    start = next;
  }
  if (!is_blank(current)) documents.push_back(current);
  return documents;
}

bool is_validation_document(int64_t index, double fraction, uint64_t split_seed) {
  const uint64_t hash =
      mix_seed(mix_seed(split_seed, 0x73706c6974ULL), static_cast<uint64_t>(index));
  return static_cast<double>(hash >> 11) * 0x1.0p-53 < fraction;
}

TrainTest load_text_corpus(const TextConfig& config) {
  require(config.seq_len >= 1,
          "--seq-len must be at least 1, got " + std::to_string(config.seq_len));
  require(config.validation_fraction > 0 && config.validation_fraction < 1,
          "the validation fraction must lie in (0, 1), got " +
              std::to_string(config.validation_fraction));
  const std::vector<std::string> files = text_files(config.path);
  const std::string cache_path =
      (fs::path(cache_directory(config)) / cache_key(files, config)).string();
  if (!fs::exists(cache_path)) write_cache(files, config, cache_path);
  const std::shared_ptr<Mapping> mapping = map_file(cache_path);
  Header header{};
  if (mapping->bytes >= sizeof header) std::memcpy(&header, mapping->address, sizeof header);
  if (!header_matches(header, mapping->bytes))
    throw Error("text cache file " + cache_path + " is damaged; delete it");

  const std::string& path = config.path;
  if (header.train_bytes + header.validation_bytes == 0)
    throw Error("text corpus " + path + " is empty (no non-blank document)");
  const int64_t window = config.seq_len + 1;
  if (header.train_bytes < window)
    throw Error("text corpus " + path + ": its training split has " +
                std::to_string(header.train_bytes) + " bytes, fewer than one window of --seq-len " +
                std::to_string(config.seq_len) + " plus its target (" + std::to_string(window) +
                "); use a larger corpus or a shorter --seq-len");
  if (header.validation_bytes < window)
    throw Error("text corpus " + path + ": its validation split (" +
                std::to_string(header.validation_documents) + " of " +
                std::to_string(header.train_documents + header.validation_documents) +
                " documents, " + std::to_string(header.validation_bytes) +
                " bytes) holds no whole window of --seq-len " + std::to_string(config.seq_len) +
                " plus its target; use more documents (records separated by lines holding only "
                "%) or a shorter --seq-len");
  TrainTest data;
  data.train = token_split("text/train", mapping, sizeof header, header.train_bytes, config.seq_len,
                           /*random_offsets=*/true);
  data.test = token_split("text/validation", mapping,
                          static_cast<int64_t>(sizeof header) + header.train_bytes,
                          header.validation_bytes, config.seq_len, /*random_offsets=*/false);
  return data;
}

}  // namespace tessera::data
