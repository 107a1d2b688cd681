// Live progress of several workers: a launcher that draws on a terminal sets
// TESSERA_LIVE_PROGRESS=1 in its workers' environment; their Progress then writes machine-readable
// records (one line each) instead of bars, and the launcher redraws one line per worker from them.
// Everything here is a pure function of the state, so the rendering is tested without a terminal.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace tessera::metrics {

// The environment variable (value "1") by which a launcher asks its workers for records.
inline constexpr const char* kLiveProgressEnv = "TESSERA_LIVE_PROGRESS";
// True when this process runs under such a launcher.
bool live_progress_requested();

// Where one worker stands in its epoch.
struct ProgressState {
  int64_t epoch = 0, total_epochs = 0;
  int64_t step = 0, steps_in_epoch = 0;  // steps done in this epoch, of steps_in_epoch
  double loss = 0.0;
  double samples_per_second = 0.0;
  double elapsed_seconds = 0.0;  // since the epoch started
};

// "step 50/100 loss 0.4321 1234 samples/s ETA 1m05s" (ETA: the rest of the epoch at the rate
// so far).
std::string status_text(const ProgressState& state);
// "epoch 2/3 [#####.....] step 50/100 ..." (a terminal's line).
std::string bar_text(const ProgressState& state);

// A record line (no newline): "@tessera-progress {...json...}".
std::string format_progress_record(const ProgressState& state);
// The state of a record line; nullopt for any other line (ordinary output).
std::optional<ProgressState> parse_progress_record(const std::string& line);

// One worker as the launcher knows it.
struct WorkerProgress {
  std::string label;                   // "rank 3"
  std::optional<ProgressState> state;  // none before its first record
  std::string status;                  // "" while running; "done", "exited with status 1", ...
};

// The board: one line per worker, "[rank 0] epoch 1/2 [###.......] step ..." (+ " | done" once it
// has exited), each cut to `width` columns so that no line wraps (a wrapped line would break the
// redraw, which moves the cursor up by the number of lines).
std::vector<std::string> render_board(const std::vector<WorkerProgress>& workers, size_t width);

}  // namespace tessera::metrics
