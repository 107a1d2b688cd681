// Dropout and stochastic depth (models/regularizers.h) as layers and inside every model family.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>

#include "tessera/core/error.h"
#include "tessera/models/regularizers.h"
#include "tessera/models/staged_model.h"

using namespace tessera;
using namespace tessera::models;

namespace {

ModelConfig reg_mlp(double dropout) {
  ModelConfig config;
  config.input_shape = {1, 4, 4};
  config.hidden = {64, 32};
  config.num_classes = 3;
  config.dropout = dropout;
  return config;
}

ModelConfig reg_conv(const std::string& arch, double dropout, double drop_path) {
  ModelConfig config;
  config.arch = arch;
  config.depth = arch == "resnet" ? 8 : 10;
  config.width = arch == "resnet" ? 0.5 : 1;
  config.input_shape = {3, 8, 8};
  config.dropout = dropout;
  config.drop_path = drop_path;
  return config;
}

ModelConfig reg_vit(double dropout, double drop_path) {
  ModelConfig config;
  config.arch = "vit";
  config.depth = 2;
  config.input_shape = {3, 8, 8};
  config.embed_dim = 16;
  config.num_heads = 2;
  config.mlp_dim = 32;
  config.dropout = dropout;
  config.drop_path = drop_path;
  return config;
}

// The same architecture and seed with both regularisers off.
StagedModel reg_build(ModelConfig config, uint64_t seed, double dropout, double drop_path) {
  config.dropout = dropout;
  config.drop_path = drop_path;
  torch::manual_seed(seed);
  return build_model(config);
}

int reg_stochastic_layers(torch::nn::Module& model) {
  int count = 0;
  for (const auto& module : model.modules(/*include_self=*/false))
    count += dynamic_cast<StochasticLayer*>(module.get()) != nullptr;
  return count;
}

std::string reg_error(const ModelConfig& config) {
  try {
    build_model(config);
  } catch (const UsageError& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST(Regularizers, DropoutZeroesAboutPAndScalesTheRestInTraining) {
  Dropout dropout(0.3, /*channelwise=*/false);
  dropout->reseed(1);
  const torch::Tensor out = dropout(torch::ones({200, 500}));
  const double dropped = out.eq(0).to(torch::kDouble).mean().item<double>();
  EXPECT_NEAR(dropped, 0.3, 0.01);
  EXPECT_TRUE(torch::allclose(out.masked_select(out.ne(0)), torch::full({1}, 1 / 0.7)));
}

TEST(Regularizers, ChannelDropoutDropsWholeChannels) {
  Dropout dropout(0.5, /*channelwise=*/true);
  const torch::Tensor out = dropout(torch::ones({64, 32, 3, 3}));
  // Every channel of every sample is all zero or all 2.
  const torch::Tensor zeros = out.eq(0).flatten(2).to(torch::kLong).sum(2);
  EXPECT_TRUE(torch::logical_or(zeros.eq(0), zeros.eq(9)).all().item<bool>());
  EXPECT_NEAR(zeros.eq(9).to(torch::kDouble).mean().item<double>(), 0.5, 0.03);
  EXPECT_TRUE(torch::allclose(out.masked_select(out.ne(0)), torch::full({1}, 2.0)));
}

TEST(Regularizers, DropPathDropsWholeSamples) {
  DropPath drop_path(0.25);
  const torch::Tensor out = drop_path(torch::ones({4000, 5, 2}));
  const torch::Tensor zeros = out.eq(0).flatten(1).to(torch::kLong).sum(1);
  EXPECT_TRUE(torch::logical_or(zeros.eq(0), zeros.eq(10)).all().item<bool>());
  EXPECT_NEAR(zeros.eq(10).to(torch::kDouble).mean().item<double>(), 0.25, 0.02);
  EXPECT_TRUE(torch::allclose(out.masked_select(out.ne(0)), torch::full({1}, 1 / 0.75)));
}

TEST(Regularizers, LayersAreTheIdentityInEvalMode) {
  const torch::Tensor x = torch::randn({8, 4, 3, 3});
  Dropout dropout(0.5, true);
  DropPath drop_path(0.5);
  dropout->eval();
  drop_path->eval();
  EXPECT_TRUE(torch::equal(dropout(x), x));
  EXPECT_TRUE(torch::equal(drop_path(x), x));
}

TEST(Regularizers, GradientsFlowThroughKeptUnitsOnly) {
  Dropout dropout(0.5, false);
  const torch::Tensor x = torch::ones({50, 20}, torch::requires_grad());
  const torch::Tensor out = dropout(x);
  out.sum().backward();
  EXPECT_TRUE(torch::equal(x.grad(), out.detach()));  // d(x * mask)/dx = mask
}

TEST(Regularizers, OffMeansNoLayerAndTheSameModel) {
  for (const ModelConfig& config :
       {reg_mlp(0), reg_conv("resnet", 0, 0), reg_conv("wrn", 0, 0), reg_vit(0, 0)}) {
    StagedModel model = reg_build(config, 3, 0, 0);
    EXPECT_EQ(reg_stochastic_layers(*model), 0) << config.arch;
  }
}

TEST(Regularizers, EveryFamilyRegistersItsLayersWhereSdpMasks) {
  const auto names = [](torch::nn::Module& model) {
    std::vector<std::string> found;
    for (const auto& item : model.named_modules("", false))
      if (dynamic_cast<StochasticLayer*>(item.value().get())) found.push_back(item.key());
    return found;
  };
  // mlp: after each hidden layer's activation, not after the logits.
  StagedModel mlp = reg_build(reg_mlp(0), 1, 0.5, 0);
  EXPECT_EQ(names(*mlp), (std::vector<std::string>{"stage0.dropout", "stage1.dropout"}));
  // resnet-8: three blocks (stages 1..3), each with channel dropout and drop path.
  StagedModel resnet = reg_build(reg_conv("resnet", 0, 0), 1, 0.5, 0.5);
  EXPECT_EQ(reg_stochastic_layers(*resnet), 6);
  EXPECT_EQ(names(*resnet).front(), "stage1.dropout");
  // vit: MLP dropout inside the sublayer; one drop-path layer per block serves both sublayers.
  StagedModel vit = reg_build(reg_vit(0, 0), 1, 0.5, 0.5);
  EXPECT_EQ(names(*vit), (std::vector<std::string>{"stage1.mlp.dropout", "stage1.drop_path",
                                                   "stage2.mlp.dropout", "stage2.drop_path"}));
}

TEST(Regularizers, EvalOutputEqualsTheModelWithoutThemAndTheSameWeights) {
  const torch::Tensor images = torch::randn({6, 3, 8, 8});
  for (const ModelConfig& config :
       {reg_conv("resnet", 0, 0), reg_conv("wrn", 0, 0), reg_vit(0, 0)}) {
    StagedModel plain = reg_build(config, 4, 0, 0);
    StagedModel regularized = reg_build(config, 4, 0.5, 0.3);
    // The layers own no tensors and draw nothing at construction: the weights are the same.
    const auto expected = plain->named_parameters();
    for (const auto& item : regularized->named_parameters())
      ASSERT_TRUE(torch::equal(item.value(), *expected.find(item.key()))) << item.key();
    plain->eval();
    regularized->eval();
    EXPECT_TRUE(torch::equal(regularized->forward(images), plain->forward(images))) << config.arch;
    plain->train();
    regularized->train();
    EXPECT_FALSE(torch::equal(regularized->forward(images), plain->forward(images))) << config.arch;
  }
  StagedModel plain = reg_build(reg_mlp(0), 4, 0, 0);
  StagedModel regularized = reg_build(reg_mlp(0), 4, 0.5, 0);
  plain->eval();
  regularized->eval();
  const torch::Tensor x = torch::randn({6, 1, 4, 4});
  EXPECT_TRUE(torch::equal(regularized->forward(x), plain->forward(x)));
}

TEST(Regularizers, MlpDropsAboutPOfItsHiddenNeurons) {
  // Stage 0 alone: linear, relu, dropout. Compare with the same weights without dropout.
  StagedModel plain(reg_mlp(0), 0, 1);
  StagedModel regularized(reg_mlp(0.4), 0, 1);
  {
    torch::NoGradGuard no_grad;
    for (const auto& item : regularized->named_parameters())
      item.value().copy_(*plain->named_parameters().find(item.key()));
  }
  const torch::Tensor x = torch::randn({500, 1, 4, 4});
  const torch::Tensor expected = plain->forward(x);
  const torch::Tensor out = regularized->forward(x);
  const torch::Tensor active = expected.ne(0);
  const torch::Tensor dropped = out.eq(0).logical_and(active);
  EXPECT_NEAR(dropped.sum().item<double>() / active.sum().item<double>(), 0.4, 0.02);
  const torch::Tensor kept = out.ne(0);
  EXPECT_TRUE(torch::allclose(out.masked_select(kept), expected.masked_select(kept) / 0.6));
}

TEST(Regularizers, WrnBlockDropsAboutPOfItsBranchesPerSample) {
  // The first block of wrn-10 (stage 1, 16 -> 16 channels, no projection) is x + branch(x). bn2
  // comes before the drop, so the branch itself is the same with or without stochastic depth.
  const ModelConfig config = reg_conv("wrn", 0, 0);
  const torch::Tensor x = torch::randn({400, 16, 8, 8});
  StagedModel plain_block(architecture("wrn").resolve(config), 1, 2);
  ModelConfig with_drop = architecture("wrn").resolve(config);
  with_drop.drop_path = 0.5;
  StagedModel block(with_drop, 1, 2);
  {
    torch::NoGradGuard no_grad;
    for (const auto& item : block->named_parameters())
      item.value().copy_(*plain_block->named_parameters().find(item.key()));
  }
  const torch::Tensor branch = (plain_block->forward(x) - x).detach();
  const torch::Tensor out = block->forward(x).detach();
  int64_t dropped = 0;
  for (int64_t i = 0; i < x.size(0); ++i) {
    if (torch::equal(out[i], x[i])) {
      ++dropped;
    } else {
      EXPECT_TRUE(torch::allclose(out[i], x[i] + 2 * branch[i], 1e-4, 1e-5)) << "sample " << i;
    }
  }
  EXPECT_NEAR(static_cast<double>(dropped) / 400.0, 0.5, 0.08);
}

TEST(Regularizers, VitBlockDropsEachSublayerIndependently) {
  // A sample passes through a block unchanged when both its sublayers are dropped: P^2.
  ModelConfig config = architecture("vit").resolve(reg_vit(0, 0.5));
  StagedModel block(config, 1, 2);
  const torch::Tensor x = torch::randn({1000, 5, 16});
  const torch::Tensor out = block->forward(x).detach();
  int64_t unchanged = 0;
  for (int64_t i = 0; i < x.size(0); ++i) unchanged += torch::equal(out[i], x[i]);
  EXPECT_NEAR(static_cast<double>(unchanged) / 1000.0, 0.25, 0.05);
}

TEST(Regularizers, MasksDependOnlyOnTheSeedAndTheLayersName) {
  const ModelConfig config = architecture("mlp").resolve(reg_mlp(0.5));
  StagedModel full = reg_build(config, 2, 0.5, 0);
  const torch::Tensor x = torch::randn({16, 1, 4, 4});
  seed_stochastic_layers(*full, 11);
  const torch::Tensor first = full->forward(x);
  seed_stochastic_layers(*full, 11);
  EXPECT_TRUE(torch::equal(full->forward(x), first));
  seed_stochastic_layers(*full, 12);
  EXPECT_FALSE(torch::equal(full->forward(x), first));
  // A partition's layers draw the same masks as the full model's: they have the same names.
  StagedModel left(config, 0, 2);
  StagedModel right(config, 2);
  {
    torch::NoGradGuard no_grad;
    for (auto* part : {&left, &right})
      for (const auto& item : (*part)->named_parameters())
        item.value().copy_(*full->named_parameters().find(item.key()));
  }
  seed_stochastic_layers(*full, 11);
  seed_stochastic_layers(*left, 11);
  seed_stochastic_layers(*right, 11);
  EXPECT_TRUE(torch::equal(right->forward(left->forward(x)), full->forward(x)));
  EXPECT_NE(stochastic_layer_seed(1, 0, 0), stochastic_layer_seed(1, 1, 0));  // per worker
  EXPECT_NE(stochastic_layer_seed(1, 0, 0), stochastic_layer_seed(1, 0, 1));  // per epoch
}

TEST(Regularizers, SubnetsRegulariseOnlyWhatTheyHold) {
  // resnet-8 holding only block 2's branch, with 3 of its 16 inner channels: one dropout and one
  // drop path layer, on that block.
  ModelConfig config = reg_conv("resnet", 0.5, 0.5);
  config.subnet = {{"stage1.branch", {}}, {"stage3.branch", {}}, {"stage2.channels", {0, 2, 5}}};
  torch::manual_seed(1);
  StagedModel model = build_model(config);
  std::vector<std::string> names;
  for (const auto& item : model->named_modules("", false))
    if (dynamic_cast<StochasticLayer*>(item.value().get())) names.push_back(item.key());
  EXPECT_EQ(names, (std::vector<std::string>{"stage2.dropout", "stage2.drop_path"}));
  const torch::Tensor out = model->forward(torch::randn({4, 3, 8, 8}));
  out.sum().backward();
  EXPECT_EQ(out.sizes(), (std::vector<int64_t>{4, 10}));
}

TEST(Regularizers, BadProbabilitiesAndDropPathOnAnMlpAreUsageErrors) {
  for (double p : {-0.1, 1.0, 1.5, std::numeric_limits<double>::quiet_NaN()}) {
    EXPECT_NE(reg_error(reg_mlp(p)).find("--dropout must be in [0, 1)"), std::string::npos) << p;
    EXPECT_NE(reg_error(reg_conv("resnet", 0, p)).find("--drop-path must be in [0, 1)"),
              std::string::npos)
        << p;
  }
  ModelConfig mlp = reg_mlp(0);
  mlp.drop_path = 0.5;
  const std::string message = reg_error(mlp);
  EXPECT_NE(message.find("--drop-path"), std::string::npos) << message;
  EXPECT_NE(message.find("mlp"), std::string::npos) << message;
  EXPECT_NO_THROW(build_model(reg_vit(0.99, 0.99)));
}

TEST(Regularizers, ConfigJsonRoundTripsAndOldConfigsLoadWithoutThem) {
  ModelConfig config = reg_conv("wrn", 0.25, 0.125);
  const ModelConfig back = model_config_from_json(to_json(config));
  EXPECT_EQ(back.dropout, 0.25);
  EXPECT_EQ(back.drop_path, 0.125);
  // A config written before the fields existed.
  nlohmann::json old = to_json(reg_conv("wrn", 0, 0));
  old.erase("dropout");
  old.erase("drop_path");
  const ModelConfig loaded = model_config_from_json(old);
  EXPECT_EQ(loaded.dropout, 0);
  EXPECT_EQ(loaded.drop_path, 0);
  old["dropout"] = "half";
  EXPECT_THROW(model_config_from_json(old), UsageError);
}
