#include "tessera/pnn/partition_plan.h"

#include <algorithm>
#include <cstdio>
#include <limits>

#include "tessera/core/error.h"
#include "tessera/metrics/measurement_scope.h"
#include "tessera/metrics/memory_tracker.h"
#include "tessera/models/architecture.h"
#include "tessera/models/staged_model.h"

namespace tessera::pnn {

std::vector<int64_t> PartitionPlan::cuts() const {
  if (boundaries.size() < 3) return {};
  return {boundaries.begin() + 1, boundaries.end() - 1};
}

nlohmann::json to_json(const PartitionPlan& plan) {
  return {{"boundaries", plan.boundaries}};
}

PartitionPlan plan_from_json(const nlohmann::json& json) {
  PartitionPlan plan;
  plan.boundaries = json.at("boundaries").get<std::vector<int64_t>>();
  bool increasing = plan.boundaries.size() >= 2 && plan.boundaries[0] == 0;
  for (size_t i = 1; i < plan.boundaries.size(); ++i)
    increasing = increasing && plan.boundaries[i] > plan.boundaries[i - 1];
  if (!increasing) throw Error("partition plan: " + json.dump() + " is not a plan");
  return plan;
}

PartitionPlan plan_from_cuts(const models::ModelConfig& config, const std::vector<int64_t>& cuts) {
  const int64_t stages = models::architecture(config.arch).num_stages(config);
  require(!cuts.empty(), "--cuts needs at least one stage index");
  PartitionPlan plan;
  plan.boundaries.push_back(0);
  for (const int64_t cut : cuts) {
    require(cut >= 1 && cut <= stages - 1, "--cuts: " + std::to_string(cut) + " is out of range; " +
                                               config.arch + " has " + std::to_string(stages) +
                                               " stages, so a cut is between 1 and " +
                                               std::to_string(stages - 1));
    require(cut > plan.boundaries.back(),
            "--cuts must be strictly increasing (a repeated or decreasing cut leaves a partition "
            "without stages)");
    plan.boundaries.push_back(cut);
  }
  plan.boundaries.push_back(stages);
  return plan;
}

namespace {
// One training step of stage `stage` alone on random inputs.
void step_stage(const models::ModelConfig& config, int64_t stage, int64_t batch_size,
                const train::OptimizerConfig& optimizer, const torch::Device& device) {
  const models::Architecture& arch = models::architecture(config.arch);
  models::StagedModel model(config, stage, stage + 1);
  model->to(device);
  auto step = train::make_optimizer(model->parameters(), optimizer);
  const Shape shape = with_batch(batch_size, arch.boundary_shape(config, stage));
  // A language model's first stage takes token ids.
  const torch::Tensor input =
      config.arch == "llama" && stage == 0
          ? torch::randint(0, config.num_classes, shape,
                           torch::TensorOptions(torch::kLong).device(device))
          : torch::randn(shape, device);
  model->forward(input).square().mean().backward();
  step->step();
}
}  // namespace

std::vector<int64_t> measure_stage_memory(const models::ModelConfig& config, int64_t batch_size,
                                          const train::OptimizerConfig& optimizer,
                                          const std::string& device_name) {
  const int64_t stages = models::architecture(config.arch).num_stages(config);
  const torch::Device device(device_name);
  const char* tracker = device.is_cuda() ? "cuda" : "cpu";
  // A first pass allocates what a process keeps once it has run a step (on CUDA: cuBLAS/cuDNN
  // workspaces); counted, it would make whichever stage comes first look the largest.
  for (int64_t stage = 0; stage < stages; ++stage)
    step_stage(config, stage, batch_size, optimizer, device);
  std::vector<int64_t> bytes;
  for (int64_t stage = 0; stage < stages; ++stage) {
    const int64_t baseline = metrics::live_tensor_bytes(tracker);
    const metrics::MeasurementScope measured(tracker);
    step_stage(config, stage, batch_size, optimizer, device);
    bytes.push_back(measured.peak_tensor_bytes() - baseline);
  }
  return bytes;
}

PartitionPlan plan_balanced(const std::vector<int64_t>& stage_bytes, int64_t partitions) {
  const auto stages = static_cast<int64_t>(stage_bytes.size());
  require(partitions >= 2, "--partitions must be at least 2");
  require(partitions <= stages, "--partitions " + std::to_string(partitions) +
                                    ": the model has only " + std::to_string(stages) + " stages");
  std::vector<int64_t> prefix(static_cast<size_t>(stages) + 1, 0);
  for (int64_t s = 0; s < stages; ++s)
    prefix[static_cast<size_t>(s) + 1] = prefix[static_cast<size_t>(s)] + stage_bytes[s];
  const auto cost = [&](int64_t a, int64_t b) { return prefix[b] - prefix[a]; };
  constexpr int64_t kInf = std::numeric_limits<int64_t>::max();
  // best[k][s]: the smallest largest-partition cost of the first s stages in k partitions;
  // last[k][s]: where the k-th of them begins.
  std::vector<std::vector<int64_t>> best(partitions + 1, std::vector<int64_t>(stages + 1, kInf));
  std::vector<std::vector<int64_t>> last(partitions + 1, std::vector<int64_t>(stages + 1, 0));
  best[0][0] = 0;
  for (int64_t k = 1; k <= partitions; ++k) {
    for (int64_t s = k; s <= stages; ++s) {
      for (int64_t a = k - 1; a < s; ++a) {
        if (best[k - 1][a] == kInf) continue;
        const int64_t value = std::max(best[k - 1][a], cost(a, s));
        if (value < best[k][s]) {
          best[k][s] = value;
          last[k][s] = a;
        }
      }
    }
  }
  PartitionPlan plan;
  plan.boundaries.assign(static_cast<size_t>(partitions) + 1, 0);
  plan.boundaries.back() = stages;
  for (int64_t k = partitions, s = stages; k >= 1; --k) {
    s = last[k][s];
    plan.boundaries[static_cast<size_t>(k) - 1] = s;
  }
  return plan;
}

std::string describe(const PartitionPlan& plan, const models::ModelConfig& config,
                     const std::vector<int64_t>& stage_bytes) {
  const models::Architecture& arch = models::architecture(config.arch);
  std::string text;
  char line[256];
  for (int64_t p = 0; p < plan.size(); ++p) {
    int64_t bytes = 0;
    for (int64_t s = plan.begin(p); s < plan.end(p) && !stage_bytes.empty(); ++s)
      bytes += stage_bytes[static_cast<size_t>(s)];
    std::snprintf(line, sizeof line, "  partition %lld: stages %lld-%lld (%s ... %s)",
                  static_cast<long long>(p), static_cast<long long>(plan.begin(p)),
                  static_cast<long long>(plan.end(p) - 1),
                  arch.stage_name(config, plan.begin(p)).c_str(),
                  arch.stage_name(config, plan.end(p) - 1).c_str());
    text += line;
    if (!stage_bytes.empty()) {
      std::snprintf(line, sizeof line, ", one step measured at %.1f MiB",
                    static_cast<double>(bytes) / (1 << 20));
      text += line;
    }
    text += "\n";
  }
  return text;
}

}  // namespace tessera::pnn
