// Training progress: a one-line bar redrawn in place on a terminal (epoch, step, loss, samples/s,
// ETA), or a plain log line every `log_every` steps when the output is not a terminal.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

namespace tessera::metrics {

class Progress {
 public:
  // `out` is usually stderr; `interactive` defaults to isatty(out).
  Progress(std::FILE* out, int64_t log_every = 100);
  Progress(std::FILE* out, int64_t log_every, bool interactive);

  void start_epoch(int64_t epoch, int64_t total_epochs, int64_t steps_in_epoch);
  void step(int64_t step, double loss, double samples_per_second);
  // Ends the epoch's line (terminal) with a summary.
  void end_epoch(const std::string& summary);

  // Formats seconds as "1m05s" / "2h03m" / "42s".
  static std::string format_duration(double seconds);

 private:
  std::FILE* out_;
  int64_t log_every_;
  bool interactive_;
  int64_t epoch_ = 0, total_epochs_ = 0, steps_in_epoch_ = 0;
};

}  // namespace tessera::metrics
