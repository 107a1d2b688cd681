// A `tessera pnn` run directory: each schedule becomes a Run whose evaluations are the PNN curve
// (accuracy against training FLOPs: the partitions' points, then the recovery's), whose workers
// are the partitions (and the recovery), and with --compare the conventional run and the table.
#include <cmath>
#include <filesystem>

#include "tessera/core/error.h"
#include "tessera/metrics/language_model.h"
#include "tessera/report/read_run.h"
#include "tessera/report/svg_plot.h"

namespace tessera::report {
namespace {

namespace fs = std::filesystem;

std::string percent_or_dash(double fraction) {
  if (!std::isfinite(fraction) || fraction < 0) return "-";
  char text[32];
  std::snprintf(text, sizeof text, "%.2f%%", 100.0 * fraction);
  return text;
}

std::string seconds_or_dash(double seconds) {
  if (!std::isfinite(seconds)) return "-";
  char text[32];
  std::snprintf(text, sizeof text, "%.1f s", seconds);
  return text;
}

// -1 marks "not applicable" (the conventional row has no recovery).
std::string bytes_or_dash(double bytes) {
  return std::isfinite(bytes) && bytes >= 0 ? format_bytes(bytes) : "-";
}

PnnPartition partition_of(const nlohmann::json& p) {
  PnnPartition partition;
  partition.index = p.value("partition", int64_t{0});
  partition.begin_stage = p.value("begin_stage", int64_t{0});
  partition.end_stage = p.value("end_stage", int64_t{0});
  partition.parameters = p.value("parameters", int64_t{0});
  partition.forward_flops = number_or_missing(p, "forward_flops");
  partition.train_loss = number_or_missing(p, "train_loss");
  partition.peak_tensor_bytes = number_or_missing(p, "peak_tensor_bytes");
  partition.objective = p.value("objective", "");
  return partition;
}

WorkerMemory partition_memory(const std::string& label, const nlohmann::json& figures) {
  WorkerMemory m;
  m.label = label;
  m.peak = number_or_missing(figures, "peak_tensor_bytes");
  m.params = number_or_missing(figures, "param_bytes");
  m.grads = number_or_missing(figures, "grad_bytes");
  m.optimizer = number_or_missing(figures, "optimizer_state_bytes");
  return m;
}

Run schedule_run(const std::string& path, const std::string& name, const std::string& schedule,
                 const nlohmann::json& s) {
  Run run;
  run.name = name + ": pnn " + schedule;
  run.path = path + "/" + schedule;
  run.method = "pnn " + schedule;
  run.language_model = s.contains("test_bits_per_byte");
  const nlohmann::json& partitions = s.at("partitions");
  run.workers = schedule == "parallel" ? static_cast<int64_t>(partitions.size()) : 1;
  double steps = 0;
  for (const auto& p : partitions) {
    run.pnn_partitions.push_back(partition_of(p));
    run.memory.push_back(
        partition_memory("partition " + std::to_string(run.pnn_partitions.back().index), p));
    steps += number_or_missing(p, "steps");
  }
  if (s.contains("recovery") && s["recovery"].is_object())
    run.memory.push_back(partition_memory("recovery", s["recovery"]));
  for (const auto& point : s.at("curve")) {
    Evaluation e;
    e.train_flops = number_or_missing(point, "flops");
    e.test_accuracy = number_or_missing(point, "accuracy");
    e.test_loss = number_or_missing(point, "loss");
    if (run.language_model) e.bits_per_byte = metrics::bits_per_token(e.test_loss);
    run.evaluations.push_back(e);
  }
  run.bytes_per_step = steps > 0 ? number_or_missing(s, "partition_comm_bytes") / steps : kMissing;
  run.notes.push_back(
      "the PNN curve is recorded against training FLOPs only (partitions, then "
      "recovery): it appears in the FLOPs plot");
  auto& rows = run.summary;
  rows.emplace_back("method",
                    run.method + ", " + std::to_string(partitions.size()) + " partitions");
  std::string cuts;
  for (const auto& c : s.value("cuts", nlohmann::json::array()))
    cuts += (cuts.empty() ? "" : ", ") + c.dump();
  rows.emplace_back("cuts after stage", cuts.empty() ? "-" : cuts);
  if (run.language_model) {
    rows.emplace_back("joined bits per byte",
                      fixed(number_or_missing(s, "joined_test_bits_per_byte"), "%.3f"));
    rows.emplace_back("bits per byte (after recovery)",
                      fixed(number_or_missing(s, "test_bits_per_byte"), "%.3f"));
  }
  rows.emplace_back("joined test accuracy",
                    percent_or_dash(number_or_missing(s, "joined_test_accuracy")));
  rows.emplace_back("test accuracy (after recovery)",
                    percent_or_dash(number_or_missing(s, "test_accuracy")));
  rows.emplace_back("training FLOPs", format_si(number_or_missing(s, "train_flops")));
  rows.emplace_back("peak tensor memory (largest partition)",
                    format_bytes(number_or_missing(s, "max_partition_peak_tensor_bytes")));
  rows.emplace_back("hand-over bytes", format_bytes(number_or_missing(s, "handover_bytes")));
  rows.emplace_back("bytes sent by partitions",
                    format_bytes(number_or_missing(s, "partition_comm_bytes")));
  rows.emplace_back("wall time", seconds_or_dash(number_or_missing(s, "wall_seconds")));
  return run;
}

PnnComparison comparison_of(const std::string& name, const nlohmann::json& summary) {
  PnnComparison table;
  table.name = name;
  table.target_accuracy = number_or_missing(summary, "target_accuracy");
  table.columns = {"run",
                   "joined",
                   "test accuracy",
                   "training FLOPs",
                   "FLOPs to target",
                   "peak tensor memory",
                   "recovery peak",
                   "bytes sent",
                   "wall time"};
  for (const auto& row : summary.at("comparison")) {
    const double to_target = number_or_missing(row, "flops_to_target");
    table.rows.push_back({row.value("run", "?"),
                          percent_or_dash(number_or_missing(row, "joined_test_accuracy")),
                          percent_or_dash(number_or_missing(row, "test_accuracy")),
                          format_si(number_or_missing(row, "train_flops")),
                          to_target < 0 ? "never" : format_si(to_target),
                          bytes_or_dash(number_or_missing(row, "peak_tensor_bytes")),
                          bytes_or_dash(number_or_missing(row, "recovery_peak_tensor_bytes")),
                          bytes_or_dash(number_or_missing(row, "comm_bytes")),
                          seconds_or_dash(number_or_missing(row, "wall_seconds"))});
  }
  return table;
}

}  // namespace

void read_pnn_run(const std::string& path, const std::string& name, const nlohmann::json& summary,
                  ReportData& data) {
  if (!summary["pnn"].is_object() || summary["pnn"].empty())
    throw Error(path + "/summary.json: 'pnn' holds no schedule");
  const std::string conventional = path + "/conventional";
  if (fs::exists(conventional + "/summary.json")) {
    Run run = read_training_run(conventional, name + ": conventional");
    run.method = "conventional";
    run.summary.front().second = "conventional (pnn --compare)";
    data.runs.push_back(std::move(run));
  }
  try {
    for (const auto& [schedule, s] : summary["pnn"].items())
      data.runs.push_back(schedule_run(path, name, schedule, s));
    if (summary.contains("comparison")) data.comparisons.push_back(comparison_of(name, summary));
  } catch (const nlohmann::json::exception& e) {
    throw Error(path + "/summary.json: unexpected content of a pnn run: " + e.what());
  }
}

}  // namespace tessera::report
