// `tessera launch -n N [--nnodes M --node-rank R --master-addr A --master-port P] -- tessera ...`:
// starts this node's N workers with torchrun's environment, prefixes their output with the rank,
// and stops them all when one fails (dist::launch_workers); with --max-restarts it then starts
// them all again, to resume from the run's last checkpoint (dist/restart_checkpoint).
#include <algorithm>
#include <cstdio>
#include <iostream>

#include "tessera/cli/checked_flags.h"
#include "tessera/cli/commands.h"
#include "tessera/cli/options.h"
#include "tessera/core/error.h"
#include "tessera/dist/local_launcher.h"
#include "tessera/dist/rendezvous.h"

namespace tessera::cli {
namespace {

struct LaunchFlags {
  int64_t workers = 1;
  int64_t nnodes = 1;
  int64_t node_rank = 0;
  std::string master_addr = "127.0.0.1";
  int64_t master_port = 0;  // 0: a free port (one node only)
  double grace_seconds = 5.0;
  int64_t max_restarts = 0;
};

// The environment torchrun gives worker `local` of this node.
// `attempt` counts the restarts so far (TESSERA_RESTART_COUNT, as torchrun's
// TORCHELASTIC_RESTART_COUNT): a restarted worker resumes from the run's checkpoint.
std::vector<std::pair<std::string, std::string>> worker_env(const LaunchFlags& f, int64_t local,
                                                            int64_t port, int64_t attempt) {
  const int64_t rank = f.node_rank * f.workers + local;
  return {{"RANK", std::to_string(rank)},
          {"TESSERA_RESTART_COUNT", std::to_string(attempt)},
          {"TESSERA_MAX_RESTARTS", std::to_string(f.max_restarts)},
          {"WORLD_SIZE", std::to_string(f.workers * f.nnodes)},
          {"LOCAL_RANK", std::to_string(local)},
          {"LOCAL_WORLD_SIZE", std::to_string(f.workers)},
          {"GROUP_RANK", std::to_string(f.node_rank)},
          {"GROUP_WORLD_SIZE", std::to_string(f.nnodes)},
          {"MASTER_ADDR", f.master_addr},
          {"MASTER_PORT", std::to_string(port)}};
}

}  // namespace

int launch_command(const Args& args) {
  const auto separator = std::find(args.begin(), args.end(), "--");
  const Args own(args.begin(), separator);
  Args program(separator == args.end() ? separator : separator + 1, args.end());
  LaunchFlags f;
  auto app = make_app("Start N local workers of a distributed run (torchrun's environment).",
                      "tessera launch");
  app->add_option("-n,--nproc-per-node", f.workers, "workers on this node")
      ->capture_default_str()
      ->check(integer_in(1, 4096));
  app->add_option("--nnodes", f.nnodes, "number of nodes")
      ->capture_default_str()
      ->check(integer_in(1, 1 << 16));
  app->add_option("--node-rank", f.node_rank, "this node's index")
      ->capture_default_str()
      ->check(integer_in(0, (1 << 16) - 1));
  app->add_option("--master-addr", f.master_addr, "address of rank 0's node")
      ->capture_default_str();
  app->add_option("--master-port", f.master_port,
                  "port of the rendezvous store (default: a free one; required with --nnodes > 1)")
      ->check(integer_in(0, 65535));
  app->add_option("--grace", f.grace_seconds,
                  "seconds between SIGTERM and SIGKILL when stopping workers")
      ->capture_default_str()
      ->check(real_in({0.0, 3600.0, false, false}));
  app->add_option("--max-restarts", f.max_restarts,
                  "when a worker fails, stop the others and start them all again from the run's "
                  "last checkpoint, up to N times (like torchrun's)")
      ->capture_default_str()
      ->check(integer_in(0, 1000));
  app->footer("usage: tessera launch -n 2 -- tessera train --dist ddp ...");
  if (!parse(*app, own)) return 0;
  require(f.workers >= 1, "-n must be at least 1");
  require(f.nnodes >= 1, "--nnodes must be at least 1");
  require(f.node_rank >= 0 && f.node_rank < f.nnodes, "--node-rank must lie in [0, --nnodes)");
  require(f.master_port >= 0 && f.master_port <= 65535, "--master-port must lie in 0..65535");
  require(f.master_port > 0 || f.nnodes == 1, "--master-port is required with --nnodes > 1");
  require(f.grace_seconds >= 0, "--grace must be non-negative");
  require(f.max_restarts >= 0, "--max-restarts must be non-negative");
  require(!program.empty(), "no command to run: tessera launch -n N -- tessera train ...");
  // "tessera" means this very binary, whether or not it is on PATH.
  if (program[0] == "tessera") program[0] = dist::current_executable();
  dist::LaunchOptions options;
  options.grace_seconds = f.grace_seconds;
  // The launcher numbers this node's workers from 0: on several nodes that is the local rank.
  if (f.nnodes > 1) options.label = "node " + std::to_string(f.node_rank) + " local rank";
  for (int64_t attempt = 0;; ++attempt) {
    // A fresh port for every attempt on one node: the last attempt's store may still hold its own.
    const int64_t port =
        f.master_port > 0
            ? f.master_port
            : dist::find_free_port(dist::is_loopback(f.master_addr) ? "127.0.0.1" : "0.0.0.0");
    std::vector<dist::WorkerCommand> workers;
    for (int64_t local = 0; local < f.workers; ++local)
      workers.push_back({program, worker_env(f, local, port, attempt)});
    const dist::LaunchResult result = dist::launch_workers(workers, options);
    if (result.ok()) return 0;
    const int code = result.exit_code() != 0 ? result.exit_code() : 1;
    // An interruption (Ctrl-C, SIGTERM) is the user's wish, not a failure to recover from.
    if (result.failed_rank < 0 || attempt == f.max_restarts) {
      std::cerr << "tessera launch: " << result.failure << "; the other workers were stopped";
      if (result.failed_rank >= 0 && f.max_restarts > 0)
        std::cerr << "; giving up after " << f.max_restarts << " restart"
                  << (f.max_restarts == 1 ? "" : "s") << " (--max-restarts " << f.max_restarts
                  << ")";
      std::cerr << "\n";
      return code;
    }
    std::cerr << "tessera launch: restart " << attempt + 1 << " of " << f.max_restarts << ": "
              << result.failure << "; the other workers were stopped; starting all " << f.workers
              << " again from the run's last checkpoint\n";
  }
}

}  // namespace tessera::cli
