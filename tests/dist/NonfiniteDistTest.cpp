// --nonfinite across workers: every rank decides alike at the same step, so a diverging DDP or
// pipeline run stops everywhere at once (no rank waits for a step the others left) with the step
// named, and a resumed DDP run's previous checkpoint stays as it was.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "../command_output.h"
#include "../test_support.h"

namespace nonfinite_dist_test {

// `tessera launch -n WORKERS -- tessera train ARGS`, bounded so that a hang fails the test.
tessera::testing::CommandResult launch_train(int workers, const std::string& args) {
  const std::string binary = TESSERA_BINARY;
  return tessera::testing::run_command("timeout -s KILL 120 " + binary + " launch -n " +
                                       std::to_string(workers) + " -- " + binary + " train " +
                                       args + " 2>&1");
}

const std::string kRun =
    "--data synthetic --synthetic-train 512 --synthetic-test 128 --synthetic-shape 1,8,8 "
    "--hidden 32,32 --batch-size 64 --threads 1 --quiet";

TEST(NonfiniteDist, ADivergingResumedDdpRunStopsOnEveryRankAndKeepsTheCheckpoint) {
  const std::string dir = tessera::testing::fresh_dir("dist_nonfinite_ddp") + "/run";
  auto r = launch_train(2, "--dist ddp --epochs 1 --run-dir " + dir + " " + kRun);
  ASSERT_EQ(r.code, 0) << r.output;
  const std::string checkpoint = tessera::testing::file_contents(dir + "/checkpoint.pt");
  const std::string metrics = tessera::testing::file_contents(dir + "/metrics.jsonl");

  r = launch_train(2, "--dist ddp --run-dir " + dir + " --resume --epochs 3 --lr 1e30");
  EXPECT_NE(r.code, 0) << r.output;
  // 256 samples per rank in batches of 64: epoch 2 starts at step 5; its update with lr 1e30
  // makes step 6 non-finite, and both ranks see it in the averaged gradient.
  for (const char* rank : {"rank 0", "rank 1"})
    EXPECT_NE(r.output.find(std::string("at epoch 2, step 6 on ") + rank), std::string::npos)
        << r.output;
  EXPECT_EQ(r.output.find("timed out"), std::string::npos) << r.output;
  EXPECT_EQ(tessera::testing::file_contents(dir + "/checkpoint.pt"), checkpoint);
  EXPECT_EQ(tessera::testing::file_contents(dir + "/metrics.jsonl"), metrics);
}

TEST(NonfiniteDist, PipelineRanksAgreeOnANonFiniteStep) {
  const std::string dir = tessera::testing::fresh_dir("dist_nonfinite_pipeline") + "/run";
  const auto r = launch_train(
      2, "--dist pipeline --micro-batches 2 --epochs 1 --lr 1e30 --run-dir " + dir + " " + kRun);
  EXPECT_NE(r.code, 0) << r.output;
  // Only the last stage sees the loss; the first learns of the step from the ballot.
  EXPECT_NE(r.output.find("at epoch 1, step 2 on rank 1"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("--nonfinite stop"), std::string::npos) << r.output;
  EXPECT_FALSE(std::filesystem::exists(dir + "/checkpoint.pt"));
}

TEST(NonfiniteDist, DdpSkipsTheSameStepsOnEveryRank) {
  const std::string dir = tessera::testing::fresh_dir("dist_nonfinite_ddp_skip") + "/run";
  const auto r = launch_train(2,
                              "--dist ddp --epochs 1 --lr 1e30 --nonfinite skip "
                              "--nonfinite-max-skips 2 --run-dir " +
                                  dir + " " + kRun);
  EXPECT_NE(r.code, 0) << r.output;
  // Step 1 trains, 2 and 3 are skipped on both ranks, 4 is one too many.
  for (const char* rank : {"rank 0", "rank 1"})
    EXPECT_NE(r.output.find(std::string("step 4 on ") + rank), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("more than --nonfinite-max-skips 2"), std::string::npos) << r.output;
}

TEST(NonfiniteDist, EveryRankBacksOffTheLossScaleAtTheSameStepsThenStopsTogether) {
  // lr 1e30: from step 2 on every loss is non-finite. A dynamic scale from 4 absorbs steps 2 and 3
  // (4 -> 2 -> 1) on every rank alike; at its floor, step 4 goes to --nonfinite stop, on all.
  const std::vector<std::pair<std::string, std::string>> methods = {
      {"ddp", "--dist ddp"},
      {"pipeline", "--dist pipeline --micro-batches 2"},
      {"sdp", "--dist sdp --sdp-level neuron --coverage 0.5"}};
  for (const auto& [name, flags] : methods) {
    const std::string dir = tessera::testing::fresh_dir("dist_nonfinite_scale_" + name) + "/run";
    const auto r = launch_train(2, flags +
                                       " --epochs 2 --lr 1e30 --loss-scale dynamic "
                                       "--loss-scale-init 4 --run-dir " +
                                       dir + " " + kRun);
    EXPECT_NE(r.code, 0) << name << "\n" << r.output;
    EXPECT_NE(r.output.find("step 4 on rank"), std::string::npos) << name << "\n" << r.output;
    EXPECT_EQ(r.output.find("step 3 on rank"), std::string::npos) << name << "\n" << r.output;
    EXPECT_EQ(r.output.find("timed out"), std::string::npos) << name << "\n" << r.output;
    // Rank 0 logged both back-offs before the stop.
    const std::string metrics = tessera::testing::file_contents(dir + "/metrics.jsonl");
    EXPECT_NE(metrics.find("\"scale\":2.0"), std::string::npos) << name << "\n" << metrics;
    EXPECT_NE(metrics.find("\"scale\":1.0"), std::string::npos) << name << "\n" << metrics;
  }
}

}  // namespace nonfinite_dist_test
