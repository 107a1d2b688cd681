// Training progress: a one-line bar redrawn in place on a terminal (epoch, step, loss, samples/s,
// ETA), or a plain log line every `log_every` steps when the output is not a terminal, or, under a
// launcher that draws its workers' progress live (progress_board.h), a record line for it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

#include "tessera/metrics/progress_board.h"
#include "tessera/metrics/timer.h"

namespace tessera::metrics {

enum class ProgressMode {
  Lines,     // a plain line every log_every steps (a pipe or a file)
  Terminal,  // one line redrawn in place
  Records,   // a record line for the launcher (at most four a second, and the epoch's last step)
};

class Progress {
 public:
  // `out` is usually stderr. The mode defaults to Records under a live launcher
  // (live_progress_requested()), else Terminal if isatty(out), else Lines. Throws
  // tessera::UsageError when log_every < 1.
  Progress(std::FILE* out, int64_t log_every = 100);
  Progress(std::FILE* out, int64_t log_every, bool interactive);  // Terminal or Lines
  Progress(std::FILE* out, int64_t log_every, ProgressMode mode);
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

  ProgressMode mode() const { return mode_; }

  // Formats seconds as "1m05s" / "2h03m" / "42s" (rounded to the second; negative or non-finite
  // values give "?").
  static std::string format_duration(double seconds);

 private:
  ProgressState state_at(int64_t step, double loss, double samples_per_second,
                         double elapsed_seconds) const;
  // Whether a redraw (Terminal) or a record (Records) is due: not more often than `interval`.
  bool due(int64_t step, double elapsed_seconds, double interval);
  void draw_bar(const ProgressState& state);
  void close_line();

  std::FILE* out_;
  int64_t log_every_;
  ProgressMode mode_;
  int64_t epoch_ = 0, total_epochs_ = 0, steps_in_epoch_ = 0;
  Timer epoch_timer_;
  double last_draw_seconds_ = 0.0;  // epoch time of the last redraw or record
  bool drawn_ = false;              // anything drawn or recorded in this epoch
  bool line_open_ = false;          // a bar is on screen without its newline
  std::size_t line_width_ = 0;      // length of that bar, to blank a longer previous one
};

}  // namespace tessera::metrics
