// `tessera train --lr 1e30` diverges: the run stops at the first non-finite step with an error that
// names it, exits non-zero, and leaves the previous checkpoint and metrics as they were.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "../command_output.h"
#include "../test_support.h"

namespace nonfinite_cli_test {

tessera::testing::CommandResult tessera_run(const std::string& args) {
  return tessera::testing::run_command(std::string(TESSERA_BINARY) + " " + args + " 2>&1");
}

const std::string kRun =
    "train --data synthetic --synthetic-train 512 --synthetic-test 128 --synthetic-shape 1,8,8 "
    "--hidden 32,32 --batch-size 64 --threads 1 --quiet";

TEST(NonfiniteCli, ADivergingResumedRunStopsAtTheFirstNonFiniteStepAndKeepsTheCheckpoint) {
  const std::string dir = tessera::testing::fresh_dir("cli_nonfinite_stop") + "/run";
  auto r = tessera_run(kRun + " --epochs 1 --run-dir " + dir);
  ASSERT_EQ(r.code, 0) << r.output;
  const std::string checkpoint = tessera::testing::file_contents(dir + "/checkpoint.pt");
  const std::string metrics = tessera::testing::file_contents(dir + "/metrics.jsonl");
  const std::string summary = tessera::testing::file_contents(dir + "/summary.json");

  r = tessera_run("train --run-dir " + dir + " --resume --epochs 3 --lr 1e30");
  EXPECT_EQ(r.code, 1) << r.output;
  // Epoch 2 starts at step 9: its update with lr 1e30 makes the next loss non-finite.
  EXPECT_NE(r.output.find("at epoch 2, step 10 on rank 0"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("--nonfinite stop"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(dir + "/checkpoint.pt keeps the last good state"), std::string::npos)
      << r.output;
  EXPECT_EQ(r.output.find("test accuracy"), std::string::npos) << r.output;
  EXPECT_EQ(tessera::testing::file_contents(dir + "/checkpoint.pt"), checkpoint);
  EXPECT_EQ(tessera::testing::file_contents(dir + "/metrics.jsonl"), metrics);
  EXPECT_EQ(tessera::testing::file_contents(dir + "/summary.json"), summary);

  // The run goes on from its checkpoint at a sane rate.
  r = tessera_run("train --run-dir " + dir + " --resume --epochs 2 --lr 1e-3");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(tessera::testing::read_json(dir + "/summary.json")["epochs"], 2);
}

TEST(NonfiniteCli, SkipCountsTheSkippedStepsAndStopsAfterTooManyInARow) {
  const std::string dir = tessera::testing::fresh_dir("cli_nonfinite_skip") + "/run";
  // After the first huge update every step is non-finite: 3 are skipped, the 4th ends the run.
  const auto r = tessera_run(kRun +
                             " --epochs 1 --lr 1e30 --nonfinite skip "
                             "--nonfinite-max-skips 3 --run-dir " +
                             dir);
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("step 5 on rank 0"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("more than --nonfinite-max-skips 3"), std::string::npos) << r.output;
  std::ifstream in(dir + "/metrics.jsonl");
  int skipped = 0;
  for (std::string line; std::getline(in, line);)
    if (nlohmann::json::parse(line)["type"] == "skipped_step") ++skipped;
  EXPECT_EQ(skipped, 3);
}

TEST(NonfiniteCli, PnnPartitionsAndRecoveryStopWithTheirNameAndTheStep) {
  const std::string dir = tessera::testing::fresh_dir("cli_nonfinite_pnn");
  const std::string pnn =
      "pnn --data synthetic --synthetic-train 512 --synthetic-test 128 --synthetic-shape 1,8,8 "
      "--hidden 32,32 --cuts 2 --epochs 1 --batch-size 64 --threads 1 --quiet --recovery-epochs 1";
  auto r = tessera_run(pnn + " --lr 1e30 --run-dir " + dir + "/partitions");
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("partition 0: "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("at epoch 1, step 2 on rank 0"), std::string::npos) << r.output;

  r = tessera_run(pnn + " --recovery-lr 1e30 --run-dir " + dir + "/recovery");
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("recovery of the joined model: "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("at epoch 1, step 2 on rank 0"), std::string::npos) << r.output;
  // The partitions trained, their checkpoints are whole; no joined checkpoint was written.
  EXPECT_TRUE(std::filesystem::exists(dir + "/recovery/sequential/partition0/checkpoint.pt"));
  EXPECT_FALSE(std::filesystem::exists(dir + "/recovery/sequential/checkpoint.pt"));
}

}  // namespace nonfinite_cli_test
