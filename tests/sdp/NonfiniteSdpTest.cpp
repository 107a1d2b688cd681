// --nonfinite under SDP: each worker trains a different subnetwork, so a non-finite step is agreed
// on explicitly (a two-number all-reduce per step); a diverging run stops on every worker at the
// same step and the checkpoint of the run before it stays as it was.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "../command_output.h"
#include "../test_support.h"

namespace nonfinite_sdp_test {

tessera::testing::CommandResult launch_sdp(int workers, const std::string& args) {
  const std::string binary = TESSERA_BINARY;
  return tessera::testing::run_command("timeout -s KILL 120 " + binary + " launch -n " +
                                       std::to_string(workers) + " -- " + binary +
                                       " train --dist sdp " + args + " 2>&1");
}

const std::string kRun =
    "--data synthetic --synthetic-train 512 --synthetic-test 128 --synthetic-shape 1,8,8 "
    "--hidden 32,32 --batch-size 64 --threads 1 --quiet --sdp-level neuron --coverage 0.5";

TEST(NonfiniteSdp, ADivergingRunStopsOnEveryWorkerAndKeepsThePreviousCheckpoint) {
  // SDP runs do not resume: the previous checkpoint is that of an earlier run in the same
  // directory, which the diverging run must not replace.
  const std::string dir = tessera::testing::fresh_dir("sdp_nonfinite") + "/run";
  auto r = launch_sdp(2, "--epochs 1 --run-dir " + dir + " " + kRun);
  ASSERT_EQ(r.code, 0) << r.output;
  const std::string checkpoint = tessera::testing::file_contents(dir + "/checkpoint.pt");
  ASSERT_FALSE(checkpoint.empty());

  r = launch_sdp(2, "--epochs 2 --lr 1e30 --run-dir " + dir + " " + kRun);
  EXPECT_NE(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("at epoch 1, step 2 on rank 0"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("--nonfinite stop"), std::string::npos) << r.output;
  EXPECT_EQ(tessera::testing::file_contents(dir + "/checkpoint.pt"), checkpoint);
}

}  // namespace nonfinite_sdp_test
