// Starts worker processes on this host and supervises them: every line they print is prefixed
// with their rank, and when one fails the others are stopped (SIGTERM, then SIGKILL after a grace
// period), so a dead worker never leaves the rest hanging. `tessera launch` and the parallel PNN
// schedule run their workers through this.
#pragma once

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

namespace tessera::dist {

struct WorkerCommand {
  std::vector<std::string> argv;  // argv[0] is the program, looked up in PATH if it has no '/'
  std::vector<std::pair<std::string, std::string>> env;  // set on top of this process's env
};

struct LaunchOptions {
  std::string label = "rank";  // output prefix "[rank 3] " and the name used in messages
  bool prefix_output = true;
  double grace_seconds = 5.0;  // after SIGTERM, before SIGKILL
  int stdout_fd = 1;           // where the workers' stdout / stderr lines go
  int stderr_fd = 2;
  // Draw the workers' progress on stderr_fd (a terminal) as one line per worker, redrawn in place
  // (live_progress.h): the workers get TESSERA_LIVE_PROGRESS=1 and print progress records.
  bool live_progress = false;
  size_t live_width = 0;  // the terminal's columns for the live lines (0: ask the terminal)
};

struct WorkerExit {
  int exit_code = 0;  // valid when signal == 0
  int signal = 0;     // the signal that ended the worker, 0 if it exited
  bool stopped_by_launcher = false;
};

struct LaunchResult {
  std::vector<WorkerExit> workers;
  int failed_rank = -1;  // the first worker to fail on its own; -1 if all succeeded
  std::string failure;   // e.g. "rank 1 was killed by signal 9 (Killed)"
  bool ok() const { return failed_rank < 0; }
  // 0 on success; the failed worker's exit code, or 128 + its signal.
  int exit_code() const;
};

// Runs the workers to completion (worker i is rank i). Throws tessera::Error if a worker cannot
// be started (the ones already started are stopped first). SIGINT / SIGTERM sent to this process
// while it waits are passed on to the workers.
LaunchResult launch_workers(const std::vector<WorkerCommand>& workers,
                            const LaunchOptions& options = {});

// A path that starts the running executable (for workers of the same binary), even if its file
// has been replaced since this process started.
std::string current_executable();

}  // namespace tessera::dist
