#include "tessera/dist/live_progress.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace tessera::dist {
namespace {

// The board is redrawn at most this often; other output and exits redraw at once.
constexpr double kRedrawSeconds = 0.1;

void write_all(int fd, const std::string& text) {
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // the terminal is gone: nothing sensible to do
    done += static_cast<size_t>(n);
  }
}

}  // namespace

bool is_live_terminal(int fd) {
  const char* term = std::getenv("TERM");
  return ::isatty(fd) == 1 && !(term != nullptr && std::strcmp(term, "dumb") == 0);
}

size_t terminal_width(int fd, size_t fallback) {
  winsize size{};
  if (::ioctl(fd, TIOCGWINSZ, &size) == 0 && size.ws_col > 0) return size.ws_col;
  return fallback;
}

LiveProgress::LiveProgress(int fd, std::vector<std::string> labels, size_t width)
    : fd_(fd), width_(width > 0 ? width : terminal_width(fd)) {
  for (auto& label : labels) workers_.push_back({std::move(label), std::nullopt, ""});
  draw();
}

LiveProgress::~LiveProgress() {
  erase();
  draw();
}

void LiveProgress::worker_line(size_t worker, const std::string& line, int target_fd,
                               const std::string& prefix) {
  if (worker >= workers_.size()) return;
  if (auto state = metrics::parse_progress_record(line)) {
    workers_[worker].state = *state;
    redraw_if_due();
    return;
  }
  erase();
  write_all(target_fd, prefix + line + "\n");
  draw();
}

void LiveProgress::worker_exited(size_t worker, const std::string& status) {
  if (worker >= workers_.size()) return;
  workers_[worker].status = status;
  erase();
  draw();
}

void LiveProgress::erase() {
  // Up to the board's first line ("\x1b[<n>F"), then clear to the end of the screen ("\x1b[J").
  if (lines_on_screen_ > 0) write_all(fd_, "\x1b[" + std::to_string(lines_on_screen_) + "F\x1b[J");
  lines_on_screen_ = 0;
}

void LiveProgress::draw() {
  std::string text;
  // One column spare: a line exactly as wide as the terminal would wrap on some terminals.
  for (const auto& line : metrics::render_board(workers_, width_ > 1 ? width_ - 1 : 1))
    text += line + "\x1b[K\n";
  write_all(fd_, text);
  lines_on_screen_ = workers_.size();
  since_draw_.restart();
}

void LiveProgress::redraw_if_due() {
  if (since_draw_.seconds() < kRedrawSeconds) return;
  erase();
  draw();
}

}  // namespace tessera::dist
