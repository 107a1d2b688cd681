// Runs the `tessera` binary as a user would and checks exit codes, messages and run files.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "../command_output.h"
#include "../test_support.h"

namespace {

using Result = tessera::testing::CommandResult;
using tessera::testing::expect_eval_reproduces;
using tessera::testing::fresh_dir;
using tessera::testing::read_json;

Result run(const std::string& args) {
  return tessera::testing::run_command(std::string(TESSERA_BINARY) + " " + args + " 2>&1");
}

// The data of kQuickTrain, for evaluating its checkpoints.
const char* kEvalData =
    "--data synthetic --synthetic-train 512 --synthetic-test 128 --synthetic-shape 1,8,8";
const std::string kQuickTrain =
    std::string("train ") + kEvalData + " --hidden 32,32 --batch-size 64 --threads 1 --quiet";

}  // namespace

TEST(Cli, UsageErrorsExitWithCode2) {
  EXPECT_EQ(run("").code, 2);
  EXPECT_EQ(run("frobnicate").code, 2);
  auto r = run("train --no-such-flag");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("no-such-flag"), std::string::npos) << r.output;
  r = run("train --epochs many");
  EXPECT_EQ(r.code, 2) << r.output;
  r = run("train --optimizer lion --data synthetic");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("lion"), std::string::npos) << r.output;
  r = run("train --hidden 12,x --data synthetic");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("--hidden"), std::string::npos) << r.output;
  r = run("train --model transformer-xl --data synthetic --epochs 1");
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(run("eval").code, 2);  // --checkpoint is required
}

TEST(Cli, HelpAndInfo) {
  auto r = run("--help");
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.output.find("train"), std::string::npos);
  r = run("train --help");
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.output.find("--lr"), std::string::npos);
  r = run("info");
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.output.find("libtorch"), std::string::npos);
  EXPECT_NE(r.output.find("BLAS"), std::string::npos);
  EXPECT_NE(r.output.find("linear layers and attention: fp32 on "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("; bf16 on "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("(--bf16-kernel auto: the CPU has "), std::string::npos) << r.output;
}

TEST(Cli, MissingDataIsAClearError) {
  const auto r = run("train --data mnist --data-dir /nonexistent/mnist --epochs 1");
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("/nonexistent/mnist"), std::string::npos) << r.output;
}

TEST(Cli, TrainWritesTheRunDirectoryAndEvalReadsTheCheckpoint) {
  const std::string dir = fresh_dir("cli_train");
  auto r = run(std::string(kQuickTrain) + " --epochs 2 --run-dir " + dir);
  ASSERT_EQ(r.code, 0) << r.output;
  const auto summary = read_json(dir + "/summary.json");
  for (const char* key : {"test_accuracy", "test_loss", "train_flops", "peak_tensor_bytes",
                          "peak_rss_bytes", "param_bytes", "grad_bytes", "optimizer_state_bytes",
                          "comm_bytes", "wall_seconds", "samples_per_second"})
    EXPECT_TRUE(summary.contains(key)) << key;
  EXPECT_GT(summary["peak_tensor_bytes"].get<int64_t>(), 0);
  EXPECT_EQ(read_json(dir + "/config.json")["model"]["hidden"], nlohmann::json({32, 32}));
  int epoch_records = 0;
  std::ifstream metrics(dir + "/metrics.jsonl");
  for (std::string line; std::getline(metrics, line);)
    epoch_records += nlohmann::json::parse(line)["type"] == "epoch";
  EXPECT_EQ(epoch_records, 2);

  expect_eval_reproduces(dir + "/checkpoint.pt", kEvalData, dir + "/eval.json",
                         summary["test_accuracy"].get<double>());

  // The same model cannot be evaluated on data of another shape.
  r = run("eval --checkpoint " + dir + "/checkpoint.pt --data synthetic --synthetic-shape 1,4,4");
  EXPECT_EQ(r.code, 2) << r.output;
}

