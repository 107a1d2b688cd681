// The clock of a run's time-to-accuracy figures: wall seconds since the run started, which every
// evaluation records as elapsed_seconds (metrics.jsonl's epoch records, summary.json's history).
#pragma once

#include <chrono>

namespace tessera::metrics {

class RunClock {
 public:
  // Starts now.
  RunClock() : start_(std::chrono::steady_clock::now()) {}
  // Started when this process did (before main), so data loading and process-group set-up count.
  static RunClock since_process_start();

  double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }
  // Moves the start `seconds` earlier: a resumed run continues from its checkpointed time.
  void add(double seconds) {
    start_ -= std::chrono::duration_cast<std::chrono::steady_clock::duration>(
        std::chrono::duration<double>(seconds));
  }

 private:
  std::chrono::steady_clock::time_point start_;
};

}  // namespace tessera::metrics
