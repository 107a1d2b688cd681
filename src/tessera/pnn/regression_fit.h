// How well a trained partition reproduces its synthetic intermediate labels, and whether it has
// collapsed: outputs that are (nearly) the same for every sample, so that every later partition
// sees no information about the input and the joined model is at chance. This used to surface
// only as a joined accuracy of 1/classes; now it is measured after every partition's training.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "tessera/data/dataset.h"
#include "tessera/models/staged_model.h"
#include "tessera/pnn/partition_objective.h"

namespace tessera::pnn {

struct RegressionFit {
  int64_t samples = 0;
  // 1 - MSE(outputs, S[y]) / MSE(mean label row, S[y]): 1 is a perfect fit, 0 is no better than
  // predicting the same row for every sample.
  double r_squared = 0.0;
  // Share of the outputs' mean square that varies between samples (0: every sample gives the
  // same output). Scale-free, so it also means something under the cosine loss.
  double output_spread = 0.0;
  int64_t constant_units = 0;  // output entries that do not change over the samples checked
  int64_t units = 0;           // output entries per sample
};

// Runs the partition (eval mode, no gradients) over the first `max_samples` samples of `dataset`,
// feeding what `objective` feeds it, and compares its outputs, mapped into the objective's target
// space, with `target_sil` rows.
RegressionFit measure_regression_fit(models::StagedModel& model, PartitionObjective& objective,
                                     const torch::Tensor& target_sil, const data::Dataset& dataset,
                                     const torch::Device& device, int64_t max_samples = 2048);

// Collapsed: outputs nearly identical for every sample (spread below 1e-3), so nothing about the
// input reaches the next partition, whatever the schedule.
bool collapsed(const RegressionFit& fit);

// A poor fit, under the MSE loss: R^2 below 0.1. The outputs may still carry the input (the
// sequential schedule trains the next partition on them), but the parallel schedule's next
// partition trains on the labels themselves, so the joined model suffers.
bool poor_fit(const RegressionFit& fit, const std::string& loss);

// The figures of `fit` in words, for messages.
std::string describe(const RegressionFit& fit);

// Throws Error naming the partition, what was measured and what to change when `fit` collapsed;
// prints a warning to stderr for a poor fit.
void check_regression_fit(const RegressionFit& fit, int64_t partition, const std::string& loss);

nlohmann::json to_json(const RegressionFit& fit);

}  // namespace tessera::pnn
