// Runs `tessera train --dist ...` as separate worker processes on 127.0.0.1, started by a shell
// with torchrun's environment, and checks results, summaries and the failure modes.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../command_output.h"
#include "../test_support.h"
#include "tessera/dist/process_group.h"
#include "tessera/dist/rendezvous.h"

namespace {

using Result = tessera::testing::CommandResult;
using tessera::testing::fresh_dir;
using tessera::testing::read_json;

// Runs a shell script (bounded by `timeout` so a hang fails the test instead of blocking it).
Result shell(const std::string& script, int timeout_seconds = 120) {
  const std::string path = std::filesystem::temp_directory_path() /
                           ("tessera_dist_cli_" + std::to_string(getpid()) + ".sh");
  std::ofstream(path) << script;
  const std::string command =
      "timeout -s KILL " + std::to_string(timeout_seconds) + " sh " + path + " 2>&1";
  return tessera::testing::run_command(command);
}

#define TESSERA_QUICK_DATA \
  "--data synthetic --synthetic-train 512 --synthetic-test 128 --synthetic-shape 1,8,8"
#define TESSERA_QUICK_RUN TESSERA_QUICK_DATA " --hidden 32,32 --batch-size 64 --threads 1"
const char* kQuickData = TESSERA_QUICK_DATA;
const char* kQuick = TESSERA_QUICK_RUN " --quiet";
const char* kQuickVerbose = TESSERA_QUICK_RUN;

// The environment torchrun would give rank `rank` of `world`.
std::string env(int rank, int world, int port) {
  return "RANK=" + std::to_string(rank) + " WORLD_SIZE=" + std::to_string(world) +
         " LOCAL_RANK=" + std::to_string(rank) + " LOCAL_WORLD_SIZE=" + std::to_string(world) +
         " MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(port) + " ";
}

std::string binary() {
  return std::string(TESSERA_BINARY) + " ";
}

// Starts `world` workers running `args` in the background, waits for all, prints their codes.
std::string workers(int world, const std::string& args, const std::string& dir) {
  const int port = tessera::dist::find_free_port();
  std::string script;
  for (int r = 0; r < world; ++r)
    script += env(r, world, port) + binary() + args + " > " + dir + "/rank" + std::to_string(r) +
              ".log 2>&1 &\np" + std::to_string(r) + "=$!\n";
  for (int r = 0; r < world; ++r)
    script += "wait $p" + std::to_string(r) + "; echo \"rank " + std::to_string(r) + " exit $?\"\n";
  for (int r = 0; r < world; ++r) script += "cat " + dir + "/rank" + std::to_string(r) + ".log\n";
  return script;
}

}  // namespace

TEST(DistCli, DdpOnTwoProcessesWritesPerRankMetricsAndAPortableCheckpoint) {
  const std::string dir = fresh_dir("dist_cli_ddp");
  const auto r = shell(workers(
      2, std::string("train --dist ddp --epochs 2 --run-dir ") + dir + "/run " + kQuick, dir));
  ASSERT_NE(r.output.find("rank 0 exit 0"), std::string::npos) << r.output;
  ASSERT_NE(r.output.find("rank 1 exit 0"), std::string::npos) << r.output;
  const auto summary = read_json(dir + "/run/summary.json");
  EXPECT_EQ(summary["world_size"], 2);
  ASSERT_EQ(summary["ranks"].size(), 2u);
  for (const auto& rank : summary["ranks"]) {
    EXPECT_GT(rank["peak_tensor_bytes"].get<int64_t>(), 0);
    EXPECT_GT(rank["train_peak_tensor_bytes"].get<int64_t>(), 0);
    EXPECT_LE(rank["train_peak_tensor_bytes"].get<int64_t>(),
              rank["peak_tensor_bytes"].get<int64_t>());
    EXPECT_GT(rank["peak_rss_bytes"].get<int64_t>(), 0);
    EXPECT_GT(rank["comm_bytes"].get<int64_t>(), 0);
    EXPECT_EQ(rank["steps"], 2 * 4);  // 256 samples per rank in batches of 64
  }
  // Each rank all-reduces every gradient plus its sample count once per step: a ring all-reduce
  // of P bytes among 2 ranks sends P bytes from each.
  const int64_t payload = summary["param_bytes"].get<int64_t>() + 4;
  EXPECT_EQ(summary["comm_bytes_per_step"].get<int64_t>(), 2 * payload);

  // The checkpoint is a plain single-worker one: eval reads it, and one worker resumes from it.
  auto e = shell(binary() + "eval --checkpoint " + dir + "/run/checkpoint.pt " + kQuickData +
                 " --output " + dir + "/eval.json");
  ASSERT_EQ(e.code, 0) << e.output;
  EXPECT_DOUBLE_EQ(read_json(dir + "/eval.json")["test_accuracy"].get<double>(),
                   summary["test_accuracy"].get<double>());
  e = shell(binary() + "train --run-dir " + dir + "/run --resume --epochs 3 --dist none");
  ASSERT_EQ(e.code, 0) << e.output;
  EXPECT_EQ(read_json(dir + "/run/summary.json")["epochs"], 3);
}

