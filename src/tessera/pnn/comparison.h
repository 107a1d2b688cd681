// The baselines PNN is compared with (`tessera pnn --compare`): conventional training on the same
// data, seed and epoch budget, one row per run, printed as a table and recorded in summary.json;
// and the bytes a model-parallel pipeline cut at the same stages would send.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tessera/pnn/model_parallel_baseline.h"
#include "tessera/pnn/pnn_run.h"
#include "tessera/train/trainer.h"

namespace tessera::pnn {

struct ComparisonRow {
  std::string name;
  double joined_accuracy = -1.0;            // PNN before recovery; -1 for conventional training
  double accuracy = 0.0;                    // final test accuracy
  int64_t train_flops = 0;                  // all workers together
  int64_t flops_to_target = -1;             // -1: never reached
  double seconds_to_target = -1.0;          // elapsed wall seconds; -1: never reached
  int64_t peak_tensor_bytes = 0;            // the largest of any worker while training (partitions)
  int64_t recovery_peak_tensor_bytes = -1;  // PNN recovery on the joined model; -1: none
  int64_t comm_bytes = 0;
  double wall_seconds = 0.0;
};

// FLOPs at the first curve point at or above `target` accuracy; -1 if none.
int64_t flops_to_reach(const std::vector<CurvePoint>& curve, double target);
// Elapsed seconds at the first curve point at or above `target` accuracy; -1 if none.
double seconds_to_reach(const std::vector<CurvePoint>& curve, double target);

// The conventional run's accuracy curve (one point per evaluation of its history).
std::vector<CurvePoint> conventional_curve(const train::TrainSummary& summary,
                                           int64_t forward_flops);

ComparisonRow conventional_row(const train::TrainSummary& summary, int64_t forward_flops,
                               double target);
ComparisonRow pnn_row(const PnnResult& result, double target);

// A fixed-width table; FLOPs to target relative to the first row.
std::string format_table(const std::vector<ComparisonRow>& rows, double target);
nlohmann::json to_json(const ComparisonRow& row);

// A comparison under way: the conventional row first, then one per PNN schedule.
struct Comparison {
  std::vector<ComparisonRow> rows;
  double target = 0.0;  // 90% of the conventional run's final test accuracy
  int64_t conventional_steps = 0;
  ModelParallelBytes model_parallel;  // set by measure_model_parallel
};

// Trains the whole model conventionally with the setup's model and settings (the same seed, data
// and epochs), recording it in `dir` (summary.json, checkpoint), and starts the comparison with
// its row.
Comparison compare_with_conventional(const PnnSetup& setup, const data::TrainTest& data,
                                     const std::string& dir);

// The bandwidth baseline: a pipeline cut at setup.plan, measured over a few steps of `train`
// (pnn/model_parallel_baseline; its ranks meet in `scratch_dir`).
void measure_model_parallel(Comparison& comparison, const PnnSetup& setup,
                            const data::Dataset& train, const std::string& scratch_dir);

// summary.json's part: "comparison" (the rows), "target_accuracy" and "model_parallel" (with the
// bytes it would send over the conventional run's steps).
nlohmann::json to_json(const Comparison& comparison);

}  // namespace tessera::pnn
