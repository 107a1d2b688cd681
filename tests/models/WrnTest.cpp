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

const Architecture& wrn() {
  return architecture("wrn");
}

ModelConfig resolved(int64_t depth, double width, Shape input = {3, 32, 32}) {
  return wrn().resolve(conv_config("wrn", depth, width, std::move(input)));
}

// WRN-16 at widen factor 0.5: stem 16 channels, levels of 8, 16, 32. Stage 1 (block 1.1) projects
// 16 -> 8 at stride 1, stages 3 and 5 downsample, stages 2, 4, 6 are identity blocks, 7 the head.
ModelConfig small_wrn() {
  return resolved(16, 0.5);
}

TEST(WrnTest, ResolveFillsDefaults) {
  ModelConfig config;
  config.arch = "wrn";
  const ModelConfig r = wrn().resolve(config);
  EXPECT_EQ(r.depth, 16);
  EXPECT_EQ(r.width, 4.0);
  EXPECT_EQ(wrn().num_stages(r), 8);  // stem, 3 levels of 2 blocks, head
  EXPECT_EQ(wrn().num_stages(resolved(28, 10)), 14);
  EXPECT_EQ(wrn().num_stages(resolved(10, 1)), 5);
}

TEST(WrnTest, ParameterCountOfWrn16x4) {
  torch::manual_seed(0);
  // By hand (no conv biases; a batch norm has 2 parameters per channel):
  //   stem 3*16*9 = 432
  //   block 1.1: bn 32 + conv 16*64*9 + bn 128 + conv 64*64*9 + projection 16*64 = 47,264
  //   block 1.2: 128 + 36,864 + 128 + 36,864                                     = 73,984
  //   block 2.1: 128 + 73,728 + 256 + 147,456 + 8,192                            = 229,760
  //   block 2.2: 256 + 147,456 + 256 + 147,456                                   = 295,424
  //   block 3.1: 256 + 294,912 + 512 + 589,824 + 32,768                          = 918,272
  //   block 3.2: 512 + 589,824 + 512 + 589,824                                   = 1,180,672
  //   head: bn 512 + linear 256*10 + 10                                           = 3,082
  StagedModel model = build_model(conv_config("wrn", 0, 0));
  EXPECT_EQ(parameter_count(*model), 2748890);
}

TEST(WrnTest, StageNames) {
  const ModelConfig r = resolved(16, 4);
  EXPECT_EQ(wrn().stage_name(r, 0), "stem 3->16");
  EXPECT_EQ(wrn().stage_name(r, 1), "block 1.1 64ch");
  EXPECT_EQ(wrn().stage_name(r, 3), "block 2.1 128ch s2");
  EXPECT_EQ(wrn().stage_name(r, 6), "block 3.2 256ch");
  EXPECT_EQ(wrn().stage_name(r, 7), "head 256->10");
}

TEST(WrnTest, ForwardShapesForGreyAndColourImages) {
  torch::manual_seed(0);
  for (const Shape& input : {Shape{1, 28, 28}, Shape{3, 32, 32}}) {
    StagedModel model(resolved(10, 0.5, input));
    EXPECT_EQ(model->forward(torch::randn(with_batch(2, input))).sizes().vec(),
              (std::vector<int64_t>{2, 10}));
  }
}

TEST(WrnTest, BoundaryShapesAreAnalyticAndMatchTheTensors) {
  torch::manual_seed(0);
  const ModelConfig r = resolved(16, 0.5, {1, 28, 28});
  EXPECT_EQ(wrn().boundary_shape(r, 1), (Shape{16, 28, 28}));
  EXPECT_EQ(wrn().boundary_shape(r, 2), (Shape{8, 28, 28}));
  EXPECT_EQ(wrn().boundary_shape(r, 4), (Shape{16, 14, 14}));
  EXPECT_EQ(wrn().boundary_shape(r, 6), (Shape{32, 7, 7}));
  EXPECT_EQ(wrn().boundary_shape(r, 7), (Shape{32, 7, 7}));
  EXPECT_EQ(wrn().boundary_shape(r, 8), (Shape{10}));
  testing::expect_boundaries_match(r, 2);
  testing::expect_boundaries_match(resolved(10, 1, {3, 32, 32}), 2);
}

TEST(WrnTest, ForwardFlopsMatchAHandCount) {
  const ModelConfig r = resolved(16, 4);
  // Stage 3 = block 2.1, 64 -> 128 channels, stride 2, input 64x32x32 (65,536 values), output
  // 128x16x16 (32,768 values):
  //   bn1 5*65,536 = 327,680          relu 65,536
  //   conv1 2*32,768*(64*9) = 37,748,736
  //   bn2 5*32,768 = 163,840          relu 32,768
  //   conv2 2*32,768*(128*9) = 75,497,472
  //   add 32,768                      projection 2*32,768*64 = 4,194,304
  EXPECT_EQ(wrn().stage_forward_flops(r, 3), 118063104);
  EXPECT_EQ(wrn().stage_forward_flops(r, 0), 884736);  // conv 2*(16*1024)*27, no BN in the stem
  // Head over 256x8x8: bn 81,920, relu 16,384, pool 16,384, linear 2*256*10 + 10.
  EXPECT_EQ(wrn().stage_forward_flops(r, 7), 119818);

  ModelConfig cut = r;
  cut.subnet = {{"stage3.branch", {}}, {"stage4.branch", {}}};
  cut = wrn().resolve(cut);
  EXPECT_EQ(wrn().stage_forward_flops(cut, 3), 4194304);  // only the projection
  EXPECT_EQ(wrn().stage_forward_flops(cut, 4), 0);        // a dropped identity block is free
}