TEST(DistCli, DdpWithDropoutIsDeterministicBySeed) {
  // Each worker draws its own masks from (seed, rank, epoch): two runs agree exactly.
  std::vector<double> losses;
  for (const char* name : {"ddp_dropout_a", "ddp_dropout_b"}) {
    const std::string dir = fresh_dir(std::string("dist_cli_") + name);
    const auto r =
        shell(workers(2,
                      std::string("train --dist ddp --epochs 1 --dropout 0.3 --run-dir ") + dir +
                          "/run " + kQuick,
                      dir));
    ASSERT_NE(r.output.find("rank 0 exit 0"), std::string::npos) << r.output;
    ASSERT_NE(r.output.find("rank 1 exit 0"), std::string::npos) << r.output;
    const auto summary = read_json(dir + "/run/summary.json");
    losses.push_back(summary["train_loss"].get<double>());
    losses.push_back(summary["test_loss"].get<double>());
  }
  EXPECT_EQ(losses[0], losses[2]);
  EXPECT_EQ(losses[1], losses[3]);
}

TEST(DistCli, PipelineSendsActivationsAndGradientsAtTheCut) {
  const std::string dir = fresh_dir("dist_cli_pipeline");
  const auto r =
      shell(workers(2,
                    std::string("train --dist pipeline --micro-batches 4 --epochs 1 --run-dir ") +
                        dir + "/run " + kQuick,
                    dir));
  ASSERT_NE(r.output.find("rank 0 exit 0"), std::string::npos) << r.output;
  ASSERT_NE(r.output.find("rank 1 exit 0"), std::string::npos) << r.output;
  const auto summary = read_json(dir + "/run/summary.json");
  // Stages 64->32 | 32->32, 32->10 (cut by FLOPs): every step sends 64 activations of 32 floats
  // forward and their gradients back, and each rank all-reduces the 16-byte --nonfinite ballot
  // (2 (W - 1) / W x 16 = 16 bytes sent per rank).
  EXPECT_EQ(summary["pipeline"]["stages"], nlohmann::json({{0, 1}, {1, 3}}));
  EXPECT_EQ(summary["comm_bytes_per_step"].get<int64_t>(), 2 * 64 * 32 * 4 + 2 * 16);
  const auto e = shell(binary() + "eval --checkpoint " + dir + "/run/checkpoint.pt " + kQuickData);
  EXPECT_EQ(e.code, 0) << e.output;
}

TEST(DistCli, BadEnvironmentIsAUsageError) {
  auto r = shell("RANK=2 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=1234 " + binary() +
                 "train --dist ddp " + kQuick);
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("RANK=2 is outside"), std::string::npos) << r.output;
  r = shell("unset MASTER_ADDR; RANK=0 WORLD_SIZE=2 MASTER_PORT=1234 " + binary() +
            "train --dist ddp " + kQuick);
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("MASTER_ADDR is not set"), std::string::npos) << r.output;
  r = shell(env(0, 1, 1234) + binary() + "train --dist fsdp " + kQuick);
  EXPECT_EQ(r.code, 2) << r.output;
}

TEST(DistCli, UnreachableMasterAndMissingWorkersFailWithinTheTimeout) {
  const int port = tessera::dist::find_free_port();
  auto r = shell(env(1, 2, port) + binary() + "train --dist ddp --dist-timeout 2 " + kQuick);
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("cannot reach the master"), std::string::npos) << r.output;
  EXPECT_LT(r.seconds, 30);
  r = shell(env(0, 2, port) + binary() + "train --dist ddp --dist-timeout 2 " + kQuick);
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("not all WORLD_SIZE=2 workers joined"), std::string::npos) << r.output;
  EXPECT_LT(r.seconds, 30);
}

