// Restarts after a failure (`tessera launch --max-restarts`): a worker SIGKILLed mid-run by the
// fault-injection hook (TESSERA_FAULT_KILL_AT=RANK:STEP, see core/fault_injection.h) is restarted
// with all the others from the run's last checkpoint (every --checkpoint-every-steps steps), and
// the finished run's checkpoint equals an uninterrupted run's tensor for tensor; the launcher
// gives up after N restarts.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <torch/torch.h>

#include "../command_output.h"
#include "../test_support.h"

namespace {

using Result = tessera::testing::CommandResult;
using tessera::testing::fresh_dir;
using tessera::testing::read_json;

Result run_bounded(const std::string& command, int timeout_seconds = 120) {
  return tessera::testing::run_command("timeout -s KILL " + std::to_string(timeout_seconds) + " " +
                                       command + " 2>&1");
}

// 512 samples, batches of 64: 4 steps per epoch for 2 data-parallel workers, 8 for the pipeline.
const std::string kData =
    "--data synthetic --synthetic-train 512 --synthetic-test 128 --synthetic-shape 1,8,8 "
    "--hidden 32,32 --batch-size 64 --threads 1 --quiet";

// `tessera launch -n 2 [launch_flags] -- tessera train <train_args> --run-dir <dir>`, with the
// environment assignments `env` in front.
Result launch_train(const std::string& env, const std::string& launch_flags,
                    const std::string& train_args, const std::string& dir) {
  return run_bounded("env " + env + " " + TESSERA_BINARY + " launch -n 2 " + launch_flags +
                     " -- tessera train " + train_args + " " + kData + " --run-dir " + dir);
}

// Every model tensor of two checkpoints, compared bit for bit (the metadata, with its timings,
// differs).
void expect_same_tensors(const std::string& a, const std::string& b) {
  torch::serialize::InputArchive first, second;
  first.load_from(a);
  second.load_from(b);
  torch::serialize::InputArchive model_a, model_b;
  ASSERT_TRUE(first.try_read("model", model_a)) << a;
  ASSERT_TRUE(second.try_read("model", model_b)) << b;
  const std::vector<std::string> keys = model_a.keys();
  ASSERT_FALSE(keys.empty());
  EXPECT_EQ(keys.size(), model_b.keys().size());
  for (const auto& key : keys) {
    torch::Tensor x, y;
    const bool buffer = !model_a.try_read(key, x);
    if (buffer) model_a.read(key, x, /*is_buffer=*/true);
    if (!model_b.try_read(key, y, buffer)) {
      ADD_FAILURE() << key << " is missing from " << b;
      continue;
    }
    EXPECT_TRUE(torch::equal(x, y))
        << key << " differs: max |difference| " << (x - y).abs().max().item<double>();
  }
}

// Runs `train_args` uninterrupted, then with rank `rank` killed after step `kill_step` under
// --max-restarts 1, and compares the final checkpoints.
void expect_restart_reproduces(const std::string& name, const std::string& train_args,
                               int kill_step, int rank = 1) {
  const std::string dir = fresh_dir("dist_restart_" + name);
  const Result plain = launch_train("", "", train_args, dir + "/plain");
  ASSERT_EQ(plain.code, 0) << plain.output;
  const std::string fault =
      "TESSERA_FAULT_KILL_AT=" + std::to_string(rank) + ":" + std::to_string(kill_step);
  const Result restarted = launch_train(
      fault, "--max-restarts 1", train_args + " --checkpoint-every-steps 3", dir + "/killed");
  ASSERT_EQ(restarted.code, 0) << restarted.output;
  // It did fail, and the launcher says why it restarted.
  EXPECT_NE(restarted.output.find("restart 1 of 1: rank " + std::to_string(rank) +
                                  " was killed by signal 9"),
            std::string::npos)
      << restarted.output;
  EXPECT_NE(restarted.output.find("restarting from the checkpoint of step"), std::string::npos)
      << restarted.output;
  expect_same_tensors(dir + "/plain/checkpoint.pt", dir + "/killed/checkpoint.pt");
  // The resumed run's summary covers the whole run: every epoch's evaluation, in time order.
  const auto summary = read_json(dir + "/killed/summary.json");
  EXPECT_EQ(summary.at("steps"), read_json(dir + "/plain/summary.json").at("steps"));
  std::filesystem::remove_all(dir);
}

}  // namespace

