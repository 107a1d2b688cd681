#include "tessera/pnn/comparison.h"

#include <cstdio>

#include "tessera/metrics/flops.h"
#include "tessera/models/staged_model.h"
#include "tessera/train/run_directory.h"

namespace tessera::pnn {

int64_t flops_to_reach(const std::vector<CurvePoint>& curve, double target) {
  for (const auto& point : curve)
    if (point.accuracy >= target) return point.flops;
  return -1;
}

double seconds_to_reach(const std::vector<CurvePoint>& curve, double target) {
  for (const auto& point : curve)
    if (point.accuracy >= target) return point.elapsed_seconds;
  return -1.0;
}

std::vector<CurvePoint> conventional_curve(const train::TrainSummary& summary,
                                           int64_t forward_flops) {
  std::vector<CurvePoint> curve;
  for (const auto& point : summary.history)
    curve.push_back({metrics::training_flops(forward_flops) * point.train_samples,
                     point.test.accuracy, point.test.loss, "training", point.elapsed_seconds});
  return curve;
}

ComparisonRow conventional_row(const train::TrainSummary& summary, int64_t forward_flops,
                               double target) {
  ComparisonRow row;
  row.name = "conventional";
  row.accuracy = summary.test.accuracy;
  row.train_flops = summary.train_flops;
  const std::vector<CurvePoint> curve = conventional_curve(summary, forward_flops);
  row.flops_to_target = flops_to_reach(curve, target);
  row.seconds_to_target = seconds_to_reach(curve, target);
  row.peak_tensor_bytes = summary.peak_tensor_bytes;
  row.comm_bytes = summary.comm_bytes;
  row.wall_seconds = summary.wall_seconds;
  return row;
}

ComparisonRow pnn_row(const PnnResult& result, double target) {
  ComparisonRow row;
  row.name = std::string("pnn ") + schedule_name(result.schedule);
  row.joined_accuracy = result.joined.accuracy;
  row.accuracy = result.recovered.accuracy;
  row.train_flops = result.train_flops;
  row.flops_to_target = flops_to_reach(result.curve, target);
  row.seconds_to_target = seconds_to_reach(result.curve, target);
  row.peak_tensor_bytes = result.max_partition_peak_tensor_bytes;
  if (!result.recovery.is_null())
    row.recovery_peak_tensor_bytes = result.recovery.at("peak_tensor_bytes").get<int64_t>();
  row.comm_bytes = result.handover_bytes + result.partition_comm_bytes;
  row.wall_seconds = result.wall_seconds;
  return row;
}

namespace {
std::string mib(int64_t bytes) {
  if (bytes < 0) return "-";
  char text[32];
  std::snprintf(text, sizeof text, "%.1f", static_cast<double>(bytes) / (1 << 20));
  return text;
}
std::string percent(double value) {
  if (value < 0) return "-";
  char text[32];
  std::snprintf(text, sizeof text, "%.2f", 100.0 * value);
  return text;
}
std::string seconds_text(double seconds) {
  if (seconds < 0) return "not reached";
  char text[32];
  std::snprintf(text, sizeof text, "%.1f", seconds);
  return text;
}
std::string flops_text(int64_t flops, int64_t reference) {
  if (flops < 0) return "not reached";
  char text[48];
  if (reference > 0 && flops != reference)
    std::snprintf(text, sizeof text, "%.3g (%+.0f%%)", static_cast<double>(flops),
                  100.0 * (static_cast<double>(flops) / static_cast<double>(reference) - 1.0));
  else
    std::snprintf(text, sizeof text, "%.3g", static_cast<double>(flops));
  return text;
}
}  // namespace

std::string format_table(const std::vector<ComparisonRow>& rows, double target) {
  std::string text;
  char line[512];
  std::snprintf(line, sizeof line, "%-16s %9s %9s %10s %22s %12s %12s %12s %12s %8s\n", "run",
                "joined %", "test %", "train FLOPs", "FLOPs to 90% (target)", "s to target",
                "peak MiB", "recov. MiB", "comm MiB", "wall s");
  text += line;
  const int64_t reference = rows.empty() ? -1 : rows.front().flops_to_target;
  for (const auto& row : rows) {
    std::snprintf(
        line, sizeof line, "%-16s %9s %9s %10.3g %22s %12s %12s %12s %12s %8.1f\n",
        row.name.c_str(), percent(row.joined_accuracy).c_str(), percent(row.accuracy).c_str(),
        static_cast<double>(row.train_flops), flops_text(row.flops_to_target, reference).c_str(),
        seconds_text(row.seconds_to_target).c_str(), mib(row.peak_tensor_bytes).c_str(),
        mib(row.recovery_peak_tensor_bytes).c_str(), mib(row.comm_bytes).c_str(), row.wall_seconds);
    text += line;
  }
  std::snprintf(line, sizeof line,
                "target: %.2f%% test accuracy (90%% of the first row's); peak = largest worker's "
                "measured tensor memory while training partitions; recov. = the joined model's "
                "recovery epochs\n",
                100.0 * target);
  text += line;
  return text;
}

nlohmann::json to_json(const ComparisonRow& row) {
  return {{"run", row.name},
          {"joined_test_accuracy", row.joined_accuracy},
          {"test_accuracy", row.accuracy},
          {"train_flops", row.train_flops},
          {"flops_to_target", row.flops_to_target},
          {"seconds_to_target", row.seconds_to_target},
          {"peak_tensor_bytes", row.peak_tensor_bytes},
          {"recovery_peak_tensor_bytes", row.recovery_peak_tensor_bytes},
          {"comm_bytes", row.comm_bytes},
          {"wall_seconds", row.wall_seconds}};
}

namespace {
// Steps of the model-parallel baseline (its bytes per step are the same in every step of a fixed
// batch size).
constexpr int64_t kModelParallelSteps = 8;
}  // namespace

Comparison compare_with_conventional(const PnnSetup& setup, const data::TrainTest& data,
                                     const std::string& dir) {
  torch::manual_seed(setup.train.seed);
  models::StagedModel model = models::build_model(setup.model);
  train::RunDirectory run(dir, /*resume=*/false);
  train::Trainer trainer(model, std::make_shared<train::Classification>(), setup.train, &run);
  trainer.set_run_clock(metrics::RunClock());  // the conventional run's own, from here
  const train::TrainSummary summary = trainer.fit(data.train, &data.test);
  nlohmann::json json = train::to_json(summary);
  json["forward_flops"] = model->forward_flops();
  run.write_json("summary.json", json);
  Comparison comparison;
  comparison.target = 0.9 * summary.test.accuracy;
  comparison.conventional_steps = summary.steps;
  comparison.rows.push_back(conventional_row(
      summary, models::build_model(setup.model)->forward_flops(), comparison.target));
  return comparison;
}

void measure_model_parallel(Comparison& comparison, const PnnSetup& setup,
                            const data::Dataset& train, const std::string& scratch_dir) {
  comparison.model_parallel = measure_model_parallel_bytes(setup.model, setup.plan, setup.train,
                                                           train, kModelParallelSteps, scratch_dir);
}

nlohmann::json to_json(const Comparison& comparison) {
  nlohmann::json table = nlohmann::json::array();
  for (const auto& row : comparison.rows) table.push_back(to_json(row));
  nlohmann::json model_parallel = to_json(comparison.model_parallel);
  model_parallel["bytes_over_conventional_steps"] =
      comparison.model_parallel.bytes_per_step * comparison.conventional_steps;
  return {{"comparison", table},
          {"target_accuracy", comparison.target},
          {"model_parallel", model_parallel}};
}

}  // namespace tessera::pnn
