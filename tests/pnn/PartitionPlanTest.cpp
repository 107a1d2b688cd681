#include "tessera/pnn/partition_plan.h"

#include <gtest/gtest.h>

#include "tessera/core/error.h"
#include "tessera/metrics/memory_tracker.h"
#include "tessera/models/architecture.h"

namespace tessera::pnn {
namespace {

models::ModelConfig mlp(std::vector<int64_t> hidden) {
  models::ModelConfig config;
  config.input_shape = {1, 8, 8};
  config.hidden = std::move(hidden);
  return models::architecture("mlp").resolve(config);
}

TEST(PartitionPlan, FromCutsCoversEveryStageOnce) {
  const auto config = mlp({32, 32, 32, 32, 32});  // 6 stages
  const PartitionPlan plan = plan_from_cuts(config, {2, 4});
  EXPECT_EQ(plan.boundaries, (std::vector<int64_t>{0, 2, 4, 6}));
  EXPECT_EQ(plan.size(), 3);
  EXPECT_EQ(plan.begin(1), 2);
  EXPECT_EQ(plan.end(1), 4);
  EXPECT_EQ(plan.cuts(), (std::vector<int64_t>{2, 4}));
}

TEST(PartitionPlan, BadCutsAreClearUsageErrors) {
  const auto config = mlp({32, 32, 32});  // 4 stages
  for (const auto& cuts : std::vector<std::vector<int64_t>>{{0}, {4}, {-1}, {2, 2}, {3, 1}, {}}) {
    try {
      plan_from_cuts(config, cuts);
      FAIL() << "cuts accepted";
    } catch (const UsageError& e) {
      EXPECT_NE(std::string(e.what()).find("--cuts"), std::string::npos) << e.what();
    }
  }
}

TEST(PartitionPlan, BalancedPlanMinimisesTheLargestPartition) {
  EXPECT_EQ(plan_balanced({1, 1, 1, 1}, 2).boundaries, (std::vector<int64_t>{0, 2, 4}));
  EXPECT_EQ(plan_balanced({10, 1, 1, 1, 1}, 2).boundaries, (std::vector<int64_t>{0, 1, 5}));
  EXPECT_EQ(plan_balanced({1, 1, 1, 1, 10}, 3).boundaries, (std::vector<int64_t>{0, 2, 4, 5}));
  EXPECT_EQ(plan_balanced({5, 5, 5}, 3).boundaries, (std::vector<int64_t>{0, 1, 2, 3}));
  EXPECT_THROW(plan_balanced({1, 1}, 3), UsageError);
  EXPECT_THROW(plan_balanced({1, 1}, 1), UsageError);
}

TEST(PartitionPlan, MeasuredStageMemoryFollowsTheLayerSizes) {
  metrics::install_memory_tracker();
  const auto config = mlp({256, 64});  // 64->256, 256->64, 64->10
  train::OptimizerConfig adam;
  adam.name = "adam";
  const std::vector<int64_t> bytes = measure_stage_memory(config, 32, adam, "cpu");
  ASSERT_EQ(bytes.size(), 3u);
  // Each stage holds at least weights + gradients + two Adam moments.
  EXPECT_GE(bytes[0], 4 * (64 * 256 + 256) * 4);
  EXPECT_GE(bytes[1], 4 * (256 * 64 + 64) * 4);
  EXPECT_GT(bytes[0], bytes[2]);
  EXPECT_GT(bytes[1], bytes[2]);
}

}  // namespace
}  // namespace tessera::pnn