TEST(Cli, ConfigFileAndResume) {
  const std::string dir = fresh_dir("cli_config");
  {
    std::ofstream config(dir + "/flags.json");
    config << R"({"epochs": 1, "hidden": [16, 16], "lr": 0.002})";
  }
  auto r = run(std::string(kQuickTrain) + " --config " + dir + "/flags.json --hidden 24,24 " +
               "--run-dir " + dir + "/run");
  ASSERT_EQ(r.code, 0) << r.output;
  const auto config = read_json(dir + "/run/config.json");
  EXPECT_EQ(config["model"]["hidden"], nlohmann::json({24, 24}));  // the command line wins
  EXPECT_DOUBLE_EQ(config["train"]["optimizer"]["lr"].get<double>(), 0.002);
  EXPECT_EQ(config["train"]["epochs"], 1);

  r = run("train --run-dir " + dir + "/run --resume --epochs 2 --quiet");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(read_json(dir + "/run/summary.json")["epochs"], 2);

  {
    std::ofstream bad(dir + "/bad.json");
    bad << "{ not json";
  }
  EXPECT_EQ(run("train --config " + dir + "/bad.json").code, 2);
  EXPECT_EQ(run("train --config " + dir + "/absent.json").code, 2);
}

TEST(Cli, TrainsEveryModelFamily) {
  // The binary installs the counting allocator first: convolutions must work under it.
  for (const std::string model :
       {"--model resnet --depth 8 --width 0.25", "--model wrn --depth 10 --width 1",
        "--model vit --depth 1 --embed-dim 32 --mlp-dim 32 --patch-size 4"}) {
    const auto r = run(std::string(kQuickTrain) + " --epochs 1 " + model);
    EXPECT_EQ(r.code, 0) << model << "\n" << r.output;
  }
}

TEST(Cli, DropoutAndDropPathAreRecordedAndOffAtEvaluation) {
  const std::string dir = fresh_dir("cli_regularizers");
  const std::string resnet = std::string(kQuickTrain) + " --model resnet --depth 8 --width 0.25";
  auto r = run(resnet + " --epochs 1 --dropout 0.2 --drop-path 0.1 --run-dir " + dir);
  ASSERT_EQ(r.code, 0) << r.output;
  const auto model = read_json(dir + "/config.json")["model"];
  EXPECT_DOUBLE_EQ(model["dropout"].get<double>(), 0.2);
  EXPECT_DOUBLE_EQ(model["drop_path"].get<double>(), 0.1);
  // eval rebuilds the regularised model from the checkpoint; in eval mode it is deterministic.
  expect_eval_reproduces(dir + "/checkpoint.pt", kEvalData, dir + "/eval.json",
                         read_json(dir + "/summary.json")["test_accuracy"].get<double>());

  r = run(std::string(kQuickTrain) + " --epochs 1 --drop-path 0.5");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("--drop-path: the mlp model has no residual branches"), std::string::npos)
      << r.output;
  r = run(resnet + " --epochs 1 --dropout 1");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("--dropout: must be a finite number in [0, 1), got '1'"),
            std::string::npos)
      << r.output;
  r = run(resnet + " --epochs 1 --drop-path=-0.5");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("--drop-path: must be a finite number in [0, 1)"), std::string::npos)
      << r.output;
}

namespace {
// A constant rate: the default cosine anneals this 64-step run's first partition before it fits
// its labels (joined 47% against 96%); on Fashion-MNIST cosine is the better one (docs/results.md).
const char* kQuickPnn =
    "pnn --data synthetic --synthetic-train 1000 --synthetic-test 300 --synthetic-shape 1,8,8 "
    "--hidden 64,64,64 --cuts 2 --epochs 4 --batch-size 64 --threads 1 --schedule constant "
    "--quiet";
}  // namespace

TEST(Cli, PnnParallelWorkersExchangeNothingAndTheJoinedModelLearns) {
  const std::string dir = fresh_dir("cli_pnn_parallel");
  const auto r = run(std::string(kQuickPnn) + " --pnn-schedule parallel --run-dir " + dir);
  ASSERT_EQ(r.code, 0) << r.output;
  const auto summary = read_json(dir + "/parallel/summary.json");
  ASSERT_EQ(summary.at("partitions").size(), 2u);
  for (const auto& part : summary.at("partitions")) {
    EXPECT_EQ(part.at("comm_bytes"), 0);
    EXPECT_GT(part.at("peak_tensor_bytes"), 0);
  }
  EXPECT_EQ(summary.at("partitions")[1].at("inputs"), "SIL + noise");
  EXPECT_EQ(summary.at("handover_bytes"), 0);
  EXPECT_GE(summary.at("test_accuracy").get<double>(), 0.9);
  // The joined, recovered model is an ordinary checkpoint.
  const auto e =
      run("eval --data synthetic --synthetic-train 1000 --synthetic-test 300 "
          "--synthetic-shape 1,8,8 --threads 1 --checkpoint " +
          dir + "/parallel/checkpoint.pt");
  EXPECT_EQ(e.code, 0) << e.output;
  std::filesystem::remove_all(dir);
}

