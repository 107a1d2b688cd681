#include <gtest/gtest.h>

#include "tessera/core/error.h"
#include "tessera/models/staged_model.h"
#include "tessera/models/subnet.h"

using namespace tessera;
using namespace tessera::models;

namespace {
ModelConfig small_mlp() {
  ModelConfig config;
  config.arch = "mlp";
  config.input_shape = {1, 4, 4};
  config.hidden = {12, 8};
  config.num_classes = 3;
  return config;
}
}  // namespace

TEST(Mlp, DefaultIsThePnnPapersSixLayerNetwork) {
  ModelConfig config;  // defaults: 784-1024x5-10
  StagedModel model = build_model(config);
  // 784*1024+1024 + 4*(1024*1024+1024) + 1024*10+10
  EXPECT_EQ(parameter_count(*model), 803840 + 4 * 1049600 + 10250);
  EXPECT_EQ(architecture("mlp").num_stages(config), 6);
  EXPECT_EQ(model->forward(torch::zeros({2, 1, 28, 28})).sizes(), (std::vector<int64_t>{2, 10}));
}

TEST(Mlp, BoundaryShapesAndFlops) {
  const ModelConfig config = small_mlp();
  const Architecture& arch = architecture("mlp");
  EXPECT_EQ(arch.boundary_shape(config, 0), (Shape{1, 4, 4}));
  EXPECT_EQ(arch.boundary_shape(config, 1), (Shape{12}));
  EXPECT_EQ(arch.boundary_shape(config, 2), (Shape{8}));
  EXPECT_EQ(arch.boundary_shape(config, 3), (Shape{3}));
  // Stage 0: 2*16*12 + 12 (bias) + 12 (relu); stage 2: 2*8*3 + 3.
  EXPECT_EQ(arch.stage_forward_flops(config, 0), 2 * 16 * 12 + 12 + 12);
  EXPECT_EQ(arch.stage_forward_flops(config, 2), 2 * 8 * 3 + 3);
  StagedModel model = build_model(config);
  EXPECT_EQ(model->forward_flops(), (384 + 24) + (2 * 12 * 8 + 8 + 8) + (48 + 3));
}

TEST(Mlp, PartitionsComposeToTheFullModelWithTheSameNames) {
  const ModelConfig config = small_mlp();
  torch::manual_seed(1);
  StagedModel full = build_model(config);
  StagedModel left = build_model(config, 0, 2);
  StagedModel right = build_model(config, 2);
  EXPECT_EQ(left->output_shape(), right->input_shape());
  torch::NoGradGuard no_grad;
  for (auto* part : {&left, &right})
    for (auto& item : (*part)->named_parameters()) {
      const torch::Tensor* source = full->named_parameters().find(item.key());
      ASSERT_NE(source, nullptr) << item.key();
      item.value().copy_(*source);
    }
  const auto x = torch::randn({5, 1, 4, 4});
  EXPECT_TRUE(torch::allclose(right->forward(left->forward(x)), full->forward(x)));
}

TEST(Mlp, SubnetIsPhysicallySmallerAndEqualsTheMaskedFullModel) {
  ModelConfig config = small_mlp();
  const auto groups = architecture("mlp").unit_groups(config);
  ASSERT_EQ(groups.size(), 2u);
  EXPECT_EQ(groups[0].name, "stage0.neurons");
  config.subnet = {{"stage0.neurons", {1, 3, 5, 10}}};
  torch::manual_seed(2);
  StagedModel full = build_model(small_mlp());
  StagedModel sub = build_model(config);
  // Layer 0 shrinks from 12 to 4 neurons: (16+1)*8 fewer in, 8*8 fewer weights in layer 1.
  EXPECT_EQ(parameter_count(*full) - parameter_count(*sub), 8 * (16 + 1) + 8 * 8);
  copy_held_entries(*full, *sub, config.subnet, groups);

  // The same network with the dropped neurons silenced (zero rows -> relu(0) = 0).
  torch::NoGradGuard no_grad;
  auto mask = torch::ones({12});
  mask.index_fill_(0, torch::tensor({0, 2, 4, 6, 7, 8, 9, 11}), 0);
  auto& weight = full->named_parameters()["stage0.linear.weight"];
  auto& bias = full->named_parameters()["stage0.linear.bias"];
  weight.mul_(mask.unsqueeze(1));
  bias.mul_(mask);
  const auto x = torch::randn({6, 1, 4, 4});
  EXPECT_TRUE(torch::allclose(sub->forward(x), full->forward(x), 1e-5, 1e-6));
}

TEST(Mlp, InvalidConfigsAreRefused) {
  ModelConfig config = small_mlp();
  config.hidden = {};
  EXPECT_THROW(build_model(config), UsageError);
  config = small_mlp();
  config.activation = "swish";
  EXPECT_THROW(build_model(config), UsageError);
  config = small_mlp();
  config.subnet = {{"stage0.neurons", {3, 1}}};  // unsorted
  EXPECT_THROW(build_model(config), UsageError);
  config.subnet = {{"stage0.neurons", {}}};  // empty layer disconnects the network
  EXPECT_THROW(build_model(config), UsageError);
  config.subnet = {{"stage7.neurons", {0}}};
  EXPECT_THROW(build_model(config), UsageError);
  EXPECT_THROW(build_model(small_mlp(), 2, 1), UsageError);
  EXPECT_THROW(architecture("transformer-xl"), UsageError);
}
