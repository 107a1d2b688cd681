#include "tessera/pnn/partition_objective.h"

#include <gtest/gtest.h>

#include "tessera/core/error.h"

namespace tessera::pnn {
namespace {

data::Batch batch_of(std::vector<int64_t> labels) {
  data::Batch batch;
  batch.labels = torch::tensor(labels);
  batch.inputs = torch::randn({static_cast<int64_t>(labels.size()), 5});
  return batch;
}

TEST(PartitionObjective, TrainsOnTheBatchOrOnNoisySilRows) {
  const torch::Tensor sil = torch::arange(12, torch::kFloat32).reshape({3, 4});
  const data::Batch batch = batch_of({2, 0, 2});
  PartitionObjective on_data({}, torch::kCPU);
  EXPECT_TRUE(on_data.inputs(batch, true).equal(batch.inputs));

  PartitionTargets targets;
  targets.input_sil = sil;
  targets.input_noise = 0.5;
  PartitionObjective on_sil(targets, torch::kCPU);
  const torch::Tensor rows = sil.index_select(0, batch.labels);
  EXPECT_TRUE(on_sil.inputs(batch, /*training=*/false).equal(rows));  // clean for evaluation
  const torch::Tensor noisy = on_sil.inputs(batch, /*training=*/true);
  const float noise_std = (noisy - rows).std().item<float>();
  EXPECT_GT(noise_std, 0.2f);
  EXPECT_LT(noise_std, 1.0f);
  // The noise is seeded: a second objective with the same targets draws the same noise.
  PartitionObjective again(targets, torch::kCPU);
  EXPECT_TRUE(again.inputs(batch, true).equal(noisy));
}

TEST(PartitionObjective, RegressesSilRowsOrClassifies) {
  const torch::Tensor sil = torch::rand({3, 4});
  const data::Batch batch = batch_of({1, 2});
  const torch::Tensor outputs = torch::randn({2, 4});
  PartitionTargets targets;
  targets.target_sil = sil;
  PartitionObjective mse(targets, torch::kCPU);
  EXPECT_FALSE(mse.is_classification());
  const torch::Tensor expected = (outputs - sil.index_select(0, batch.labels)).square().mean();
  EXPECT_NEAR(mse.loss(outputs, batch).item<float>(), expected.item<float>(), 1e-6);
  // A perfect output has zero loss under both regression losses.
  targets.loss = "cosine";
  PartitionObjective cosine(targets, torch::kCPU);
  EXPECT_NEAR(cosine.loss(sil.index_select(0, batch.labels) * 3, batch).item<float>(), 0.0, 1e-6);
  EXPECT_GT(cosine.loss(-sil.index_select(0, batch.labels), batch).item<float>(), 1.0);

  PartitionObjective classify({}, torch::kCPU);
  EXPECT_TRUE(classify.is_classification());
  const torch::Tensor logits = torch::randn({2, 3});
  EXPECT_NEAR(classify.loss(logits, batch).item<float>(),
              torch::nn::functional::cross_entropy(logits, batch.labels).item<float>(), 1e-6);
}

TEST(PartitionObjective, BadSettingsAreUsageErrors) {
  PartitionTargets targets;
  targets.loss = "l1";
  EXPECT_THROW(PartitionObjective(targets, torch::kCPU), UsageError);
  targets.loss = "mse";
  targets.input_noise = -1;
  EXPECT_THROW(PartitionObjective(targets, torch::kCPU), UsageError);
}

}  // namespace
}  // namespace tessera::pnn
