// Where a network is cut into PNN partitions: boundaries 0 = b_0 < b_1 < ... < b_K = num_stages,
// partition i holding stages [b_i, b_{i+1}). Given as cut indices, or chosen to balance the
// partitions' measured training memory.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tessera/models/model_config.h"
#include "tessera/train/optimizer.h"

namespace tessera::pnn {

struct PartitionPlan {
  std::vector<int64_t> boundaries;
  int64_t size() const { return static_cast<int64_t>(boundaries.size()) - 1; }
  int64_t begin(int64_t partition) const { return boundaries.at(static_cast<size_t>(partition)); }
  int64_t end(int64_t partition) const { return boundaries.at(static_cast<size_t>(partition) + 1); }
  // The inner boundaries, i.e. the stage indices where the network is cut.
  std::vector<int64_t> cuts() const;
};

// {"boundaries": [...]}, as recorded in a run directory (plan.json), and back; plan_from_json
// throws tessera::Error for anything but strictly increasing boundaries from 0.
nlohmann::json to_json(const PartitionPlan& plan);
PartitionPlan plan_from_json(const nlohmann::json& json);

// Cuts at the given stage indices of a resolved config. UsageError for fewer than one cut, a cut
// out of range (every partition needs a stage) or cuts not strictly increasing.
PartitionPlan plan_from_cuts(const models::ModelConfig& config, const std::vector<int64_t>& cuts);

// Measured peak tensor bytes of one training step (parameters, gradients, optimizer state,
// activations) of each stage alone, with `batch_size` samples on `device`. Needs the memory
// tracker (metrics::install_memory_tracker) on CPU. Uses the global torch RNG.
std::vector<int64_t> measure_stage_memory(const models::ModelConfig& config, int64_t batch_size,
                                          const train::OptimizerConfig& optimizer,
                                          const std::string& device);

// `partitions` contiguous partitions that minimise the largest sum of `stage_bytes`.
// UsageError unless 2 <= partitions <= number of stages.
PartitionPlan plan_balanced(const std::vector<int64_t>& stage_bytes, int64_t partitions);

// A table of the plan: one line per partition with its stages, and their bytes if given.
std::string describe(const PartitionPlan& plan, const models::ModelConfig& config,
                     const std::vector<int64_t>& stage_bytes = {});

}  // namespace tessera::pnn
