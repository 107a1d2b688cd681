// Conventional training against PNN on the same data, seed and epoch budget: one row per run,
// printed as a table and recorded in summary.json.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tessera/pnn/pnn_run.h"
#include "tessera/train/trainer.h"

namespace tessera::pnn {

struct ComparisonRow {
  std::string name;
  double joined_accuracy = -1.0;            // PNN before recovery; -1 for conventional training
  double accuracy = 0.0;                    // final test accuracy
  int64_t train_flops = 0;                  // all workers together
  int64_t flops_to_target = -1;             // -1: never reached
  int64_t peak_tensor_bytes = 0;            // the largest of any worker while training (partitions)
  int64_t recovery_peak_tensor_bytes = -1;  // PNN recovery on the joined model; -1: none
  int64_t comm_bytes = 0;
  double wall_seconds = 0.0;
};

// FLOPs at the first curve point at or above `target` accuracy; -1 if none.
int64_t flops_to_reach(const std::vector<CurvePoint>& curve, double target);

// The conventional run's accuracy curve (one point per evaluation of its history).
std::vector<CurvePoint> conventional_curve(const train::TrainSummary& summary,
                                           int64_t forward_flops);

ComparisonRow conventional_row(const train::TrainSummary& summary, int64_t forward_flops,
                               double target);
ComparisonRow pnn_row(const PnnResult& result, double target);

// A fixed-width table; FLOPs to target relative to the first row.
std::string format_table(const std::vector<ComparisonRow>& rows, double target);
nlohmann::json to_json(const ComparisonRow& row);

}  // namespace tessera::pnn
