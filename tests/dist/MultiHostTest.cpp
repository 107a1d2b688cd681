// DDP and SDP across two hosts made of network namespaces (scripts/netns-cluster.sh): each host
// starts `tessera launch --nnodes 2 --node-rank i --master-addr 10.231.0.1` with no
// GLOO_SOCKET_IFNAME, so the workers must find their address on the route to the master
// themselves. A run across hosts computes exactly what the same world size computes on one host
// (same seed, same numbers), and the hosts' links carry at least the bytes tessera counts. Needs
// root; where network namespaces cannot be made the tests are skipped with the reason.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../command_output.h"
#include "../test_support.h"

namespace {

using Result = tessera::testing::CommandResult;
using tessera::testing::fresh_dir;
using tessera::testing::read_json;

const std::string kTinyRun =
    "--data synthetic --synthetic-train 512 --synthetic-test 128 --synthetic-shape 1,8,8 "
    "--hidden 32,32 --batch-size 64 --threads 1 --epochs 1 --seed 3";

// The script's exit status when namespaces cannot be made here.
constexpr int kUnavailable = 77;

// The namespaces named in the script's output ("namespaces tsr-<pid>-h*") that still exist.
std::string leftovers(const std::string& output) {
  const size_t at = output.find("namespaces tsr-");
  if (at == std::string::npos) return "";
  const size_t begin = at + std::string("namespaces ").size();
  const std::string id = output.substr(begin, output.find("-h*", begin) - begin);
  return tessera::testing::run_command("ip netns list | grep '^" + id + "-'; ip -o link | grep '" +
                                       id + "'")
      .output;
}

// scripts/netns-cluster.sh with `options`, running `command` on every host; SIGTERM if it runs
// past `limit` seconds (never SIGKILL first, so that its trap still removes the namespaces).
// Checks that it left no namespace or link behind.
Result cluster(const std::string& options, const std::string& command, int limit = 240) {
  auto r = tessera::testing::run_command("timeout -k 30 " + std::to_string(limit) + " bash " +
                                         std::string(TESSERA_SOURCE_DIR) +
                                         "/scripts/netns-cluster.sh --tessera " + TESSERA_BINARY +
                                         " --timeout 150 " + options + " -- " + command + " 2>&1");
  EXPECT_EQ(leftovers(r.output), "") << r.output;
  return r;
}

// The same command on one host (loopback) with `workers` workers.
Result one_host(int workers, const std::string& command) {
  return tessera::testing::run_command("timeout -s KILL 150 " + std::string(TESSERA_BINARY) +
                                       " launch -n " + std::to_string(workers) + " -- " + command +
                                       " 2>&1");
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Everything the hosts printed, for failure messages.
std::string host_logs(const std::string& out, int hosts) {
  std::string text;
  for (int i = 0; i < hosts; ++i)
    text += "--- host " + std::to_string(i) + ":\n" +
            slurp(out + "/h" + std::to_string(i) + "/launch.log");
  return text;
}

// net.tsv's rows: host -> {tx_bytes, rx_bytes}.
std::vector<std::pair<int64_t, int64_t>> link_bytes(const std::string& out) {
  std::ifstream in(out + "/net.tsv");
  std::string header, address;
  std::getline(in, header);
  std::vector<std::pair<int64_t, int64_t>> rows;
  int host = 0;
  int64_t tx = 0, rx = 0, packets = 0;
  while (in >> host >> address >> tx >> rx >> packets) rows.emplace_back(tx, rx);
  return rows;
}

bool is_root() {
  return geteuid() == 0;
}

// Runs `command` across 2 hosts of `per_host` workers and on one host of 2 x per_host workers,
// and checks that both finish with the same losses and accuracy. Returns the cluster's output
// directory (empty if skipped: see `skipped`).
std::string compare_with_one_host(const std::string& name, int per_host, const std::string& command,
                                  std::string* skipped) {
  const std::string dir = fresh_dir(name);
  const std::string out = dir + "/cluster";
  const auto r = cluster("--hosts 2 -n " + std::to_string(per_host) + " --out " + out,
                         command + " --run-dir {dir}/run");
  if (r.code == kUnavailable) {
    *skipped = r.output;
    return "";
  }
  EXPECT_EQ(r.code, 0) << r.output << host_logs(out, 2);
  if (r.code != 0) return "";
  // Rank 0 lives on host 0 and writes the run directory.
  const auto multi = read_json(out + "/h0/run/summary.json");
  EXPECT_EQ(multi["world_size"], 2 * per_host);
  const auto local = one_host(2 * per_host, command + " --run-dir " + dir + "/local");
  EXPECT_EQ(local.code, 0) << local.output;
  if (local.code != 0) return "";
  const auto single = read_json(dir + "/local/summary.json");
  for (const char* key : {"train_loss", "test_loss", "test_accuracy"})
    EXPECT_EQ(multi[key].get<double>(), single[key].get<double>()) << key;
  EXPECT_EQ(multi["comm_bytes_per_step"], single["comm_bytes_per_step"]);
  return out;
}

}  // namespace

TEST(MultiHost, DdpAcrossTwoHostsComputesWhatOneHostComputes) {
  if (!is_root()) GTEST_SKIP() << "needs root to make network namespaces (CI runs as root)";
  std::string skipped;
  const std::string out = compare_with_one_host("dist_multihost_ddp", 1,
                                                "tessera train --dist ddp " + kTinyRun, &skipped);
  if (!skipped.empty()) GTEST_SKIP() << skipped;
  if (out.empty()) return;  // failed above
  // One worker per host: every byte of the collectives crosses the link. What eth0 sent is at
  // least what tessera counts (plus TCP/IP and Ethernet headers, Gloo's framing and the store).
  const auto summary = read_json(out + "/h0/run/summary.json");
  const auto rows = link_bytes(out);
  ASSERT_EQ(rows.size(), 2u);
  for (int host = 0; host < 2; ++host) {
    const int64_t counted = summary["ranks"][host]["comm_bytes"].get<int64_t>();
    const int64_t sent = rows[host].first;
    EXPECT_GE(sent, counted) << "host " << host;
    std::cout << "host " << host << ": eth0 sent " << sent << " bytes, tessera counted " << counted
              << " (ratio " << static_cast<double>(sent) / static_cast<double>(counted) << ")\n";
  }
}

TEST(MultiHost, SdpAcrossTwoHostsOfTwoWorkersComputesWhatOneHostComputes) {
  if (!is_root()) GTEST_SKIP() << "needs root to make network namespaces (CI runs as root)";
  std::string skipped;
  const std::string out = compare_with_one_host(
      "dist_multihost_sdp", 2,
      "tessera train --dist sdp --sdp-level neuron --coverage 0.5 --sdp-eval ensemble " + kTinyRun,
      &skipped);
  if (!skipped.empty()) GTEST_SKIP() << skipped;
  if (out.empty()) return;
  // Every worker saves its subnetwork where it runs, host 1's into a run directory that only
  // it has (rank 0 opens the run directory on host 0).
  for (const char* file :
       {"/h0/run/subnet0.pt", "/h0/run/subnet1.pt", "/h1/run/subnet2.pt", "/h1/run/subnet3.pt"})
    EXPECT_TRUE(std::filesystem::exists(out + file)) << file;
  const auto summary = read_json(out + "/h0/run/summary.json");
  ASSERT_EQ(summary["ranks"].size(), 4u);
  for (const auto& rank : summary["ranks"]) EXPECT_GT(rank["comm_bytes"].get<int64_t>(), 0);
  // Ranks 2 and 3 are on host 1: their traffic with host 0 went over the links.
  const auto rows = link_bytes(out);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_GT(rows[1].first, 0);
  EXPECT_GT(rows[1].second, 0);
}

TEST(MultiHost, NoRouteToTheMasterIsANamedErrorOnEveryHost) {
  if (!is_root()) GTEST_SKIP() << "needs root to make network namespaces (CI runs as root)";
  const std::string out = fresh_dir("dist_multihost_noroute") + "/cluster";
  const auto r = cluster("--hosts 2 --master-addr 10.231.9.9 --out " + out,
                         "tessera train --dist ddp " + kTinyRun);
  if (r.code == kUnavailable) GTEST_SKIP() << r.output;
  EXPECT_EQ(r.code, 1) << r.output << host_logs(out, 2);
  for (int host = 0; host < 2; ++host) {
    const std::string log = slurp(out + "/h" + std::to_string(host) + "/launch.log");
    EXPECT_NE(log.find("no route from this host to '10.231.9.9'"), std::string::npos) << log;
    EXPECT_NE(log.find("--dist-iface"), std::string::npos) << log;
  }
  EXPECT_LT(r.seconds, 60) << r.output;
}

TEST(MultiHost, AnInterfaceNamedWithDistIfaceOverridesTheRoute) {
  if (!is_root()) GTEST_SKIP() << "needs root to make network namespaces (CI runs as root)";
  // eth0 is each host's link: the run goes through it.
  std::string dir = fresh_dir("dist_multihost_iface");
  auto r = cluster("--hosts 2 --out " + dir + "/eth0",
                   "tessera train --dist ddp --dist-iface eth0 " + kTinyRun);
  if (r.code == kUnavailable) GTEST_SKIP() << r.output;
  EXPECT_EQ(r.code, 0) << r.output << host_logs(dir + "/eth0", 2);
  // An interface the hosts do not have is what every worker tries, and names.
  r = cluster("--hosts 2 --out " + dir + "/none",
              "tessera train --dist ddp --dist-iface nosuch0 " + kTinyRun);
  EXPECT_NE(r.code, 0) << r.output;
  for (int host = 0; host < 2; ++host) {
    const std::string log = slurp(dir + "/none/h" + std::to_string(host) + "/launch.log");
    EXPECT_NE(log.find("interface 'nosuch0'"), std::string::npos) << log;
  }
  EXPECT_LT(r.seconds, 60) << r.output;
}

TEST(MultiHost, AStoppedClusterRemovesEverythingItMade) {
  if (!is_root()) GTEST_SKIP() << "needs root to make network namespaces (CI runs as root)";
  const std::string out = fresh_dir("dist_multihost_stop") + "/cluster";
  // SIGTERM after 5 s, as Ctrl-C or a CI timeout would stop it, while the hosts still run.
  const auto r = cluster("--hosts 2 --out " + out, "sh -c 'sleep 100'", 5);
  if (r.code == kUnavailable) GTEST_SKIP() << r.output;
  EXPECT_EQ(r.code, 124) << r.output;  // timeout's status for a command it stopped
  EXPECT_NE(r.output.find("namespaces tsr-"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("netns-cluster: terminated"), std::string::npos) << r.output;
  EXPECT_LT(r.seconds, 30) << r.output;
  // cluster() checked that no namespace or link is left.
}

TEST(MultiHost, AHostWhoseLinkGoesDownIsNamedWithinTheTimeout) {
  if (!is_root()) GTEST_SKIP() << "needs root to make network namespaces (CI runs as root)";
  const std::string out = fresh_dir("dist_multihost_down") + "/cluster";
  // A run that would go on for long; host 1's link goes down 2 s after rank 0 reported its first
  // epoch, so that the workers train by then however slowly they started (a sanitizer build).
  const auto r = cluster("--hosts 2 --down 1:2 --down-when 'epoch 1:' --out " + out,
                         "tessera train --dist ddp --dist-timeout 5 --epochs 100000 "
                         "--data synthetic --synthetic-train 512 --synthetic-test 128 "
                         "--synthetic-shape 1,8,8 --hidden 32,32 --batch-size 64 --threads 1",
                         120);
  if (r.code == kUnavailable) GTEST_SKIP() << r.output;
  EXPECT_NE(r.code, 0) << r.output;
  const std::string log0 = slurp(out + "/h0/launch.log");
  const std::string log1 = slurp(out + "/h1/launch.log");
  // Every worker said where Gloo binds, at start.
  EXPECT_NE(log0.find("rank 0 binds Gloo to address 10.231.0.1"), std::string::npos) << log0;
  EXPECT_NE(log1.find("rank 1 binds Gloo to address 10.231.0.2"), std::string::npos) << log1;
  // The host that stayed names the one that disappeared; that one names the host it lost.
  EXPECT_NE(log0.find("rank 1 (host "), std::string::npos) << log0;
  EXPECT_NE(log0.find("address 10.231.0.2) does not answer: its host is unreachable"),
            std::string::npos)
      << log0;
  EXPECT_NE(log1.find("address 10.231.0.1) does not answer"), std::string::npos) << log1;
  // Host 0 stopped within the timeout (5 s), the probe (about 2 s) and some slack.
  const std::string mark = "host 0 exited with ";
  const size_t at = r.output.find(mark);
  ASSERT_NE(at, std::string::npos) << r.output;
  const size_t comma = r.output.find(", ", at);
  ASSERT_NE(comma, std::string::npos) << r.output;
  const double seconds = std::stod(r.output.substr(comma + 2));
  EXPECT_LT(seconds, 5 + 2 + 5) << r.output << log0;
}
