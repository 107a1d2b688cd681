#include <cmath>
#include <string>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "conv_test_helpers.h"
#include "tessera/core/error.h"
#include "tessera/models/architecture.h"
#include "tessera/models/staged_model.h"

namespace tessera::models {
namespace {

using testing::conv_config;
using testing::named_tensors;
using testing::tensor_names;

const Architecture& resnet() {
  return architecture("resnet");
}

ModelConfig resolved(int64_t depth, double width, Shape input = {3, 32, 32}) {
  return resnet().resolve(conv_config("resnet", depth, width, std::move(input)));
}

// resnet20 at width 0.25: channels 4, 8, 16. Stage 0 is the stem, stages 1-3, 4-6 and 7-9 the
// three levels (4 and 7 downsample), stage 10 the head.
ModelConfig small_resnet20() {
  return resolved(20, 0.25);
}

TEST(ResNetTest, ResolveFillsDefaults) {
  ModelConfig config;
  config.arch = "resnet";
  const ModelConfig r = resnet().resolve(config);
  EXPECT_EQ(r.depth, 18);
  EXPECT_EQ(r.width, 1.0);
  EXPECT_EQ(resnet().num_stages(r), 10);  // stem, 8 blocks, head
  EXPECT_EQ(resnet().num_stages(resolved(34, 1)), 18);
  EXPECT_EQ(resnet().num_stages(resolved(10, 1)), 6);
  EXPECT_EQ(resnet().num_stages(resolved(20, 1)), 11);
  EXPECT_EQ(resnet().num_stages(resolved(56, 1)), 29);
}

TEST(ResNetTest, ParameterCountsMatchTheReferenceNetworks) {
  torch::manual_seed(0);
  // The CIFAR ResNet-18 with a 3x3 stem (e.g. kuangliu/pytorch-cifar): 11,173,962.
  StagedModel resnet18 = build_model(conv_config("resnet", 18, 1.0));
  EXPECT_EQ(parameter_count(*resnet18), 11173962);
  // He et al.'s ResNet-20 has 269,722 parameters with zero-padding shortcuts; its two 1x1
  // projections with batch norm add 16*32 + 2*32 + 32*64 + 2*64 = 2,752.
  StagedModel resnet20 = build_model(conv_config("resnet", 20, 1.0));
  EXPECT_EQ(parameter_count(*resnet20), 272474);
}

TEST(ResNetTest, InitialisationIsKaimingFanOutAndUnitBatchNorm) {
  // Only stage 7 (block 4.1) is built: its conv2 is 512 -> 512 3x3, fan_out 512 * 9.
  const ModelConfig r = resolved(18, 1.0);
  torch::manual_seed(0);
  StagedModel block(r, 7, 8);
  const auto tensors = named_tensors(*block);
  const double expected_std = std::sqrt(2.0 / (512 * 9));
  EXPECT_NEAR(tensors.at("stage7.conv2.weight").std().item<double>(), expected_std,
              0.01 * expected_std);
  EXPECT_TRUE(tensors.at("stage7.bn2.weight").eq(1).all().item<bool>());
  EXPECT_TRUE(tensors.at("stage7.bn2.bias").eq(0).all().item<bool>());
  // Deterministic by seed.
  torch::manual_seed(0);
  StagedModel again(r, 7, 8);
  EXPECT_TRUE(torch::equal(named_tensors(*again).at("stage7.conv2.weight"),
                           tensors.at("stage7.conv2.weight")));
}

TEST(ResNetTest, StageNames) {
  const ModelConfig r = resolved(18, 1.0);
  EXPECT_EQ(resnet().stage_name(r, 0), "stem 3->64");
  EXPECT_EQ(resnet().stage_name(r, 1), "block 1.1 64ch");
  EXPECT_EQ(resnet().stage_name(r, 3), "block 2.1 128ch s2");
  EXPECT_EQ(resnet().stage_name(r, 4), "block 2.2 128ch");
  EXPECT_EQ(resnet().stage_name(r, 9), "head 512->10");
  ModelConfig cut = r;
  cut.subnet = {{"stage2.branch", {}}, {"stage4.channels", {0, 1, 2}}};
  cut = resnet().resolve(cut);
  EXPECT_EQ(resnet().stage_name(cut, 2), "block 1.2 64ch (branch dropped)");
  EXPECT_EQ(resnet().stage_name(cut, 4), "block 2.2 128ch (3/128 inner ch)");
}

TEST(ResNetTest, ADroppedIdentityBlockPassesItsInputThroughWithoutANewTensor) {
  torch::manual_seed(0);
  ModelConfig cut = resolved(20, 0.25);
  cut.subnet = {{"stage2.branch", {}}, {"stage4.branch", {}}};
  cut = resnet().resolve(cut);
  const auto identity = resnet().build_stage(cut, 2);
  const torch::Tensor x = torch::relu(torch::randn(with_batch(2, resnet().boundary_shape(cut, 2))));
  EXPECT_TRUE(identity->forward(x).is_same(x));
  // A dropped downsampling block still projects its shortcut, then applies the ReLU.
  const auto downsampling = resnet().build_stage(cut, 4);
  const torch::Tensor y =
      downsampling->forward(torch::randn(with_batch(2, resnet().boundary_shape(cut, 4))));
  EXPECT_EQ(y.sizes().vec(), with_batch(2, resnet().boundary_shape(cut, 5)));
  EXPECT_GE(y.min().item<float>(), 0.0F);
}

TEST(ResNetTest, ForwardShapesForGreyAndColourImages) {
  torch::manual_seed(0);
  for (const Shape& input : {Shape{1, 28, 28}, Shape{3, 32, 32}}) {
    StagedModel model(resolved(18, 0.125, input));
    EXPECT_EQ(model->forward(torch::randn(with_batch(2, input))).sizes().vec(),
              (std::vector<int64_t>{2, 10}));
  }
}

TEST(ResNetTest, BoundaryShapesAreAnalyticAndMatchTheTensors) {
  torch::manual_seed(0);
  const ModelConfig r = resolved(18, 0.125, {1, 28, 28});  // channels 8, 16, 32, 64
  EXPECT_EQ(resnet().boundary_shape(r, 0), (Shape{1, 28, 28}));
  EXPECT_EQ(resnet().boundary_shape(r, 1), (Shape{8, 28, 28}));
  EXPECT_EQ(resnet().boundary_shape(r, 3), (Shape{8, 28, 28}));
  EXPECT_EQ(resnet().boundary_shape(r, 4), (Shape{16, 14, 14}));
  EXPECT_EQ(resnet().boundary_shape(r, 6), (Shape{32, 7, 7}));
  EXPECT_EQ(resnet().boundary_shape(r, 8), (Shape{64, 4, 4}));
  EXPECT_EQ(resnet().boundary_shape(r, 10), (Shape{10}));
  testing::expect_boundaries_match(r, 2);
  testing::expect_boundaries_match(small_resnet20(), 2);
  testing::expect_boundaries_match(resolved(8, 0.5, {3, 9, 13}), 2);  // odd sizes round up
}

TEST(ResNetTest, WidthsNeverRoundToZero) {
  const ModelConfig r = resolved(20, 0.01);
  EXPECT_EQ(resnet().boundary_shape(r, 1), (Shape{1, 32, 32}));
  EXPECT_EQ(resnet().boundary_shape(r, 10), (Shape{1, 8, 8}));
}

TEST(ResNetTest, ForwardFlopsMatchAHandCount) {
  const ModelConfig r = resolved(20, 1.0);
  // Stage 4 = block 2.1, 16 -> 32 channels, stride 2, output 32 x 16 x 16 = 8192 values:
  //   conv1 2*8192*(16*9) = 2,359,296   bn1 5*8192 = 40,960   relu 8,192
  //   conv2 2*8192*(32*9) = 4,718,592   bn2 40,960            add 8,192
  //   shortcut 2*8192*16  =   262,144   its bn 40,960         final relu 8,192
  EXPECT_EQ(resnet().stage_forward_flops(r, 4), 7487488);
  // Stem: conv 2*(16*1024)*27 = 884,736, bn 5*16384 = 81,920, relu 16,384.
  EXPECT_EQ(resnet().stage_forward_flops(r, 0), 983040);
  // Head: pool over 64*8*8 = 4,096 values, linear 2*64*10 + 10 = 1,290.
  EXPECT_EQ(resnet().stage_forward_flops(r, 10), 5386);

  ModelConfig cut = r;
  cut.subnet = {{"stage4.channels", {0, 1, 2, 3, 4, 5, 6, 7}}, {"stage5.branch", {}}};
  cut = resnet().resolve(cut);
  // 8 inner channels (2048 values): conv1 589,824, bn1 10,240, relu 2,048, conv2 1,179,648,
  // bn2 40,960, add 8,192, shortcut 262,144 + 40,960, final relu 8,192.
  EXPECT_EQ(resnet().stage_forward_flops(cut, 4), 2142208);
  // A dropped identity block is the identity: no work.
  EXPECT_EQ(resnet().stage_forward_flops(cut, 5), 0);

  StagedModel model(r);
  int64_t total = 0;
  for (int64_t s = 0; s < resnet().num_stages(r); ++s) total += resnet().stage_forward_flops(r, s);
  EXPECT_EQ(model->forward_flops(), total);
}

TEST(ResNetTest, UnitGroupsNameTheModelsTensors) {
  const ModelConfig r = small_resnet20();
  const auto groups = resnet().unit_groups(r);
  ASSERT_EQ(groups.size(), 18u);  // a branch and a channel group per block
  EXPECT_EQ(groups[6].name, "stage4.branch");
  EXPECT_EQ(groups[6].kind, UnitKind::Branch);
  EXPECT_EQ(groups[6].stage, 4);
  EXPECT_EQ(groups[7].name, "stage4.channels");
  EXPECT_EQ(groups[7].kind, UnitKind::Channel);
  EXPECT_EQ(groups[7].size, 8);
  EXPECT_EQ(groups[7].slices.size(), 6u);
  EXPECT_EQ(groups[7].slices.front().name, "stage4.conv1.weight");
  EXPECT_EQ(groups[7].slices.back().name, "stage4.conv2.weight");
  EXPECT_EQ(groups[7].slices.back().dim, 1);
  testing::expect_unit_groups_match_tensors(r);
  testing::expect_unit_groups_match_tensors(resolved(34, 0.125, {1, 28, 28}));
}

TEST(ResNetTest, SubnetAllocatesOnlyWhatItHolds) {
  torch::manual_seed(0);
  ModelConfig config = small_resnet20();
  const int64_t full = parameter_count(*StagedModel(config));
  config.subnet = {{"stage2.branch", {}}, {"stage4.branch", {}}, {"stage8.channels", {0, 5, 9}}};
  StagedModel sub = build_model(config);
  // stage2 (4 -> 4): conv1 144, bn1 8, conv2 144, bn2 8.
  // stage4 (4 -> 8, s2): conv1 288, bn1 16, conv2 576, bn2 16; its projection stays.
  // stage8 (16 -> 16) keeps 3 of 16 inner channels: conv1 and conv2 lose 13*16*9 each, bn1 26.
  EXPECT_EQ(full - parameter_count(*sub), 304 + 896 + (2 * 13 * 16 * 9 + 26));

  const auto tensors = named_tensors(*sub);
  for (const auto& [name, tensor] : tensors) EXPECT_NE(name.rfind("stage2.", 0), 0u) << name;
  EXPECT_EQ(tensors.count("stage4.conv1.weight"), 0u);
  EXPECT_EQ(tensors.count("stage4.bn1.running_mean"), 0u);
  EXPECT_EQ(tensors.count("stage4.shortcut_conv.weight"), 1u);
  EXPECT_EQ(tensors.at("stage8.conv1.weight").sizes().vec(), (std::vector<int64_t>{3, 16, 3, 3}));
  EXPECT_EQ(tensors.at("stage8.bn1.running_var").numel(), 3);
  EXPECT_EQ(tensors.at("stage8.conv2.weight").sizes().vec(), (std::vector<int64_t>{16, 3, 3, 3}));
  testing::expect_trains(sub, 4);
}

TEST(ResNetTest, SubnetComputesTheFullModelWithoutItsLeftOutUnits) {
  torch::manual_seed(0);
  const Subnet subnet = {
      {"stage2.branch", {}}, {"stage4.branch", {}}, {"stage8.channels", {0, 5, 9}}};
  testing::expect_subnet_matches_silenced_full(
      small_resnet20(), subnet, [](std::map<std::string, torch::Tensor> full) {
        // A branch whose last batch norm is zero adds nothing to the shortcut.
        for (const char* stage : {"stage2", "stage4"}) {
          full.at(std::string(stage) + ".bn2.weight").zero_();
          full.at(std::string(stage) + ".bn2.bias").zero_();
        }
        torch::Tensor conv2 = full.at("stage8.conv2.weight");
        const torch::Tensor held = conv2.index_select(1, torch::tensor({0, 5, 9}, torch::kLong));
        conv2.zero_();
        conv2.index_copy_(1, torch::tensor({0, 5, 9}, torch::kLong), held);
      });
}

TEST(ResNetTest, PartitionsHoldTheFullModelsNames) {
  const ModelConfig r = small_resnet20();
  for (int64_t cut : {1, 4, 10}) testing::expect_partitions_cover_full_model(r, cut);
  StagedModel back(r, 4, -1);
  EXPECT_EQ(tensor_names(*back).count("stage4.shortcut_bn.running_mean"), 1u);
  EXPECT_EQ(back->input_shape(), (Shape{4, 32, 32}));
}

void expect_usage_error(const ModelConfig& config, const std::string& fragment) {
  try {
    resnet().resolve(config);
    ADD_FAILURE() << "expected a UsageError mentioning '" << fragment << "'";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

TEST(ResNetTest, RejectsInvalidSettings) {
  expect_usage_error(conv_config("resnet", 12, 1), "10, 18, 34");
  expect_usage_error(conv_config("resnet", 50, 1), "depth 50");
  expect_usage_error(conv_config("resnet", 18, -1), "width");
  expect_usage_error(conv_config("resnet", 18, 1, {28, 28}), "input shape");
  expect_usage_error(conv_config("resnet", 18, 1, {1, 0, 28}), "input shape");
  expect_usage_error(conv_config("resnet", 18, 1, {3, 32, 32}, 1), "num_classes");
  ModelConfig config = conv_config("resnet", 20, 0.25);
  config.subnet = {{"stage11.branch", {}}};
  expect_usage_error(config, "unknown unit group");
  config.subnet = {{"stage0.channels", {0}}};  // the stem is held by all
  expect_usage_error(config, "unknown unit group");
  config.subnet = {{"stage1.channels", {}}};
  expect_usage_error(config, "holds no channel");
  config.subnet = {{"stage1.channels", {4}}};  // 4 inner channels at width 0.25
  expect_usage_error(config, "out of range");
  config.subnet = {{"stage1.branch", {1}}};
  expect_usage_error(config, "out of range");
}

}  // namespace
}  // namespace tessera::models
