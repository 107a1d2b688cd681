// The launcher's live view of its workers on a terminal: one line per worker, redrawn in place
// from the progress records the workers print (metrics/progress_board.h), with every other line
// the workers print scrolling above it.
#pragma once

#include <string>
#include <vector>

#include "tessera/metrics/progress_board.h"
#include "tessera/metrics/timer.h"

namespace tessera::dist {

class LiveProgress {
 public:
  // Draws on `fd` (a terminal) one line per label; `width`: the terminal's columns (0: ask it).
  LiveProgress(int fd, std::vector<std::string> labels, size_t width = 0);
  // Leaves the last board on screen.
  ~LiveProgress();
  LiveProgress(const LiveProgress&) = delete;
  LiveProgress& operator=(const LiveProgress&) = delete;

  // One line a worker printed (without its newline): a progress record updates its line, any
  // other line is written to `target_fd` above the board with `prefix` in front.
  void worker_line(size_t worker, const std::string& line, int target_fd,
                   const std::string& prefix);
  // The worker has exited: `status` ("done", "exited with status 1", ...) ends its line.
  void worker_exited(size_t worker, const std::string& status);

 private:
  void erase();
  void draw();
  void redraw_if_due();

  int fd_;
  size_t width_;
  std::vector<metrics::WorkerProgress> workers_;
  size_t lines_on_screen_ = 0;
  metrics::Timer since_draw_;
};

// Whether `fd` is a terminal that can redraw lines (not TERM=dumb): where a launcher draws live.
bool is_live_terminal(int fd);

// The columns of the terminal on `fd`, or `fallback` if it is not one.
size_t terminal_width(int fd, size_t fallback = 100);

}  // namespace tessera::dist