TEST(Cli, PnnSilSpaceRegressesInTheReducedSpaceAndRejectsWhatCannotFit) {
  const std::string dir = fresh_dir("cli_pnn_sil_space");
  auto r =
      run(std::string(kQuickPnn) +
          " --pnn-schedule parallel --sil-space projected --sil-space-size 16 --run-dir " + dir);
  ASSERT_EQ(r.code, 0) << r.output;
  const auto summary = read_json(dir + "/parallel/summary.json");
  // Partition 0's outputs are compared with its labels in the 16-dimensional space.
  EXPECT_EQ(summary.at("partitions")[0].at("regression_fit").at("units"), 16);
  // It learns (chance: 10%), if less than in the full space (at least 90%, above): the lifted
  // labels P^T s are 16 of 64 dimensions, small against the SIL noise (docs/results.md, issue 19).
  EXPECT_GE(summary.at("test_accuracy").get<double>(), 0.3);
  // The MLP's cut is [64]: nothing to pool, a projection larger than the cut, no size.
  for (const char* bad : {" --sil-space pooled --sil-space-size 2",
                          " --sil-space projected "
                          "--sil-space-size 65",
                          " --sil-space pooled", " --sil-space strided"}) {
    r = run(std::string(kQuickPnn) + bad + " --run-dir " + dir);
    EXPECT_EQ(r.code, 2) << bad << "\n" << r.output;
    EXPECT_NE(r.output.find("--sil-space"), std::string::npos) << r.output;
  }
  std::filesystem::remove_all(dir);
}

TEST(Cli, PnnCompareRunsBothSchedulesAndPrintsTheTable) {
  const std::string dir = fresh_dir("cli_pnn_compare");
  const auto r = run(std::string(kQuickPnn) + " --compare --pnn-schedule sequential,parallel " +
                     "--evals-per-epoch 2 --run-dir " + dir);
  ASSERT_EQ(r.code, 0) << r.output;
  for (const char* row : {"conventional", "pnn sequential", "pnn parallel", "FLOPs to 90%"})
    EXPECT_NE(r.output.find(row), std::string::npos) << row << "\n" << r.output;
  const auto summary = read_json(dir + "/summary.json");
  ASSERT_EQ(summary.at("comparison").size(), 3u);
  EXPECT_GT(summary.at("comparison")[1].at("comm_bytes"), 0);  // sequential: the hand-over
  EXPECT_EQ(summary.at("comparison")[2].at("comm_bytes"), 0);  // parallel: nothing
  // The bandwidth baseline: a pipeline cut at the same stages, measured.
  EXPECT_GT(summary.at("model_parallel").at("bytes_per_step").get<int64_t>(), 0);
  EXPECT_NE(r.output.find("model parallel"), std::string::npos) << r.output;
  // Time to accuracy: every row says when it reached the target (the first row's target is 90% of
  // its own final accuracy, so it reaches it), and each curve point when it was reached.
  EXPECT_NE(r.output.find("s to target"), std::string::npos) << r.output;
  EXPECT_GT(summary.at("comparison")[0].at("seconds_to_target").get<double>(), 0.0);
  for (const auto& row : summary.at("comparison")) EXPECT_TRUE(row.contains("seconds_to_target"));
  for (const char* schedule : {"sequential", "parallel"}) {
    const auto curve = read_json(dir + "/" + schedule + "/summary.json").at("curve");
    ASSERT_FALSE(curve.empty()) << schedule;
    for (size_t i = 0; i < curve.size(); ++i) {
      EXPECT_GT(curve[i].at("elapsed_seconds").get<double>(), 0.0) << schedule;
      if (i > 0) {
        EXPECT_GE(curve[i].at("elapsed_seconds").get<double>(),
                  curve[i - 1].at("elapsed_seconds").get<double>())
            << schedule;
      }
    }
  }
  // The summary held by name: a range-for over a member of a temporary reads freed memory (ASan).
  const nlohmann::json conventional = read_json(dir + "/conventional/summary.json");
  for (const auto& point : conventional.at("history"))
    EXPECT_GT(point.at("elapsed_seconds").get<double>(), 0.0);
  std::filesystem::remove_all(dir);
}

