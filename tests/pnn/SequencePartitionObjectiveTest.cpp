// PNN on a language model: a position's class is the byte it must predict, so its synthetic
// intermediate label is S[next byte], one row per position.
#include <gtest/gtest.h>

#include "../text_support.h"
#include "tessera/models/architecture.h"
#include "tessera/pnn/partition_objective.h"
#include "tessera/pnn/pnn_run.h"

namespace tessera::pnn {
namespace sequence_objective_test {

data::Batch sequence_batch() {
  data::Batch batch;
  batch.labels = torch::tensor({2, 0, 1, 2, 2, 1}, torch::kLong).view({2, 3});  // [B, T]
  batch.inputs = torch::zeros({2, 3}, torch::kLong);
  return batch;
}

TEST(SequencePartitionObjective, EveryPositionGetsTheRowOfItsNextToken) {
  const torch::Tensor sil = torch::arange(12, torch::kFloat32).reshape({3, 4});  // 3 tokens, D 4
  const data::Batch batch = sequence_batch();
  PartitionTargets targets;
  targets.input_sil = sil;
  PartitionObjective on_sil(targets, torch::kCPU);
  const torch::Tensor rows = on_sil.inputs(batch, /*training=*/false);
  ASSERT_EQ(rows.sizes(), torch::IntArrayRef({2, 3, 4}));
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t t = 0; t < 3; ++t)
      EXPECT_TRUE(rows[b][t].equal(sil[batch.labels[b][t].item<int64_t>()]));

  targets = {};
  targets.target_sil = sil;
  PartitionObjective mse(targets, torch::kCPU);
  const torch::Tensor outputs = torch::randn({2, 3, 4});
  EXPECT_NEAR(mse.loss(outputs, batch).item<float>(),
              (outputs - rows).square().mean().item<float>(), 1e-5);
  targets.loss = "cosine";
  PartitionObjective cosine(targets, torch::kCPU);
  EXPECT_NEAR(cosine.loss(rows, batch).item<float>(), 0.0f, 1e-6);  // per position, not per window

  // The last partition classifies every position.
  PartitionObjective last({}, torch::kCPU);
  const torch::Tensor logits = torch::randn({2, 3, 3});
  EXPECT_NEAR(last.loss(logits, batch).item<float>(),
              torch::nn::functional::cross_entropy(logits.view({6, 3}), batch.labels.view({6}))
                  .item<float>(),
              1e-6);
}

TEST(SequencePartitionObjective, SilsOfALanguageModelHaveOneRowPerToken) {
  PnnSetup setup;
  setup.model = models::architecture("llama").resolve(tessera::testing::tiny_llama(8, 2));
  setup.pnn.cuts = {2};
  const auto sils = make_sils(setup, choose_plan(setup));
  ASSERT_EQ(sils.size(), 1u);
  EXPECT_EQ(sils[0].sizes(), torch::IntArrayRef({256, 16}));  // [vocabulary, D], not [V, T, D]
}

}  // namespace sequence_objective_test
}  // namespace tessera::pnn
