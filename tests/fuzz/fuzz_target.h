// Fuzz harnesses: one function per reader that feeds it an arbitrary byte string. A harness
// returns whether the reader accepted the input, and returns false for every input the reader
// rejects with tessera::Error (the clear error a user gets); any other exception, a crash, a hang
// or a sanitizer report is a bug. Each tests/fuzz/<name>_harness.cpp registers one harness and the
// seeds that start its corpus, and is compiled twice: into the libFuzzer executable fuzz_<name>
// (cmake -DTESSERA_FUZZ=ON; scripts/fuzz.sh) and into test_fuzz, which replays the committed seed
// corpus tests/fuzz/corpus/<name>/ and every crash input in tests/fuzz/regressions/<name>/.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace tessera::fuzz {

using Harness = bool (*)(const uint8_t* data, size_t size);
// Named inputs the reader accepts: the start of the corpus (scripts/fuzz.sh --seeds writes them).
using Seeds = std::vector<std::pair<std::string, std::string>>;
using SeedMaker = Seeds (*)();

struct Target {
  Harness harness = nullptr;
  SeedMaker seeds = nullptr;
};

// Every harness linked into this executable, by name.
std::map<std::string, Target>& targets();

// Registers a harness at static initialisation: `const Registration idx_registration(...)` at
// namespace scope of its file (a name of its own: test_fuzz compiles the harnesses as one unit).
struct Registration {
  Registration(const char* name, Harness harness, SeedMaker seeds) {
    targets()[name] = {harness, seeds};
  }
};

// Writes `size` bytes to `name` in this process's scratch directory (on /dev/shm when available:
// the readers take paths) and returns its path.
std::string write_scratch_file(const std::string& name, const uint8_t* data, size_t size);
inline std::string write_scratch_file(const std::string& name, const std::string& bytes) {
  return write_scratch_file(name, reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
}
// The scratch directory itself (created on first use, removed at exit).
const std::string& scratch_dir();

// gzip-compressed `bytes` (seeds that take the readers' gzip path).
std::string gzip(const std::string& bytes);

// The largest input a harness is given (scripts/fuzz.sh passes it as -max_len): readers must
// reject a header claiming more than the file holds before allocating for it, so small inputs
// must never need large allocations (libFuzzer's -malloc_limit_mb / -rss_limit_mb enforce it).
constexpr size_t kMaxInputBytes = 64 * 1024;

}  // namespace tessera::fuzz