TEST(Cli, PnnBadPlansAndAFailedWorkerAreClearErrors) {
  const std::string dir = fresh_dir("cli_pnn_errors");
  auto r = run(std::string(kQuickPnn) + " --cuts 4 --run-dir " + dir);  // 4 stages: 1..3
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("--cuts"), std::string::npos) << r.output;
  r = run(std::string(kQuickPnn) + " --cuts 2,2 --run-dir " + dir);
  EXPECT_EQ(r.code, 2) << r.output;
  r = run(std::string(kQuickPnn) + " --partition-epochs 1,2,3 --run-dir " + dir);
  EXPECT_EQ(r.code, 2) << r.output;
  r = run(std::string(kQuickPnn));  // no --run-dir
  EXPECT_EQ(r.code, 2) << r.output;
  r = run(std::string(kQuickPnn) + " --sil orthogonal --hidden 4,4,4 --run-dir " + dir);
  EXPECT_EQ(r.code, 2) << r.output;  // 10 classes cannot have orthonormal rows of 4 entries
  // Partition 1's worker cannot create its directory: the run stops and names it.
  std::filesystem::create_directories(dir + "/parallel");
  std::ofstream(dir + "/parallel/partition1") << "in the way";
  r = run(std::string(kQuickPnn) + " --pnn-schedule parallel --run-dir " + dir);
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("partition 1 exited with status 1"), std::string::npos) << r.output;
  std::filesystem::remove_all(dir);
}

namespace {
// `tessera ARGS` with the bf16 detection forced to `native` (TESSERA_CPU_BF16: "0" or "1").
Result run_with_bf16(const std::string& native, const std::string& args) {
  return tessera::testing::run_command("TESSERA_CPU_BF16=" + native + " " +
                                       std::string(TESSERA_BINARY) + " " + args + " 2>&1");
}
}  // namespace

TEST(Cli, PrecisionIsRecordedCheckpointsCrossItAndBf16IsRefusedWithoutNativeSupport) {
  const std::string dir = fresh_dir("cli_precision");
  // TESSERA_CPU_BF16=1: bf16 runs (emulated by oneDNN) on a CI machine without avx512_bf16.
  auto r = run_with_bf16(
      "1",
      kQuickTrain + " --epochs 1 --precision bf16 --bf16-kernel native --run-dir " + dir + "/bf16");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(read_json(dir + "/bf16/summary.json")["precision"], "bf16");
  EXPECT_EQ(read_json(dir + "/bf16/summary.json")["matmul_kernel"], "onednn");
  EXPECT_EQ(read_json(dir + "/bf16/config.json")["train"]["precision"], "bf16");
  // The bf16 run's checkpoint goes on in fp32, and an fp32 checkpoint is evaluated in bf16.
  r = run("train --run-dir " + dir +
          "/bf16 --resume --epochs 2 --precision fp32 --matmul-kernel blas --quiet");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(read_json(dir + "/bf16/summary.json")["precision"], "fp32");
  EXPECT_EQ(read_json(dir + "/bf16/summary.json")["matmul_kernel"], "blas");
  r = run_with_bf16("1", "eval --checkpoint " + dir + "/bf16/checkpoint.pt " + kEvalData +
                             " --precision bf16 --output " + dir + "/eval.json");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NEAR(read_json(dir + "/eval.json")["test_accuracy"].get<double>(),
              read_json(dir + "/bf16/summary.json")["test_accuracy"].get<double>(), 0.05);

  r = run_with_bf16("0", kQuickTrain + " --epochs 1 --precision bf16");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("avx512_bf16"), std::string::npos) << r.output;
  r = run(kQuickTrain + " --epochs 1 --precision fp16");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("--precision"), std::string::npos) << r.output;
  // PNN partitions train in bf16 too.
  r = run_with_bf16("1", std::string(kQuickPnn) + " --precision bf16 --run-dir " + dir + "/pnn");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(read_json(dir + "/pnn/summary.json")["precision"], "bf16");
  std::filesystem::remove_all(dir);
}
