// Runs the `tessera` binary as a user would and checks exit codes, messages and run files.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

namespace {

struct Result {
  int code = -1;
  std::string output;  // stdout and stderr
};

Result run(const std::string& args) {
  const std::string command = std::string(TESSERA_BINARY) + " " + args + " 2>&1";
  Result result;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return result;
  std::array<char, 4096> buffer{};
  size_t n = 0;
  while ((n = fread(buffer.data(), 1, buffer.size(), pipe)) > 0)
    result.output.append(buffer.data(), n);
  const int status = pclose(pipe);
  result.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

std::string fresh_dir(const std::string& name) {
  const auto path = std::filesystem::temp_directory_path() / ("tessera_cli_" + name);
  std::filesystem::remove_all(path);
  return path.string();
}

const char* kQuickTrain =
    "train --data synthetic --synthetic-train 512 --synthetic-test 128 --synthetic-shape 1,8,8 "
    "--hidden 32,32 --batch-size 64 --threads 1 --quiet";

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

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
}

TEST(Cli, MissingDataIsAClearError) {
  const auto r = run("train --data mnist --data-dir /nonexistent/mnist --epochs 1");
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("/nonexistent/mnist"), std::string::npos) << r.output;
}

TEST(Cli, TrainWritesTheRunDirectoryAndEvalReadsTheCheckpoint) {
  const std::string dir = fresh_dir("train");
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

  r = run("eval --checkpoint " + dir +
          "/checkpoint.pt --data synthetic --synthetic-train 512 --synthetic-test 128 "
          "--synthetic-shape 1,8,8 --output " +
          dir + "/eval.json");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_DOUBLE_EQ(read_json(dir + "/eval.json")["test_accuracy"].get<double>(),
                   summary["test_accuracy"].get<double>());

  // The same model cannot be evaluated on data of another shape.
  r = run("eval --checkpoint " + dir + "/checkpoint.pt --data synthetic --synthetic-shape 1,4,4");
  EXPECT_EQ(r.code, 2) << r.output;
}

TEST(Cli, ConfigFileAndResume) {
  const std::string dir = fresh_dir("config");
  std::filesystem::create_directories(dir);
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
