#include "tessera/metrics/progress_board.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <nlohmann/json.hpp>

#include "tessera/metrics/progress.h"

namespace tessera::metrics {
namespace {

constexpr int64_t kBarWidth = 10;
constexpr const char* kRecordPrefix = "@tessera-progress ";

// "[#####.....]" for `done` of `total`.
std::string bar(int64_t done, int64_t total) {
  const int64_t filled =
      total > 0 ? std::clamp<int64_t>(done * kBarWidth / total, 0, kBarWidth) : 0;
  return "[" + std::string(static_cast<size_t>(filled), '#') +
         std::string(static_cast<size_t>(kBarWidth - filled), '.') + "]";
}

std::string epoch_text(const ProgressState& s) {
  return "epoch " + std::to_string(s.epoch) + "/" + std::to_string(s.total_epochs);
}

}  // namespace

bool live_progress_requested() {
  const char* value = std::getenv(kLiveProgressEnv);
  return value != nullptr && std::strcmp(value, "1") == 0;
}

std::string status_text(const ProgressState& s) {
  std::string eta = "?";
  if (s.step > 0 && s.steps_in_epoch > 0) {
    const int64_t remaining = std::max<int64_t>(s.steps_in_epoch - s.step, 0);
    eta = Progress::format_duration(s.elapsed_seconds / static_cast<double>(s.step) *
                                    static_cast<double>(remaining));
  }
  char text[160];
  std::snprintf(text, sizeof text, "step %lld/%lld loss %.4f %.0f samples/s ETA %s",
                static_cast<long long>(s.step), static_cast<long long>(s.steps_in_epoch), s.loss,
                s.samples_per_second, eta.c_str());
  return text;
}

std::string bar_text(const ProgressState& s) {
  return epoch_text(s) + " " + bar(s.step, s.steps_in_epoch) + " " + status_text(s);
}

std::string format_progress_record(const ProgressState& s) {
  // Non-finite numbers are not JSON: a NaN loss travels as null and comes back as NaN.
  const auto number = [](double v) { return std::isfinite(v) ? nlohmann::json(v) : nullptr; };
  const nlohmann::json record = {{"epoch", s.epoch},
                                 {"epochs", s.total_epochs},
                                 {"step", s.step},
                                 {"steps", s.steps_in_epoch},
                                 {"loss", number(s.loss)},
                                 {"samples_per_second", number(s.samples_per_second)},
                                 {"elapsed", number(s.elapsed_seconds)}};
  return kRecordPrefix + record.dump();
}

std::optional<ProgressState> parse_progress_record(const std::string& line) {
  if (line.rfind(kRecordPrefix, 0) != 0) return std::nullopt;
  const nlohmann::json record =
      nlohmann::json::parse(line.substr(std::strlen(kRecordPrefix)), nullptr, false);
  if (!record.is_object()) return std::nullopt;
  const auto integer = [&](const char* key) {
    const auto it = record.find(key);
    return it != record.end() && it->is_number_integer() ? it->get<int64_t>() : int64_t{0};
  };
  const auto real = [&](const char* key) {
    const auto it = record.find(key);
    return it != record.end() && it->is_number() ? it->get<double>() : std::nan("");
  };
  ProgressState s;
  s.epoch = integer("epoch");
  s.total_epochs = integer("epochs");
  s.step = integer("step");
  s.steps_in_epoch = integer("steps");
  s.loss = real("loss");
  s.samples_per_second = real("samples_per_second");
  s.elapsed_seconds = real("elapsed");
  return s;
}

std::vector<std::string> render_board(const std::vector<WorkerProgress>& workers, size_t width) {
  std::vector<std::string> lines;
  for (const auto& w : workers) {
    std::string line = "[" + w.label + "] ";
    line += w.state ? bar_text(*w.state) : std::string("starting");
    if (!w.status.empty()) line += " | " + w.status;
    if (line.size() > width) line.resize(width);
    lines.push_back(line);
  }
  return lines;
}

}  // namespace tessera::metrics
