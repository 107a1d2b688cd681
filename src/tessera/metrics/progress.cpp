#include "tessera/metrics/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>

#include "tessera/core/error.h"

namespace tessera::metrics {
namespace {

constexpr double kRedrawSeconds = 0.1;
// Records cross a pipe and make the launcher redraw every worker's line: fewer suffice.
constexpr double kRecordSeconds = 0.25;

ProgressMode default_mode(std::FILE* out) {
  if (live_progress_requested()) return ProgressMode::Records;
  return out != nullptr && isatty(fileno(out)) == 1 ? ProgressMode::Terminal : ProgressMode::Lines;
}

}  // namespace

Progress::Progress(std::FILE* out, int64_t log_every)
    : Progress(out, log_every, default_mode(out)) {}

Progress::Progress(std::FILE* out, int64_t log_every, bool interactive)
    : Progress(out, log_every, interactive ? ProgressMode::Terminal : ProgressMode::Lines) {}

Progress::Progress(std::FILE* out, int64_t log_every, ProgressMode mode)
    : out_(out), log_every_(log_every), mode_(mode) {
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
  drawn_ = false;
  epoch_timer_.restart();
}

void Progress::step(int64_t step, double loss, double samples_per_second) {
  step_at(step, loss, samples_per_second, epoch_timer_.seconds());
}

bool Progress::due(int64_t step, double elapsed_seconds, double interval) {
  // Redrawing costs a write and a flush; at thousands of steps a second, a few a second suffice.
  const bool is_due =
      !drawn_ || step == steps_in_epoch_ || elapsed_seconds - last_draw_seconds_ >= interval;
  if (is_due) {
    last_draw_seconds_ = elapsed_seconds;
    drawn_ = true;
  }
  return is_due;
}

void Progress::step_at(int64_t step, double loss, double samples_per_second,
                       double elapsed_seconds) {
  const ProgressState state = state_at(step, loss, samples_per_second, elapsed_seconds);
  switch (mode_) {
    case ProgressMode::Terminal:
      if (due(step, elapsed_seconds, kRedrawSeconds)) draw_bar(state);
      break;
    case ProgressMode::Records:
      if (!due(step, elapsed_seconds, kRecordSeconds)) break;
      std::fprintf(out_, "%s\n", format_progress_record(state).c_str());
      std::fflush(out_);
      break;
    case ProgressMode::Lines:
      if (step % log_every_ != 0 && step != steps_in_epoch_) break;
      std::fprintf(out_, "epoch %lld/%lld %s\n", static_cast<long long>(epoch_),
                   static_cast<long long>(total_epochs_), status_text(state).c_str());
      std::fflush(out_);
      break;
  }
}

void Progress::end_epoch(const std::string& summary) {
  close_line();
  if (!summary.empty()) std::fprintf(out_, "%s\n", summary.c_str());
  std::fflush(out_);
}

ProgressState Progress::state_at(int64_t step, double loss, double samples_per_second,
                                 double elapsed_seconds) const {
  ProgressState state;
  state.epoch = epoch_;
  state.total_epochs = total_epochs_;
  state.step = step;
  state.steps_in_epoch = steps_in_epoch_;
  state.loss = loss;
  state.samples_per_second = samples_per_second;
  state.elapsed_seconds = elapsed_seconds;
  return state;
}

void Progress::draw_bar(const ProgressState& state) {
  // '\r' returns to the start of the bar; spaces blank the tail of a longer previous one.
  std::string line = bar_text(state);
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
