// Training progress: a one-line bar redrawn in place on a terminal (epoch, step, loss, samples/s,
// ETA), or a plain log line every `log_every` steps when the output is not a terminal.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

#include "tessera/metrics/timer.h"

namespace tessera::metrics {

class Progress {
 public:
  // `out` is usually stderr; `interactive` defaults to isatty(out). Throws tessera::UsageError
  // when log_every < 1.
  Progress(std::FILE* out, int64_t log_every = 100);
  Progress(std::FILE* out, int64_t log_every, bool interactive);
  // Ends a bar line that is still open, so that whatever is printed next starts on a new line.
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void start_epoch(int64_t epoch, int64_t total_epochs, int64_t steps_in_epoch);
  // `step` counts the steps done in this epoch (1..steps_in_epoch). The ETA for the rest of the
  // epoch extrapolates the time since start_epoch. A terminal bar is redrawn at most ten times a
  // second, and always at the epoch's last step.
  void step(int64_t step, double loss, double samples_per_second);
  // As step(), with the time since the epoch started given instead of measured.
  void step_at(int64_t step, double loss, double samples_per_second, double elapsed_seconds);
  // Ends the epoch's line (terminal) with a summary.
  void end_epoch(const std::string& summary);

  // Formats seconds as "1m05s" / "2h03m" / "42s" (rounded to the second; negative or non-finite
  // values give "?").
  static std::string format_duration(double seconds);

 private:
  std::string status_line(int64_t step, double loss, double samples_per_second,
                          double elapsed_seconds) const;
  void draw_bar(int64_t step, const std::string& status);
  void close_line();

  std::FILE* out_;
  int64_t log_every_;
  bool interactive_;
  int64_t epoch_ = 0, total_epochs_ = 0, steps_in_epoch_ = 0;
  Timer epoch_timer_;
  double last_draw_seconds_ = 0.0;  // epoch time of the last redraw
  bool line_open_ = false;          // a bar is on screen without its newline
  std::size_t line_width_ = 0;      // length of that bar, to blank a longer previous one
};

}  // namespace tessera::metrics