TEST(Restart, DdpKilledMidEpochResumesBitExact) {
  // 3 epochs of 4 steps; checkpoints at steps 3, 4, 6, 8, 9; killed after step 7: resumed from
  // step 6, half-way through epoch 2 (with dropout, whose generators resume mid-epoch too).
  expect_restart_reproduces("ddp", "--dist ddp --epochs 3 --dropout 0.2", 7);
}

TEST(Restart, SdpKilledBetweenPlanChangesResumesBitExact) {
  // New plans after steps 4 and 8; killed after step 7, resumed from step 6: under the first
  // redrawn plan, with the second change still ahead.
  expect_restart_reproduces("sdp",
                            "--dist sdp --sdp-level neuron --coverage 0.5 --sdp-redraw-steps 4 "
                            "--epochs 3",
                            7, 0);
}

TEST(Restart, PipelineKilledMidEpochResumesBitExact) {
  // 2 epochs of 8 steps; killed after step 11, resumed from step 9.
  expect_restart_reproduces("pipeline", "--dist pipeline --epochs 2", 11);
}

TEST(Restart, SingleWorkerResumesMidEpochBitExact) {
  const std::string dir = fresh_dir("dist_restart_single");
  const std::string train = std::string(TESSERA_BINARY) + " train --epochs 2 --dropout 0.2 " +
                            kData + " --checkpoint-every 2 --checkpoint-every-steps 5 --run-dir ";
  ASSERT_EQ(run_bounded(train + dir + "/plain").code, 0);
  // 8 steps per epoch. Killed after step 9; the last checkpoint is step 5's, mid-epoch 1, so the
  // record of epoch 1 (step 8) was logged after it.
  const Result killed = run_bounded("env TESSERA_FAULT_KILL_AT=0:9 " + train + dir + "/killed");
  EXPECT_NE(killed.output.find("fault injection: rank 0 kills itself"), std::string::npos)
      << killed.output;
  EXPECT_FALSE(std::filesystem::exists(dir + "/killed/summary.json")) << killed.output;
  const Result resumed =
      run_bounded(std::string(TESSERA_BINARY) + " train --resume --run-dir " + dir + "/killed");
  ASSERT_EQ(resumed.code, 0) << resumed.output;
  expect_same_tensors(dir + "/plain/checkpoint.pt", dir + "/killed/checkpoint.pt");
  // The history is the whole run's, and its clock went on from the checkpoint's time.
  const auto plain = read_json(dir + "/plain/summary.json").at("history");
  const auto history = read_json(dir + "/killed/summary.json").at("history");
  ASSERT_EQ(history.size(), plain.size());
  for (size_t i = 0; i < history.size(); ++i) {
    EXPECT_EQ(history[i].at("test_accuracy"), plain[i].at("test_accuracy"));
    if (i > 0) {
      EXPECT_GT(history[i].at("elapsed_seconds").get<double>(),
                history[i - 1].at("elapsed_seconds").get<double>());
    }
  }
  // metrics.jsonl holds each epoch once: the records the killed run logged after its checkpoint
  // were dropped before the resumed run logged them again.
  std::ifstream metrics(dir + "/killed/metrics.jsonl");
  int epochs = 0;
  for (std::string line; std::getline(metrics, line);) {
    const auto record = nlohmann::json::parse(line);
    if (record.at("type") != "epoch") continue;
    ++epochs;
    EXPECT_EQ(record.at("epoch"), epochs);
    EXPECT_TRUE(record.contains("elapsed_seconds")) << line;
  }
  EXPECT_EQ(epochs, 2);
  std::filesystem::remove_all(dir);
}

TEST(Restart, TheLauncherGivesUpAfterMaxRestarts) {
  const Result r =
      run_bounded(std::string(TESSERA_BINARY) +
                  " launch -n 2 --max-restarts 2 -- sh -c "
                  "'echo attempt $TESSERA_RESTART_COUNT; if [ $RANK = 1 ]; then exit 3; fi; "
                  "sleep 30'");
  EXPECT_EQ(r.code, 3) << r.output;
  for (const char* line : {"[rank 1] attempt 0", "[rank 1] attempt 1", "[rank 1] attempt 2",
                           "restart 1 of 2: rank 1 exited with status 3",
                           "restart 2 of 2: rank 1 exited with status 3",
                           "giving up after 2 restarts (--max-restarts 2)"})
    EXPECT_NE(r.output.find(line), std::string::npos) << line << "\n" << r.output;
  EXPECT_EQ(r.output.find("attempt 3"), std::string::npos) << r.output;
  EXPECT_LT(r.seconds, 60) << r.output;
  EXPECT_EQ(
      run_bounded(std::string(TESSERA_BINARY) + " launch -n 1 --max-restarts -1 -- true").code, 2);
}
