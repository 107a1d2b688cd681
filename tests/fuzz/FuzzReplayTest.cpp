// Replays the fuzz harnesses' committed inputs without libFuzzer, so that every build runs them:
// the seed corpus (tests/fuzz/corpus/<name>/) and every input a fuzzer ever crashed on
// (tests/fuzz/regressions/<name>/, each fixed since). See fuzz_target.h and docs/robustness.md.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <gtest/gtest.h>

#include "fuzz_target.h"

namespace {

namespace fs = std::filesystem;
using tessera::fuzz::targets;

const fs::path kFuzzDir = fs::path(TESSERA_SOURCE_DIR) / "tests" / "fuzz";

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

std::vector<fs::path> files_in(const fs::path& dir) {
  std::vector<fs::path> files;
  if (fs::is_directory(dir))
    for (const auto& entry : fs::directory_iterator(dir))
      if (entry.is_regular_file()) files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  return files;
}

// Runs one input; any exception other than tessera::Error (which the harness absorbs) fails.
bool replay(const std::string& target, const std::string& bytes, const std::string& origin) {
  try {
    return targets().at(target).harness(reinterpret_cast<const uint8_t*>(bytes.data()),
                                        bytes.size());
  } catch (const std::exception& e) {
    ADD_FAILURE() << target << ": " << origin
                  << " escaped the reader as a non-tessera error: " << e.what();
  }
  return false;
}

TEST(FuzzReplayTest, EveryReaderHasAHarness) {
  const std::set<std::string> expected = {"checkpoint", "cifar",       "config",
                                          "idx",        "safetensors", "text"};
  std::set<std::string> registered;
  for (const auto& [name, target] : targets()) registered.insert(name);
  for (const auto& name : expected) EXPECT_TRUE(registered.count(name)) << name;
}

// A harness's seeds are inputs its reader accepts, so the fuzzer starts from deep in the format.
TEST(FuzzReplayTest, SeedsAreAcceptedByTheirReaders) {
  for (const auto& [name, target] : targets()) {
    const auto seeds = target.seeds();
    EXPECT_FALSE(seeds.empty()) << name;
    for (const auto& [seed_name, bytes] : seeds)
      EXPECT_TRUE(replay(name, bytes, "seed " + seed_name))
          << name << " rejects seed " << seed_name;
  }
}

// The committed corpus (scripts/fuzz.sh --seeds) holds every seed, and its reader accepts it.
TEST(FuzzReplayTest, CommittedCorpusHoldsEverySeed) {
  for (const auto& [name, target] : targets()) {
    for (const auto& [seed_name, bytes] : target.seeds()) {
      const fs::path committed = kFuzzDir / "corpus" / name / seed_name;
      ASSERT_TRUE(fs::exists(committed)) << committed << " missing: run scripts/fuzz.sh --seeds";
      EXPECT_TRUE(replay(name, read_bytes(committed), committed.string())) << committed;
    }
  }
}

TEST(FuzzReplayTest, CommittedCorpusAndRegressionsReplay) {
  size_t replayed = 0;
  for (const auto& [name, target] : targets()) {
    for (const char* kind : {"corpus", "regressions"}) {
      for (const fs::path& file : files_in(kFuzzDir / kind / name)) {
        replay(name, read_bytes(file), file.string());
        ++replayed;
      }
    }
  }
  EXPECT_GT(replayed, targets().size());
}

}  // namespace
