#include "tessera/metrics/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>

#include "tessera/core/error.h"

namespace tessera::metrics {
namespace {

constexpr int64_t kBarWidth = 10;
constexpr double kRedrawSeconds = 0.1;

// "[#####.....]" for `done` of `total`.
std::string bar(int64_t done, int64_t total) {
  const int64_t filled =
      total > 0 ? std::clamp<int64_t>(done * kBarWidth / total, 0, kBarWidth) : 0;
  return "[" + std::string(static_cast<size_t>(filled), '#') +
         std::string(static_cast<size_t>(kBarWidth - filled), '.') + "]";
}

bool is_terminal(std::FILE* out) {
  return out != nullptr && isatty(fileno(out)) == 1;
}

}  // namespace

Progress::Progress(std::FILE* out, int64_t log_every)
    : Progress(out, log_every, is_terminal(out)) {}

Progress::Progress(std::FILE* out, int64_t log_every, bool interactive)
    : out_(out), log_every_(log_every), interactive_(interactive) {
  if (out_ == nullptr) throw Error("progress: no output stream");
  require(log_every_ >= 1, "log_every must be at least 1 (got " + std::to_string(log_every_) + ")");
}

Progress::~Progress() {
  close_line();
}

void Progress::start_epoch(int64_t epoch, int64_t total_epochs, int64_t steps_in_epoch) {
  close_line();
  epoch_ = epoch;
  total_epochs_ = total_epochs;
  steps_in_epoch_ = steps_in_epoch;
  last_draw_seconds_ = 0.0;
  epoch_timer_.restart();
}

void Progress::step(int64_t step, double loss, double samples_per_second) {
  step_at(step, loss, samples_per_second, epoch_timer_.seconds());
}

void Progress::step_at(int64_t step, double loss, double samples_per_second,
                       double elapsed_seconds) {
  if (interactive_) {
    // Redrawing costs a write and a flush; at thousands of steps a second, ten a second suffice.
    const bool due = !line_open_ || step == steps_in_epoch_ ||
                     elapsed_seconds - last_draw_seconds_ >= kRedrawSeconds;
    if (!due) return;
    last_draw_seconds_ = elapsed_seconds;
    draw_bar(step, status_line(step, loss, samples_per_second, elapsed_seconds));
  } else if (step % log_every_ == 0 || step == steps_in_epoch_) {
    std::fprintf(out_, "epoch %lld/%lld %s\n", static_cast<long long>(epoch_),
                 static_cast<long long>(total_epochs_),
                 status_line(step, loss, samples_per_second, elapsed_seconds).c_str());
    std::fflush(out_);
  }
}

void Progress::end_epoch(const std::string& summary) {
  close_line();
  if (!summary.empty()) std::fprintf(out_, "%s\n", summary.c_str());
  std::fflush(out_);
}

std::string Progress::status_line(int64_t step, double loss, double samples_per_second,
                                  double elapsed_seconds) const {
  std::string eta = "?";
  if (step > 0 && steps_in_epoch_ > 0) {
    const int64_t remaining = std::max<int64_t>(steps_in_epoch_ - step, 0);
    eta = format_duration(elapsed_seconds / static_cast<double>(step) *
                          static_cast<double>(remaining));
  }
  char text[160];
  std::snprintf(text, sizeof text, "step %lld/%lld loss %.4f %.0f samples/s ETA %s",
                static_cast<long long>(step), static_cast<long long>(steps_in_epoch_), loss,
                samples_per_second, eta.c_str());
  return text;
}

void Progress::draw_bar(int64_t step, const std::string& status) {
  // '\r' returns to the start of the bar; spaces blank the tail of a longer previous one.
  std::string line = "epoch " + std::to_string(epoch_) + "/" + std::to_string(total_epochs_) + " " +
                     bar(step, steps_in_epoch_) + " " + status;
  const size_t width = line.size();
  if (width < line_width_) line.append(line_width_ - width, ' ');
  std::fprintf(out_, "\r%s", line.c_str());
  std::fflush(out_);
  line_open_ = true;
  line_width_ = width;
}

void Progress::close_line() {
  if (!line_open_) return;
  std::fputc('\n', out_);
  std::fflush(out_);
  line_open_ = false;
  line_width_ = 0;
}

std::string Progress::format_duration(double seconds) {
  // Beyond ~31,000 years an ETA is meaningless and llround would overflow.
  if (!std::isfinite(seconds) || seconds < 0 || seconds > 1e12) return "?";
  const long long total = std::llround(seconds);
  char text[32];
  if (total < 60) {
    std::snprintf(text, sizeof text, "%llds", total);
  } else if (total < 3600) {
    std::snprintf(text, sizeof text, "%lldm%02llds", total / 60, total % 60);
  } else {
    std::snprintf(text, sizeof text, "%lldh%02lldm", total / 3600, total / 60 % 60);
  }
  return text;
}

}  // namespace tessera::metrics
