#include "tessera/report/read_run.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "tessera/core/error.h"
#include "tessera/metrics/language_model.h"
#include "tessera/report/svg_plot.h"
#include "tessera/train/run_directory.h"

namespace tessera::report {
namespace {

namespace fs = std::filesystem;

// Cumulative epoch_seconds at the end of each epoch (index 0: epoch 1), from metrics.jsonl.
std::vector<double> cumulative_epoch_seconds(const std::vector<nlohmann::json>& records) {
  std::vector<double> cumulative;
  for (const auto& r : records) {
    if (r.value("type", "") != "epoch") continue;
    const double seconds = number_or_missing(r, "epoch_seconds");
    const double before = cumulative.empty() ? 0.0 : cumulative.back();
    cumulative.push_back(before + (std::isfinite(seconds) ? seconds : 0.0));
  }
  return cumulative;
}

// The training time before an evaluation at (possibly fractional) `epoch`: whole epochs'
// epoch_seconds, and a fraction of the current one's.
double wall_from_epochs(const std::vector<double>& cumulative, double epoch) {
  if (cumulative.empty() || !std::isfinite(epoch) || epoch <= 0) return kMissing;
  const auto current = static_cast<size_t>(std::ceil(epoch - 1e-9));  // 1-based
  if (current > cumulative.size()) return kMissing;
  const double start = current >= 2 ? cumulative[current - 2] : 0.0;
  const double length = cumulative[current - 1] - start;
  return start + (epoch - static_cast<double>(current - 1)) * length;
}

// Evaluations from summary.json's history (or, for runs without one, the epoch records).
std::vector<nlohmann::json> evaluation_records(const nlohmann::json& summary,
                                               const std::vector<nlohmann::json>& records) {
  std::vector<nlohmann::json> points;
  if (summary.contains("history") && summary["history"].is_array() && !summary["history"].empty()) {
    for (const auto& h : summary["history"]) points.push_back(h);
    return points;
  }
  const double epochs = number_or_missing(summary, "epochs");
  const double samples = number_or_missing(summary, "train_samples");
  for (const auto& r : records) {
    if (r.value("type", "") != "epoch" || !r.contains("test_accuracy")) continue;
    nlohmann::json point = r;
    point["train_samples"] = samples / epochs * number_or_missing(r, "epoch");
    points.push_back(point);
  }
  return points;
}

// A run evaluated only once, at its end (an SDP run evaluates the assembled model): that point.
nlohmann::json final_evaluation(const nlohmann::json& summary) {
  return {{"epoch", summary.value("epochs", 0.0)},
          {"train_samples", summary.value("train_samples", 0.0)},
          {"test_accuracy", summary.value("test_accuracy", 0.0)},
          {"test_loss", summary.value("test_loss", 0.0)}};
}

// Data-parallel workers (ddp, sdp) each train on their own shard, and summary.json's counts are
// rank 0's: the run's samples are every rank's. Other runs count each sample once.
double all_workers_factor(const Run& run, const nlohmann::json& summary) {
  if ((run.method != "ddp" && run.method != "sdp") || !summary.contains("ranks")) return 1.0;
  double all = 0.0;
  for (const auto& rank : summary["ranks"]) all += number_or_missing(rank, "train_samples");
  const double own = number_or_missing(summary, "train_samples");
  return own > 0 && all > 0 ? all / own : 1.0;
}

void add_evaluations(Run& run, const nlohmann::json& summary,
                     const std::vector<nlohmann::json>& records, double factor) {
  const double total_samples = number_or_missing(summary, "train_samples");
  const double flops_per_sample = number_or_missing(summary, "train_flops") / total_samples;
  double total_bytes = number_or_missing(summary, "total_comm_bytes");
  if (!std::isfinite(total_bytes)) total_bytes = number_or_missing(summary, "comm_bytes");
  const std::vector<double> cumulative = cumulative_epoch_seconds(records);
  std::vector<nlohmann::json> points = evaluation_records(summary, records);
  if (points.empty() && summary.contains("test_accuracy")) {
    points.push_back(final_evaluation(summary));
    run.notes.push_back("evaluated once, after training (the final model): one point per chart");
  }
  run.wall_measured = !points.empty();
  for (const auto& p : points)
    if (!p.contains("elapsed_seconds")) run.wall_measured = false;
  for (const auto& p : points) {
    Evaluation e;
    const double own_samples = number_or_missing(p, "train_samples");
    e.train_samples = factor * own_samples;
    e.train_flops = factor * flops_per_sample * own_samples;
    e.wall_seconds = run.wall_measured
                         ? number_or_missing(p, "elapsed_seconds")
                         : wall_from_epochs(cumulative, number_or_missing(p, "epoch"));
    e.bytes_sent = total_samples > 0 ? total_bytes * own_samples / total_samples : kMissing;
    e.test_accuracy = number_or_missing(p, "test_accuracy");
    e.test_loss = number_or_missing(p, "test_loss");
    if (run.language_model) e.bits_per_byte = metrics::bits_per_token(e.test_loss);
    run.evaluations.push_back(e);
  }
  if (!run.wall_measured && !points.empty())
    run.notes.push_back(
        "wall time is the sum of the epochs' epoch_seconds (training only, without evaluation): "
        "this run recorded no elapsed_seconds");
  if (std::isfinite(total_bytes) && total_bytes > 0)
    run.notes.push_back("bytes sent at an evaluation: the run's total, pro rata of its samples");
  if (factor != 1.0)
    run.notes.push_back(
        "samples and FLOPs are every worker's: rank 0's FLOPs per sample times "
        "all workers' samples" +
        std::string(run.method == "sdp" ? " (workers' subnetworks may differ)" : ""));
}

// Training loss against samples: the step records (each one batch's loss) where the run logged
// any, else the epochs' means (a run of fewer steps than --log-every logs no step).
void add_train_loss(Run& run, const nlohmann::json& summary,
                    const std::vector<nlohmann::json>& records, double factor) {
  const double samples = factor * number_or_missing(summary, "train_samples");
  const double per_step = samples / number_or_missing(summary, "steps");
  const double per_epoch = samples / number_or_missing(summary, "epochs");
  std::vector<std::pair<double, double>> steps, epochs;
  for (const auto& r : records) {
    const std::string type = r.value("type", "");
    if (type == "step")
      steps.emplace_back(per_step * number_or_missing(r, "step"), number_or_missing(r, "loss"));
    else if (type == "epoch")
      epochs.emplace_back(per_epoch * number_or_missing(r, "epoch"),
                          number_or_missing(r, "train_loss"));
  }
  run.train_loss = steps.empty() ? epochs : steps;
  std::stable_sort(run.train_loss.begin(), run.train_loss.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
}

WorkerMemory memory_of(const std::string& label, const nlohmann::json& figures) {
  WorkerMemory m;
  m.label = label;
  m.peak = number_or_missing(figures, "peak_tensor_bytes");
  m.split_known = figures.contains("param_bytes");
  if (m.split_known) {
    m.params = number_or_missing(figures, "param_bytes");
    m.grads = number_or_missing(figures, "grad_bytes");
    m.optimizer = number_or_missing(figures, "optimizer_state_bytes");
  }
  return m;
}

void add_memory(Run& run, const nlohmann::json& summary) {
  if (!summary.contains("ranks")) {
    run.memory.push_back(memory_of("worker 0", summary));
    return;
  }
  bool unsplit = false;
  for (const auto& rank : summary["ranks"]) {
    const int64_t r = rank.value("rank", int64_t{0});
    // Runs before the ranks recorded their split: rank 0's is the summary's own.
    WorkerMemory m = memory_of("rank " + std::to_string(r), rank);
    if (!m.split_known && r == 0) {
      m = memory_of("rank 0", summary);
      m.peak = number_or_missing(rank, "peak_tensor_bytes");
    }
    unsplit = unsplit || !m.split_known;
    run.memory.push_back(m);
  }
  if (unsplit)
    run.notes.push_back("some ranks recorded only their peak tensor memory, not its parts");
}

std::string percent(double fraction) {
  if (!std::isfinite(fraction)) return "-";
  char text[32];
  std::snprintf(text, sizeof text, "%.2f%%", 100.0 * fraction);
  return text;
}

void add_summary_rows(Run& run, const nlohmann::json& summary, const nlohmann::json& config,
                      double factor) {
  auto& rows = run.summary;
  std::string method = run.method;
  if (run.workers > 1) method += ", " + std::to_string(run.workers) + " workers";
  rows.emplace_back("method", method);
  if (config.contains("model") && config["model"].contains("arch")) {
    const double parameters = number_or_missing(summary, "parameters");
    rows.emplace_back(
        "model",
        config["model"]["arch"].get<std::string>() +
            (std::isfinite(parameters) ? ", " + format_si(parameters) + " parameters" : ""));
  }
  if (config.contains("data") && config["data"].is_string())
    rows.emplace_back("data", config["data"].get<std::string>());
  rows.emplace_back("epochs", fixed(number_or_missing(summary, "epochs"), "%.0f"));
  rows.emplace_back("samples trained",
                    format_si(factor * number_or_missing(summary, "train_samples")));
  if (run.language_model)
    rows.emplace_back("bits per byte",
                      fixed(number_or_missing(summary, "test_bits_per_byte"), "%.3f"));
  rows.emplace_back("test accuracy", percent(number_or_missing(summary, "test_accuracy")));
  rows.emplace_back("test loss", fixed(number_or_missing(summary, "test_loss"), "%.4f"));
  rows.emplace_back("training FLOPs",
                    format_si(factor * number_or_missing(summary, "train_flops")));
  double peak = 0;
  for (const auto& m : run.memory) peak = std::max(peak, m.peak);
  rows.emplace_back("peak tensor memory (largest worker)", format_bytes(peak));
  const double bytes = run.evaluations.empty() ? number_or_missing(summary, "comm_bytes")
                                               : run.evaluations.back().bytes_sent;
  rows.emplace_back("bytes sent (all workers)", format_bytes(bytes));
  rows.emplace_back("bytes per step", format_bytes(run.bytes_per_step));
  rows.emplace_back("wall time", fixed(number_or_missing(summary, "wall_seconds"), "%.1f s"));
  double rate = number_or_missing(summary, "total_samples_per_second");
  if (!std::isfinite(rate)) rate = number_or_missing(summary, "samples_per_second");
  rows.emplace_back("samples/s", fixed(rate, "%.0f"));
}

}  // namespace

std::string fixed(double value, const char* format) {
  if (!std::isfinite(value)) return "-";
  char text[32];
  std::snprintf(text, sizeof text, format, value);
  return text;
}

double number_or_missing(const nlohmann::json& object, const char* key) {
  if (!object.is_object()) return kMissing;
  const auto it = object.find(key);
  if (it == object.end() || !it->is_number()) return kMissing;
  return it->get<double>();
}

std::vector<nlohmann::json> read_json_lines(const std::string& path) {
  std::vector<nlohmann::json> records;
  if (!fs::exists(path)) return records;
  std::ifstream in(path);
  if (!in) throw Error("cannot read " + path);
  std::string line;
  for (int64_t number = 1; std::getline(in, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    try {
      records.push_back(nlohmann::json::parse(line));
    } catch (const nlohmann::json::exception& e) {
      throw Error(path + ":" + std::to_string(number) + " is not valid JSON: " + e.what());
    }
    if (!records.back().is_object())
      throw Error(path + ":" + std::to_string(number) + " is not a JSON object");
  }
  return records;
}

Run read_training_run(const std::string& path, const std::string& name) {
  const nlohmann::json summary = train::read_json_file(path + "/summary.json");
  if (!summary.is_object()) throw Error(path + "/summary.json is not a JSON object");
  const nlohmann::json config = fs::exists(path + "/config.json")
                                    ? train::read_json_file(path + "/config.json")
                                    : nlohmann::json::object();
  const std::vector<nlohmann::json> records = read_json_lines(path + "/metrics.jsonl");
  Run run;
  run.name = name;
  run.path = path;
  run.method = summary.value("dist", config.is_object() ? config.value("command", "train") : "");
  run.workers = summary.value("world_size", int64_t{1});
  run.language_model = summary.contains("test_bits_per_byte");
  const double factor = all_workers_factor(run, summary);
  try {
    add_evaluations(run, summary, records, factor);
    add_train_loss(run, summary, records, factor);
    add_memory(run, summary);
  } catch (const nlohmann::json::exception& e) {
    throw Error(path + ": unexpected content in summary.json or metrics.jsonl: " + e.what());
  }
  run.bytes_per_step = number_or_missing(summary, "comm_bytes_per_step");
  if (!std::isfinite(run.bytes_per_step) && run.workers == 1) run.bytes_per_step = 0;
  add_summary_rows(run, summary, config, factor);
  if (run.method == "sdp") run.sdp_plans = read_sdp_plans(path);
  return run;
}

void read_run_directory(const std::string& path, const std::string& name, ReportData& data) {
  if (!fs::exists(path)) throw Error("run directory " + path + " does not exist");
  if (!fs::is_directory(path)) throw Error(path + " is not a directory");
  const std::string summary_path = path + "/summary.json";
  if (!fs::exists(summary_path)) {
    const bool started = fs::exists(path + "/config.json") || fs::exists(path + "/metrics.jsonl");
    throw Error(path + " is not a finished run directory: it has no summary.json" +
                (started ? " (the run has not finished, or failed)" : ""));
  }
  const nlohmann::json summary = train::read_json_file(summary_path);
  if (!summary.is_object()) throw Error(summary_path + " is not a JSON object");
  if (summary.contains("pnn")) {
    read_pnn_run(path, name, summary, data);
    return;
  }
  data.runs.push_back(read_training_run(path, name));
}

}  // namespace tessera::report
