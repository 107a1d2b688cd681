// Re-estimating a model's batch-norm statistics (what SDP's assembled model gets).
#include <gtest/gtest.h>

#include "../test_support.h"
#include "tessera/train/batch_norm_statistics.h"

using namespace tessera;

namespace {

using tessera::testing::resolved;
using tessera::testing::synthetic_8x8;

models::StagedModel small_resnet(double drop_path) {
  models::ModelConfig config;
  config.arch = "resnet";
  config.input_shape = {1, 8, 8};
  config.num_classes = 10;
  config.depth = 8;
  config.width = 0.25;
  config.drop_path = drop_path;
  torch::manual_seed(3);
  return models::build_model(resolved(config));
}

std::vector<torch::Tensor> running_statistics(models::StagedModel& model) {
  std::vector<torch::Tensor> stats;
  for (const auto& b : model->named_buffers())
    if (b.key().find("running_") != std::string::npos) stats.push_back(b.value().clone());
  return stats;
}

}  // namespace

TEST(BatchNormStatistics, AreMeasuredOnTheNetworkAsItRunsAtTestTime) {
  const data::TrainTest data = synthetic_8x8();
  models::StagedModel plain = small_resnet(0.0);
  models::StagedModel dropping =
      small_resnet(0.5);  // the same weights, branches dropped in training
  const std::vector<torch::Tensor> initial = running_statistics(plain);
  const torch::Device cpu(torch::kCPU);
  EXPECT_EQ(train::recompute_batch_norm_statistics(plain, data.train, 4, 32, 1, cpu), 128);
  EXPECT_EQ(train::recompute_batch_norm_statistics(dropping, data.train, 4, 32, 1, cpu), 128);
  EXPECT_FALSE(plain->is_training());
  const auto measured = running_statistics(plain);
  const auto with_drop_path = running_statistics(dropping);
  ASSERT_EQ(measured.size(), with_drop_path.size());
  ASSERT_FALSE(measured.empty());
  bool changed = false;
  for (size_t i = 0; i < measured.size(); ++i) {
    // Drop-path is off during the pass, so both networks see the same activations.
    EXPECT_TRUE(torch::allclose(measured[i], with_drop_path[i])) << i;
    changed = changed || !torch::equal(measured[i], initial[i]);
  }
  EXPECT_TRUE(changed);
  // Deterministic for a seed.
  train::recompute_batch_norm_statistics(plain, data.train, 4, 32, 1, cpu);
  const auto again = running_statistics(plain);
  for (size_t i = 0; i < measured.size(); ++i) EXPECT_TRUE(torch::equal(measured[i], again[i]));
}
