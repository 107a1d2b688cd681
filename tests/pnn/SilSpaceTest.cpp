#include "tessera/pnn/sil_space.h"

#include <gtest/gtest.h>

#include "tessera/core/error.h"
#include "tessera/models/architecture.h"
#include "tessera/pnn/partition_objective.h"
#include "tessera/pnn/pnn_run.h"

namespace tessera::pnn {
namespace {

SilSpaceConfig space(const std::string& kind, int64_t size = 0) {
  SilSpaceConfig config;
  config.kind = kind;
  config.size = size;
  return config;
}

TEST(SilSpace, ReducedShapesFollowTheKindAndSize) {
  EXPECT_EQ(SilSpace(space("full"), {8, 28, 28}, 1).reduced_shape(), (Shape{8, 28, 28}));
  EXPECT_EQ(SilSpace(space("pooled", 7), {8, 28, 28}, 1).reduced_shape(), (Shape{8, 7, 7}));
  EXPECT_EQ(SilSpace(space("pooled", 1), {8, 28, 28}, 1).reduced_shape(), (Shape{8, 1, 1}));
  EXPECT_EQ(SilSpace(space("projected", 64), {8, 28, 28}, 1).reduced_shape(), (Shape{64}));
  const SilSpace pooled(space("pooled", 2), {3, 4, 6}, 1);
  EXPECT_EQ(pooled.reduce(torch::rand({5, 3, 4, 6})).sizes().vec(), (Shape{5, 3, 2, 2}));
  EXPECT_EQ(pooled.lift(torch::rand({5, 3, 2, 2})).sizes().vec(), (Shape{5, 3, 4, 6}));
  // A sequence's positions are samples of their own: [B, T, D] -> [B, T, size].
  const SilSpace projected(space("projected", 4), {16}, 1);
  EXPECT_EQ(projected.reduce(torch::rand({2, 3, 16})).sizes().vec(), (Shape{2, 3, 4}));
}

TEST(SilSpace, PoolingAveragesEachCellAndLiftingRepeatsIt) {
  const SilSpace pooled(space("pooled", 2), {1, 4, 4}, 1);
  const torch::Tensor x = torch::arange(16, torch::kFloat32).reshape({1, 1, 4, 4});
  // Cells {0,1,4,5}, {2,3,6,7}, {8,9,12,13}, {10,11,14,15}.
  EXPECT_TRUE(
      pooled.reduce(x).equal(torch::tensor({2.5f, 4.5f, 10.5f, 12.5f}).reshape({1, 1, 2, 2})));
  const torch::Tensor rows = torch::tensor({1.0f, 2.0f, 3.0f, 4.0f}).reshape({1, 1, 2, 2});
  const torch::Tensor lifted = pooled.lift(rows);
  EXPECT_EQ(lifted[0][0][0][1].item<float>(), 1.0f);
  EXPECT_EQ(lifted[0][0][3][3].item<float>(), 4.0f);
  // Lifting is a right inverse of the map: the lifted rows reduce to the rows themselves.
  EXPECT_TRUE(pooled.reduce(lifted).equal(rows));
}

TEST(SilSpace, ProjectionIsSeededWithOrthonormalRows) {
  const SilSpace a(space("projected", 32), {4, 8, 8}, 7);
  const torch::Tensor x = torch::randn({3, 4, 8, 8});
  EXPECT_TRUE(a.reduce(x).equal(SilSpace(space("projected", 32), {4, 8, 8}, 7).reduce(x)));
  EXPECT_FALSE(a.reduce(x).equal(SilSpace(space("projected", 32), {4, 8, 8}, 8).reduce(x)));
  // Orthonormal rows: lifting then reducing gives the rows back, and lifting keeps their norm.
  const torch::Tensor rows = torch::randn({3, 32});
  const torch::Tensor lifted = a.lift(rows);
  EXPECT_EQ(lifted.sizes().vec(), (Shape{3, 4, 8, 8}));
  EXPECT_TRUE(torch::allclose(a.reduce(lifted), rows, 1e-4, 1e-5));
  EXPECT_NEAR(lifted.norm().item<float>(), rows.norm().item<float>(), 1e-3);
}

TEST(SilSpace, TheRegressionLossIsComputedInTheReducedSpace) {
  // Outputs that differ from the lifted label only within each cell (zero mean per cell) have
  // zero loss in the pooled space, and a positive one in the full space.
  const auto pooled = std::make_shared<const SilSpace>(space("pooled", 1), Shape{2, 2, 2}, 1);
  const torch::Tensor sil = torch::rand({3, 2, 1, 1});
  data::Batch batch;
  batch.labels = torch::tensor({2, 0});
  batch.inputs = torch::zeros({2, 1});
  const torch::Tensor checker =
      torch::tensor({1.0f, -1.0f, -1.0f, 1.0f}).reshape({1, 1, 2, 2}).expand({2, 2, 2, 2});
  const torch::Tensor outputs = pooled->lift(sil.index_select(0, batch.labels)) + checker;
  PartitionTargets targets;
  targets.target_sil = sil;
  targets.target_space = pooled;
  PartitionObjective reduced(targets, torch::kCPU);
  EXPECT_NEAR(reduced.loss(outputs, batch).item<float>(), 0.0, 1e-6);
  EXPECT_TRUE(reduced.in_target_space(outputs).equal(pooled->reduce(outputs)));
  PartitionTargets full_targets;
  full_targets.target_sil = pooled->lift(sil);
  PartitionObjective full(full_targets, torch::kCPU);
  EXPECT_NEAR(full.loss(outputs, batch).item<float>(), 1.0, 1e-6);
}

TEST(SilSpace, AResNetCutGetsItsLabelsInThePooledSpace) {
  PnnSetup setup;
  models::ModelConfig resnet;
  resnet.arch = "resnet";
  resnet.depth = 8;
  resnet.width = 0.5;
  setup.model = models::architecture("resnet").resolve(resnet);
  setup.pnn.cuts = {1};  // after the stem: [8, 28, 28]
  setup.pnn.sil_space = space("pooled", 4);
  const PartitionPlan plan = choose_plan(setup);
  const auto sils = make_sils(setup, plan);
  const auto spaces = make_sil_spaces(setup, plan);
  ASSERT_EQ(sils.size(), 1u);
  EXPECT_EQ(sils[0].sizes().vec(), (Shape{10, 8, 4, 4}));
  EXPECT_EQ(spaces[0]->activation_shape(), (Shape{8, 28, 28}));
  EXPECT_EQ(spaces[0]->lift(sils[0]).sizes().vec(), (Shape{10, 8, 28, 28}));
  // The labels and the map are the run's, the same on every call (each worker draws its own).
  EXPECT_TRUE(make_sils(setup, plan)[0].equal(sils[0]));
  setup.pnn.sil_space = space("pooled", 5);  // 28 is not a multiple of 5
  EXPECT_THROW(make_sils(setup, plan), UsageError);
}

TEST(SilSpace, BadValuesAreUsageErrorsNamingTheFlag) {
  auto message = [](const SilSpaceConfig& config, const Shape& shape) {
    try {
      SilSpace(config, shape, 1);
    } catch (const UsageError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message(space("strided", 2), {8, 28, 28}).find("--sil-space 'strided'"),
            std::string::npos);
  EXPECT_NE(message(space("pooled", 0), {8, 28, 28}).find("--sil-space-size"), std::string::npos);
  EXPECT_NE(message(space("pooled", 5), {8, 28, 28}).find("must divide"), std::string::npos);
  EXPECT_NE(message(space("pooled", 2), {64}).find("[channels, height, width]"), std::string::npos);
  EXPECT_NE(message(space("projected", 65), {64}).find("--sil-space-size 65"), std::string::npos);
  EXPECT_NE(message(space("full", 4), {64}).find("--sil-space-size needs"), std::string::npos);
  EXPECT_NO_THROW(validate(space("full")));
}

}  // namespace
}  // namespace tessera::pnn
