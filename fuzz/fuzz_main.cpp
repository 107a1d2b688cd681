// libFuzzer entry point of a fuzz_<name> executable, which links exactly one harness
// (tests/fuzz/<name>_harness.cpp; it registered itself). With TESSERA_FUZZ_WRITE_SEEDS=DIR set it
// writes the harness's seeds into DIR and exits instead (scripts/fuzz.sh --seeds).
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "fuzz_target.h"

namespace {

const tessera::fuzz::Target& the_target() {
  static const tessera::fuzz::Target target = [] {
    const auto& registry = tessera::fuzz::targets();
    if (registry.size() != 1) {
      std::fprintf(stderr, "fuzz_main: expected one harness, found %zu\n", registry.size());
      std::abort();
    }
    return registry.begin()->second;
  }();
  return target;
}

void write_seeds(const std::string& dir) {
  std::filesystem::create_directories(dir);
  for (const auto& [name, bytes] : the_target().seeds()) {
    std::ofstream out(std::filesystem::path(dir) / name, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out) {
      std::fprintf(stderr, "fuzz_main: cannot write seed %s in %s\n", name.c_str(), dir.c_str());
      std::exit(1);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  if (const char* dir = std::getenv("TESSERA_FUZZ_WRITE_SEEDS")) {
    write_seeds(dir);
    std::exit(0);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > tessera::fuzz::kMaxInputBytes) return -1;  // not added to the corpus
  the_target().harness(data, size);
  return 0;
}
