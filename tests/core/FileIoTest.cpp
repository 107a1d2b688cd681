// Files written whole or not at all (core/file_io.h). The full and read-only disk cases run against
// real mounts in tests/cli/DiskFailureCliTest.cpp.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "../test_support.h"
#include "tessera/core/error.h"
#include "tessera/core/file_io.h"

namespace file_io_test {

TEST(FileIo, AnUncommittedAtomicFileLeavesThePreviousVersionAndNoTemporary) {
  const std::string dir = tessera::testing::fresh_dir("core_atomic_file");
  const std::string path = dir + "/a.json";
  tessera::write_file_atomically(path, "first\n");
  {
    tessera::AtomicFile file(path);
    ASSERT_TRUE(file.write("second", 6));
    EXPECT_TRUE(std::filesystem::exists(path + ".tmp"));
  }  // not committed: as if the process had failed half-way
  EXPECT_EQ(tessera::testing::file_contents(path), "first\n");
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  tessera::write_file_atomically(path, "third\n");
  EXPECT_EQ(tessera::testing::file_contents(path), "third\n");
}

TEST(FileIo, ErrorsNameThePathAndTheReason) {
  const std::string dir = tessera::testing::fresh_dir("core_file_errors");
  try {
    tessera::write_file_atomically(dir + "/missing/a.json", "x");
    FAIL() << "wrote into a directory that does not exist";
  } catch (const tessera::Error& e) {
    EXPECT_NE(std::string(e.what()).find(dir + "/missing/a.json"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("No such file or directory"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(tessera::AppendFile(dir + "/missing/m.jsonl", true), tessera::Error);
}

TEST(FileIo, AppendingDropsATornLastLineFirst) {
  const std::string dir = tessera::testing::fresh_dir("core_append_file");
  const std::string path = dir + "/m.jsonl";
  std::ofstream(path) << "{\"a\":1}\n{\"b\":2}\n{\"c\":";  // a crash cut the third record short
  {
    tessera::AppendFile file(path, /*append=*/true);
    file.write("{\"d\":4}\n");
  }
  EXPECT_EQ(tessera::testing::file_contents(path), "{\"a\":1}\n{\"b\":2}\n{\"d\":4}\n");
  std::ofstream(path, std::ios::trunc) << "no newline at all";
  { tessera::AppendFile file(path, true); }
  EXPECT_EQ(tessera::testing::file_contents(path), "");
  {
    tessera::AppendFile file(path, /*append=*/false);
    file.write("x\n");
  }
  {
    tessera::AppendFile file(path, true);  // whole lines: kept as they are
    file.write("y\n");
  }
  EXPECT_EQ(tessera::testing::file_contents(path), "x\ny\n");
}

}  // namespace file_io_test