TEST(WrnTest, UnitGroupsNameTheModelsTensors) {
  const ModelConfig r = small_wrn();
  const auto groups = wrn().unit_groups(r);
  ASSERT_EQ(groups.size(), 12u);
  EXPECT_EQ(groups[5].name, "stage3.channels");
  EXPECT_EQ(groups[5].size, 16);
  // The channels of conv1 are normalised by bn2 in a pre-activation block.
  EXPECT_EQ(groups[5].slices[1].name, "stage3.bn2.weight");
  EXPECT_EQ(groups[5].slices[1].dim, 0);
  testing::expect_unit_groups_match_tensors(r);
}

TEST(WrnTest, SubnetAllocatesOnlyWhatItHolds) {
  torch::manual_seed(0);
  ModelConfig config = small_wrn();
  const int64_t full = parameter_count(*StagedModel(config));
  config.subnet = {{"stage1.branch", {}}, {"stage4.branch", {}}, {"stage5.channels", {1, 2, 30}}};
  StagedModel sub = build_model(config);
  // stage1 (16 -> 8): bn1 32, conv1 16*8*9, bn2 16, conv2 8*8*9; its projection stays.
  // stage4 (16 -> 16): bn1 32, conv1 16*16*9, bn2 32, conv2 16*16*9.
  // stage5 (16 -> 32, s2) keeps 3 of 32 inner channels: conv1 loses 29*16*9, bn2 58,
  // conv2 29*32*9.
  EXPECT_EQ(full - parameter_count(*sub),
            (32 + 1152 + 16 + 576) + (32 + 2304 + 32 + 2304) + (29 * 16 * 9 + 58 + 29 * 32 * 9));
  const auto tensors = named_tensors(*sub);
  EXPECT_EQ(tensors.count("stage1.bn1.running_mean"), 0u);
  EXPECT_EQ(tensors.count("stage1.shortcut_conv.weight"), 1u);
  for (const auto& [name, tensor] : tensors) EXPECT_NE(name.rfind("stage4.", 0), 0u) << name;
  EXPECT_EQ(tensors.at("stage5.conv1.weight").sizes().vec(), (std::vector<int64_t>{3, 16, 3, 3}));
  EXPECT_EQ(tensors.at("stage5.bn1.weight").numel(), 16);  // bn1 normalises the block's input
  EXPECT_EQ(tensors.at("stage5.bn2.running_mean").numel(), 3);
  testing::expect_trains(sub, 4);
}

TEST(WrnTest, SubnetComputesTheFullModelWithoutItsLeftOutUnits) {
  torch::manual_seed(0);
  const Subnet subnet = {
      {"stage1.branch", {}}, {"stage4.branch", {}}, {"stage5.channels", {1, 2, 30}}};
  testing::expect_subnet_matches_silenced_full(
      small_wrn(), subnet, [](std::map<std::string, torch::Tensor> full) {
        // A branch whose last conv is zero adds nothing; the projection reads the raw input
        // in both models.
        full.at("stage1.conv2.weight").zero_();
        full.at("stage4.conv2.weight").zero_();
        const torch::Tensor kept = torch::tensor({1, 2, 30}, torch::kLong);
        torch::Tensor conv2 = full.at("stage5.conv2.weight");
        const torch::Tensor held = conv2.index_select(1, kept);
        conv2.zero_();
        conv2.index_copy_(1, kept, held);
      });
}

TEST(WrnTest, PartitionsHoldTheFullModelsNames) {
  const ModelConfig r = small_wrn();
  for (int64_t cut : {1, 3, 7}) testing::expect_partitions_cover_full_model(r, cut);
  StagedModel back(r, 7, -1);
  EXPECT_EQ(tensor_names(*back).count("stage7.bn.running_var"), 1u);
  EXPECT_EQ(back->input_shape(), (Shape{32, 8, 8}));
}

void expect_usage_error(const ModelConfig& config, const std::string& fragment) {
  try {
    wrn().resolve(config);
    ADD_FAILURE() << "expected a UsageError mentioning '" << fragment << "'";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

TEST(WrnTest, RejectsInvalidSettings) {
  expect_usage_error(conv_config("wrn", 15, 4), "6n+4");
  expect_usage_error(conv_config("wrn", 4, 4), "6n+4");
  expect_usage_error(conv_config("wrn", -2, 4), "6n+4");
  expect_usage_error(conv_config("wrn", 16, -1), "width");
  expect_usage_error(conv_config("wrn", 16, 4, {3, 32}), "input shape");
  expect_usage_error(conv_config("wrn", 16, 4, {3, 32, 32}, 0), "num_classes");
  ModelConfig config = conv_config("wrn", 10, 1);
  config.subnet = {{"stage4.branch", {}}};  // stage 4 is the head
  expect_usage_error(config, "unknown unit group");
  config.subnet = {{"stage2.channels", {32}}};
  expect_usage_error(config, "out of range");
  config.subnet = {{"stage2.channels", {3, 1}}};
  expect_usage_error(config, "sorted");
}

}  // namespace
}  // namespace tessera::models