TEST(DistCli, MismatchingWorldSizesAreNamed) {
  const std::string dir = fresh_dir("dist_cli_mismatch");
  const int port = tessera::dist::find_free_port();
  const std::string args = "train --dist ddp --dist-timeout 10 " + std::string(kQuick);
  const auto r =
      shell(env(0, 2, port) + binary() + args + " > " + dir + "/rank0.log 2>&1 &\n" + "p0=$!\n" +
            "RANK=1 WORLD_SIZE=3 MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(port) + " " +
            binary() + args + "; echo \"rank 1 exit $?\"\n" +
            "wait $p0; echo \"rank 0 exit $?\"; cat " + dir + "/rank0.log\n");
  EXPECT_NE(r.output.find("rank 1 exit 1"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("rank 0 exit 1"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("rank 1 was started with WORLD_SIZE=3 but rank 0 with WORLD_SIZE=2"),
            std::string::npos)
      << r.output;
}

TEST(DistCli, BusyPortIsNamed) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof addr;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(fd, 1) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &length) != 0) {
    close(fd);
    GTEST_SKIP() << "cannot listen on 127.0.0.1";
  }
  const int port = ntohs(addr.sin_port);
  const auto r = shell(env(0, 2, port) + binary() + "train --dist ddp --dist-timeout 5 " + kQuick);
  close(fd);
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("port is busy"), std::string::npos) << r.output;
}

