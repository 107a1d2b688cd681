#include "tessera/metrics/jsonl_writer.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tessera/core/error.h"

namespace tessera::metrics {
namespace {

namespace fs = std::filesystem;

class JsonlWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("tessera_jsonl_" + std::to_string(getpid()));
    fs::create_directories(dir_);
    path_ = (dir_ / "metrics.jsonl").string();
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::vector<std::string> lines() const {
    std::ifstream in(path_);
    std::vector<std::string> result;
    for (std::string line; std::getline(in, line);) result.push_back(line);
    return result;
  }

  fs::path dir_;
  std::string path_;
};

TEST_F(JsonlWriterTest, WritesOneCompactObjectPerLine) {
  {
    JsonlWriter writer(path_, /*append=*/false);
    writer.write({{"type", "step"}, {"step", 1}, {"loss", 2.5}});
    writer.write({{"type", "step"}, {"step", 2}, {"nested", {{"a", {1, 2, 3}}}}});
    // Flushed per record: readable before the writer is closed.
    EXPECT_EQ(lines().size(), 2u);
    writer.write({{"type", "epoch"}, {"name", "multi\nline"}});
  }
  const std::vector<std::string> read = lines();
  ASSERT_EQ(read.size(), 3u);
  const nlohmann::json first = nlohmann::json::parse(read[0]);
  EXPECT_EQ(first["step"], 1);
  EXPECT_DOUBLE_EQ(first["loss"].get<double>(), 2.5);
  const nlohmann::json second = nlohmann::json::parse(read[1]);
  EXPECT_EQ(second["nested"]["a"][2], 3);
  const nlohmann::json third = nlohmann::json::parse(read[2]);
  EXPECT_EQ(third["name"], "multi\nline");          // escaped, so still one line
  EXPECT_EQ(read[0].find(' '), std::string::npos);  // compact
}

TEST_F(JsonlWriterTest, AppendKeepsAndTruncateDiscards) {
  { JsonlWriter(path_, false).write({{"run", 1}}); }
  { JsonlWriter(path_, true).write({{"run", 2}}); }
  ASSERT_EQ(lines().size(), 2u);
  EXPECT_EQ(nlohmann::json::parse(lines()[1])["run"], 2);
  { JsonlWriter(path_, false).write({{"run", 3}}); }
  ASSERT_EQ(lines().size(), 1u);
  EXPECT_EQ(nlohmann::json::parse(lines()[0])["run"], 3);
}

TEST_F(JsonlWriterTest, CannotOpenNamesThePath) {
  const std::string bad = (dir_ / "no_such_dir" / "metrics.jsonl").string();
  try {
    JsonlWriter writer(bad, false);
    FAIL() << "expected tessera::Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace tessera::metrics
