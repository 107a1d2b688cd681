// Which units of the model each SDP worker holds. A plan follows from (model, level, W, coverage,
// seed) alone, so every worker computes the same plan without talking to the others. A run keeps
// one plan, or moves to a redrawn one every few epochs or steps (plan_change.h).
//
// Every maskable unit is held by exactly k = coverage * W workers, chosen greedily: units are
// visited largest first (equal sizes in a seeded random order) and each goes to the k least-loaded
// workers; ties go to the least loaded so far, then to workers that share the fewest units with
// the unit's other holders (so no fixed teams form), then to a seeded random priority. So every
// worker holds floor or ceil of (units * k / W) of every neuron-level group; at block level each
// kind of branch (same output shape and tensors: a CNN's resolution level, a ViT's attention or
// MLP sublayers) is balanced on its own, in forward FLOPs, so step time and activation memory
// stay even and a ViT worker never holds only MLPs. Stem and head are not maskable and held by
// all.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tessera/models/architecture.h"
#include "tessera/models/model_config.h"

namespace tessera::sdp {

// Block: the units are residual branches (resnet/wrn blocks, vit attention and MLP sublayers).
// Neuron: MLP hidden neurons, conv blocks' inner channels, vit MLP hidden units and heads.
enum class Level { Block, Neuron };
Level parse_level(const std::string& name);  // "block" | "neuron"; UsageError otherwise
const char* to_string(Level level);

// A set of workers as a bit mask (bit w: worker w). SDP supports up to 63 workers.
using WorkerSet = uint64_t;
constexpr int64_t kMaxWorkers = 63;
int64_t count_workers(WorkerSet set);
std::vector<int64_t> worker_list(WorkerSet set);

struct PlanConfig {
  Level level = Level::Block;
  int64_t workers = 1;    // W
  double coverage = 1.0;  // C: the fraction of the units each worker holds, C * W = k
  uint64_t seed = 0;
};

struct MaskPlan {
  PlanConfig config;
  int64_t holders_per_unit = 1;  // k
  // The full model's unit groups; the ones this level masks have entries in `holders`.
  std::vector<models::UnitGroup> groups;
  // For each masked group, by name: the set of workers holding each of its units.
  std::map<std::string, std::vector<WorkerSet>> holders;

  WorkerSet all_workers() const;
  // The unit holders of group `name` (every worker for a group this plan does not mask).
  WorkerSet unit_holders(const std::string& name, int64_t unit) const;
  // What worker `w` holds, ready for ModelConfig::subnet.
  models::Subnet subnet(int64_t worker) const;
};

// Throws UsageError with the reason if (W, C) cannot give every unit the same number of holders,
// if the model has no units at this level (an MLP has no residual branches), or if some worker
// would hold none of a neuron-level group (the network would be cut) or no branch at all.
// `model` must be resolved and hold the full network.
MaskPlan make_mask_plan(const models::ModelConfig& model, const PlanConfig& config);

// The plan as saved in the run directory: config, k, and per worker and group the units held.
nlohmann::json to_json(const MaskPlan& plan);
// A few lines for the terminal: per worker, units and parameters held.
std::string describe(const MaskPlan& plan, const models::ModelConfig& model);

}  // namespace tessera::sdp