TEST(DistCli, AWorkerKilledMidTrainingStopsTheOthersWithTheRankNamed) {
  const std::string dir = fresh_dir("dist_cli_sigkill");
  const int port = tessera::dist::find_free_port();
  // Long enough that the kill lands mid-training; the timeout bounds how long a survivor waits.
  const std::string args =
      "train --dist ddp --dist-timeout 20 --epochs 100000 " + std::string(kQuickVerbose);
  // Rank 0 prints "dist: ..." once the group is formed; the kill comes a second into training.
  const std::string script =
      env(0, 2, port) + binary() + args + " > " + dir + "/rank0.log 2>&1 &\np0=$!\n" +
      env(1, 2, port) + binary() + args + " > " + dir + "/rank1.log 2>&1 &\np1=$!\n" +
      "until grep -q '^dist:' " + dir + "/rank0.log; do sleep 0.2; done\nsleep 1\n" +
      "kill -9 $p1\nstart=$(date +%s)\nwait $p0; code=$?\n"
      "echo \"rank 0 exit $code after $(( $(date +%s) - start )) s\"\ncat " +
      dir + "/rank0.log\n";
  const auto r = shell(script, 90);
  EXPECT_NE(r.output.find("rank 0 exit 1 after"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("because rank 1 (pid"), std::string::npos) << r.output;
  EXPECT_LT(r.seconds, 60) << r.output;
}

TEST(DistCli, WorkersUseTorchrunsAgentStoreWhenToldTo) {
  // torchrun's agent hosts the store and sets TORCHELASTIC_USE_AGENT_STORE=True: then every
  // worker, rank 0 included, is a client, and keys live under /worker/attempt_<restart count>.
  const int port = tessera::dist::find_free_port();
  tessera::dist::Store agent =
      tessera::dist::Store::tcp("127.0.0.1", port, true, 1, std::chrono::seconds(30));
  const std::string dir = fresh_dir("dist_cli_agent");
  std::string script;
  for (int r = 0; r < 2; ++r)
    script += "TORCHELASTIC_USE_AGENT_STORE=True TORCHELASTIC_RESTART_COUNT=3 " + env(r, 2, port) +
              binary() + "train --dist ddp --epochs 1 " + kQuick + " > " + dir + "/rank" +
              std::to_string(r) + ".log 2>&1 &\np" + std::to_string(r) + "=$!\n";
  script += "wait $p0; echo \"rank 0 exit $?\"; wait $p1; echo \"rank 1 exit $?\"\ncat " + dir +
            "/rank0.log " + dir + "/rank1.log\n";
  const auto r = shell(script);
  EXPECT_NE(r.output.find("rank 0 exit 0"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("rank 1 exit 0"), std::string::npos) << r.output;
  // The workers met under the attempt's prefix of the agent's store.
  tessera::dist::Store attempt = agent.with_prefix("/worker/attempt_3");
  EXPECT_EQ(attempt.get("tessera/world/1"), "2");
}

TEST(DistCli, GlooBindsToTheGivenInterface) {
  const std::string dir = fresh_dir("dist_cli_iface");
  auto r =
      shell(workers(2, std::string("train --dist ddp --epochs 1 --dist-iface lo ") + kQuick, dir));
  EXPECT_NE(r.output.find("rank 0 exit 0"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("rank 1 exit 0"), std::string::npos) << r.output;
  r = shell(env(0, 1, tessera::dist::find_free_port()) + binary() +
            "train --dist ddp --dist-iface no-such-nic0 " + kQuick);
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("cannot bind the Gloo transport to interface 'no-such-nic0'"),
            std::string::npos)
      << r.output;
}

TEST(DistCli, Bf16TrainsUnderDdpPipelineAndSdp) {
  const std::string dir = fresh_dir("dist_cli_bf16");
  // TESSERA_CPU_BF16=1: bf16 runs (emulated by oneDNN) on a CI machine without avx512_bf16.
  const std::string sdp = "--dist sdp --sdp-level neuron --coverage 0.5";
  const std::vector<std::pair<std::string, std::string>> methods = {
      {"ddp", "--dist ddp"},
      {"pipeline", "--dist pipeline --micro-batches 2"},
      {"sdp", sdp},
      {"ddp_bf16_comm", "--dist ddp --comm-precision bf16"},
      {"sdp_bf16_comm", sdp + " --comm-precision bf16"}};
  std::map<std::string, int64_t> bytes;
  for (const auto& [name, flags] : methods) {
    const std::string run = dir + "/" + name;
    std::filesystem::create_directories(run);
    const auto r = shell("export TESSERA_CPU_BF16=1\n" +
                         workers(2,
                                 "train " + flags + " --precision bf16 --epochs 1 --run-dir " +
                                     run + "/run " + kQuick,
                                 run));
    ASSERT_NE(r.output.find("rank 0 exit 0"), std::string::npos) << name << "\n" << r.output;
    ASSERT_NE(r.output.find("rank 1 exit 0"), std::string::npos) << name << "\n" << r.output;
    const auto summary = read_json(run + "/run/summary.json");
    EXPECT_EQ(summary["precision"], "bf16") << name;
    EXPECT_TRUE(std::isfinite(summary["test_loss"].get<double>())) << name;
    bytes[name] = summary["comm_bytes_per_step"].get<int64_t>();
    // Activations cross the pipeline's cut in fp32 (a float per value, as in an fp32 run).
    if (name == "pipeline") {
      EXPECT_EQ(summary["comm_bytes_per_step"].get<int64_t>(),
                2 * 64 * 32 * 4 + 2 * 16);  // + the non-finite ballot
    }
  }
  // Gradients sent as bf16: half the bytes, but for the float32 sample counts and the per-step
  // bookkeeping (exact counts: DataParallel and ProcessGroup tests). SDP at C = 0.5 on two
  // workers shares only the output biases, so its bookkeeping weighs more.
  const double ddp_ratio = static_cast<double>(bytes["ddp_bf16_comm"]) / bytes["ddp"];
  EXPECT_GT(ddp_ratio, 0.45);
  EXPECT_LT(ddp_ratio, 0.55);
  EXPECT_LT(bytes["sdp_bf16_comm"], bytes["sdp"]);
}

TEST(DistCli, LossScalingTrainsExactlyAsWithoutItUnderDdpPipelineAndSdp) {
  const std::string dir = fresh_dir("dist_cli_loss_scale");
  // Scaled gradients are reduced (DDP, SDP's holder groups) or sent back across the cut (the
  // pipeline) and unscaled by powers of two: with nothing overflowing, every method trains the
  // same weights as without scaling.
  const std::vector<std::pair<std::string, std::string>> methods = {
      {"ddp", "--dist ddp"},
      {"pipeline", "--dist pipeline --micro-batches 2"},
      {"sdp", "--dist sdp --sdp-level neuron --coverage 0.5"}};
  for (const auto& [name, flags] : methods) {
    std::map<std::string, nlohmann::json> summaries;
    for (const std::string scale : {"off", "dynamic"}) {
      const std::string run = dir + "/" + name + "_" + scale;
      std::filesystem::create_directories(run);
      const auto r = shell(workers(2,
                                   "train " + flags + " --loss-scale " + scale +
                                       " --epochs 2 --run-dir " + run + "/run " + kQuick,
                                   run));
      ASSERT_NE(r.output.find("rank 0 exit 0"), std::string::npos) << name << "\n" << r.output;
      ASSERT_NE(r.output.find("rank 1 exit 0"), std::string::npos) << name << "\n" << r.output;
      summaries[scale] = read_json(run + "/run/summary.json");
    }
    EXPECT_EQ(summaries["off"]["loss_scale"], "off") << name;
    EXPECT_EQ(summaries["dynamic"]["loss_scale"]["final"], 65536.0) << name;
    EXPECT_EQ(summaries["dynamic"]["loss_scale"]["backoffs"], 0) << name;
    EXPECT_EQ(summaries["dynamic"]["train_loss"], summaries["off"]["train_loss"]) << name;
    EXPECT_EQ(summaries["dynamic"]["test_loss"], summaries["off"]["test_loss"]) << name;
  }
}
