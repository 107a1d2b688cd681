// `tessera launch`: torchrun's environment for every worker, rank-prefixed output, and a failed
// worker stopping the others with its rank and exit status named.
#include <gtest/gtest.h>

#include <string>

#include "../command_output.h"

namespace {

using Result = tessera::testing::CommandResult;

Result launch(const std::string& args, int timeout_seconds = 120) {
  const std::string command = "timeout -s KILL " + std::to_string(timeout_seconds) + " " +
                              std::string(TESSERA_BINARY) + " launch " + args + " 2>&1";
  return tessera::testing::run_command(command);
}

const char* kQuickRun =
    "--data synthetic --synthetic-train 512 --synthetic-test 128 --synthetic-shape 1,8,8 "
    "--hidden 32,32 --batch-size 64 --threads 1";

}  // namespace

TEST(Launch, GivesEveryWorkerTorchrunsEnvironment) {
  auto r = launch(
      "-n 2 -- sh -c 'echo env $RANK $WORLD_SIZE $LOCAL_RANK $LOCAL_WORLD_SIZE $GROUP_RANK "
      "$MASTER_ADDR'");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("[rank 0] env 0 2 0 2 0 127.0.0.1"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("[rank 1] env 1 2 1 2 0 127.0.0.1"), std::string::npos) << r.output;
  // The second of two nodes: global ranks 2 and 3 of 4.
  r = launch(
      "-n 2 --nnodes 2 --node-rank 1 --master-addr 10.0.0.1 --master-port 29400 -- sh -c "
      "'echo env $RANK $WORLD_SIZE $LOCAL_RANK $GROUP_RANK $MASTER_ADDR $MASTER_PORT'");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("env 2 4 0 1 10.0.0.1 29400"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("env 3 4 1 1 10.0.0.1 29400"), std::string::npos) << r.output;
}

TEST(Launch, UsageErrors) {
  EXPECT_EQ(launch("-n 2").code, 2);
  EXPECT_EQ(launch("-n 0 -- true").code, 2);
  EXPECT_EQ(launch("-n 2 --nnodes 2 -- true").code, 2);  // several nodes need --master-port
  EXPECT_EQ(launch("-n 2 --nnodes 2 --node-rank 2 --master-port 1 -- true").code, 2);
}

TEST(Launch, AFailingWorkerStopsTheOthersAndIsNamed) {
  const auto r = launch("-n 3 -- sh -c 'if [ $RANK = 1 ]; then exit 3; fi; sleep 60'");
  EXPECT_EQ(r.code, 3) << r.output;
  EXPECT_NE(r.output.find("rank 1"), std::string::npos) << r.output;
  EXPECT_LT(r.seconds, 30) << r.output;
}

TEST(Launch, DdpTrainingRunsUnderTheLauncher) {
  const auto r = launch(std::string("-n 2 -- tessera train --dist ddp --epochs 1 ") + kQuickRun);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("[rank 0] dist: ddp, 2 workers"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("ddp on 2 workers"), std::string::npos) << r.output;
}

TEST(Launch, AWorkerKilledMidTrainingEndsTheRunWithItsRankAndSignal) {
  // Rank 1 kills itself with SIGKILL a few seconds into a long run (exec keeps the shell's pid).
  const auto r = launch(
      std::string("-n 2 -- sh -c 'if [ $RANK = 1 ]; then (sleep 4; kill -9 $$) & fi; exec ") +
          TESSERA_BINARY + " train --dist ddp --dist-timeout 20 --epochs 100000 " + kQuickRun + "'",
      90);
  EXPECT_EQ(r.code, 128 + 9) << r.output;
  EXPECT_NE(r.output.find("rank 1 was killed by signal 9"), std::string::npos) << r.output;
  EXPECT_LT(r.seconds, 60) << r.output;
}
