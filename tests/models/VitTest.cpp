#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "tessera/core/error.h"
#include "tessera/metrics/flops.h"
#include "tessera/models/architecture.h"
#include "tessera/models/attention.h"
#include "tessera/models/staged_model.h"

namespace tessera::models {
namespace {

// 1x8x8 image, 4x4 patches -> 4 patches, 5 tokens with the class token; dim 8 = 2 heads of 4.
ModelConfig tiny_config() {
  ModelConfig config;
  config.arch = "vit";
  config.input_shape = {1, 8, 8};
  config.num_classes = 3;
  config.depth = 1;
  config.patch_size = 4;
  config.embed_dim = 8;
  config.num_heads = 2;
  config.mlp_dim = 16;
  config.pool = "cls";
  return config;
}

// A slightly larger model for equivalence tests: 4 heads of 4, 2 blocks, 3x8x8 input.
ModelConfig small_config() {
  ModelConfig config = tiny_config();
  config.input_shape = {3, 8, 8};
  config.depth = 2;
  config.embed_dim = 16;
  config.num_heads = 4;
  config.mlp_dim = 12;
  config.num_classes = 5;
  return config;
}

std::map<std::string, torch::Tensor> parameters_by_name(torch::nn::Module& module) {
  std::map<std::string, torch::Tensor> named;
  for (const auto& item : module.named_parameters()) named[item.key()] = item.value();
  return named;
}

std::set<std::string> parameter_names(torch::nn::Module& module) {
  std::set<std::string> names;
  for (const auto& item : module.named_parameters()) names.insert(item.key());
  return names;
}

const Architecture& vit() {
  return architecture("vit");
}

TEST(VitTest, ParameterCountMatchesHandArithmetic) {
  StagedModel model = build_model(tiny_config());
  // Embedding: conv 8*1*4*4 + 8 = 136, cls token 8, position 5 tokens * 8 = 40 -> 184.
  const int64_t embed = (8 * 1 * 4 * 4 + 8) + 8 + 5 * 8;
  // Attention: LN 2*8 = 16, q/k/v 3 * (8*8 + 8) = 216, proj 8*8 + 8 = 72 -> 304.
  const int64_t attn = 2 * 8 + 3 * (8 * 8 + 8) + (8 * 8 + 8);
  // MLP: LN 16, fc1 8*16 + 16 = 144, fc2 16*8 + 8 = 136 -> 296.
  const int64_t mlp = 2 * 8 + (8 * 16 + 16) + (16 * 8 + 8);
  // Head: LN 16, fc 8*3 + 3 = 27 -> 43.
  const int64_t head = 2 * 8 + (8 * 3 + 3);
  EXPECT_EQ(embed + attn + mlp + head, 827);
  EXPECT_EQ(parameter_count(*model), 827);
  EXPECT_EQ(parameter_count(*build_model(tiny_config(), 0, 1)), embed);
  EXPECT_EQ(parameter_count(*build_model(tiny_config(), 1, 2)), attn + mlp);
  EXPECT_EQ(parameter_count(*build_model(tiny_config(), 2, 3)), head);
}

TEST(VitTest, DefaultsAndStageNames) {
  ModelConfig config;
  config.arch = "vit";
  config = vit().resolve(config);
  EXPECT_EQ(config.depth, 6);
  ASSERT_EQ(vit().num_stages(config), 8);
  EXPECT_EQ(vit().stage_name(config, 0), "embed 4x4 patches ->128");
  EXPECT_EQ(vit().stage_name(config, 3), "block 3 (4 heads)");
  EXPECT_EQ(vit().stage_name(config, 7), "head 128->10");
  // 28/4 = 7 -> 49 patches + class token.
  EXPECT_EQ(vit().boundary_shape(config, 1), (Shape{50, 128}));
  EXPECT_EQ(vit().boundary_shape(config, 8), (Shape{10}));

  config.subnet = {{"stage2.heads", {0, 3}},
                   {"stage2.mlp_hidden", {1, 2, 3}},
                   {"stage4.attn", {}},
                   {"stage5.mlp", {}}};
  config = vit().resolve(config);
  EXPECT_EQ(vit().stage_name(config, 2), "block 2 (2 heads, mlp 3)");
  EXPECT_EQ(vit().stage_name(config, 4), "block 4 (no attn)");
  EXPECT_EQ(vit().stage_name(config, 5), "block 5 (4 heads, no mlp)");
}

TEST(VitTest, ForwardShapesForImageSizesAndPatches) {
  struct Case {
    Shape input;
    int64_t patch;
    int64_t tokens;  // with the class token
  };
  for (const Case& c :
       {Case{{1, 28, 28}, 4, 50}, Case{{1, 28, 28}, 7, 17}, Case{{3, 32, 32}, 4, 65}}) {
    for (const std::string pool : {"cls", "mean"}) {
      ModelConfig config = tiny_config();
      config.input_shape = c.input;
      config.patch_size = c.patch;
      config.depth = 2;
      config.num_classes = 10;
      config.pool = pool;
      torch::manual_seed(0);
      StagedModel model = build_model(config);
      const int64_t tokens = c.tokens - (pool == "mean" ? 1 : 0);
      EXPECT_EQ(model->output_shape(), (Shape{10}));
      EXPECT_EQ(vit().boundary_shape(model->config(), 1), (Shape{tokens, 8}));
      const torch::Tensor out = model->forward(torch::randn(with_batch(3, c.input)));
      EXPECT_EQ(out.sizes(), torch::IntArrayRef({3, 10}));
      EXPECT_TRUE(torch::isfinite(out).all().item<bool>());
    }
  }
}

TEST(VitTest, BoundaryShapesEqualActualStageOutputs) {
  for (const std::string pool : {"cls", "mean"}) {
    ModelConfig config = vit().resolve(small_config());
    config.pool = pool;
    for (int64_t stage = 0; stage < vit().num_stages(config); ++stage) {
      StagedModel part(config, stage, stage + 1);
      EXPECT_EQ(part->input_shape(), vit().boundary_shape(config, stage));
      const torch::Tensor out = part->forward(torch::randn(with_batch(2, part->input_shape())));
      EXPECT_EQ(out.sizes().vec(), with_batch(2, vit().boundary_shape(config, stage + 1)))
          << pool << " stage " << stage;
    }
  }
}

TEST(VitTest, PoolModesUseClassTokenOrMeanOfNormalisedTokens) {
  for (const std::string pool : {"cls", "mean"}) {
    ModelConfig config = vit().resolve(small_config());
    config.pool = pool;
    torch::manual_seed(3);
    StagedModel embed(config, 0, 1);
    auto params = parameters_by_name(*embed);
    EXPECT_EQ(params.count("stage0.cls_token"), pool == "cls" ? 1u : 0u);
    const int64_t tokens = 4 + (pool == "cls" ? 1 : 0);
    EXPECT_EQ(params.at("stage0.pos_embed").sizes(), torch::IntArrayRef({1, tokens, 16}));

    StagedModel head(config, 3, 4);
    auto head_params = parameters_by_name(*head);
    const torch::Tensor x = torch::randn({2, tokens, 16});
    const torch::Tensor normed = torch::layer_norm(x, {16}, head_params.at("stage3.norm.weight"),
                                                   head_params.at("stage3.norm.bias"));
    const torch::Tensor pooled = pool == "cls" ? normed.select(1, 0) : normed.mean(1);
    const torch::Tensor expected =
        torch::linear(pooled, head_params.at("stage3.fc.weight"), head_params.at("stage3.fc.bias"));
    EXPECT_TRUE(torch::allclose(head->forward(x), expected, 1e-5, 1e-6)) << pool;
  }
}

TEST(VitTest, PatchEmbeddingSplitsImageIntoRowMajorPatches) {
  ModelConfig config = vit().resolve(tiny_config());
  StagedModel embed(config, 0, 1);
  auto p = parameters_by_name(*embed);
  const torch::Tensor image = torch::randn({1, 1, 8, 8});
  const torch::Tensor out = embed->forward(image);
  // Patch (row 1, col 0) is token 1 + 2 (after the class token); as a linear map of its 16 pixels.
  const torch::Tensor pixels =
      image.index({0, 0, torch::indexing::Slice(4, 8), torch::indexing::Slice(0, 4)}).reshape({16});
  const torch::Tensor expected =
      torch::matmul(p.at("stage0.patch.weight").reshape({8, 16}), pixels) +
      p.at("stage0.patch.bias") + p.at("stage0.pos_embed")[0][3];
  EXPECT_TRUE(torch::allclose(out[0][3], expected, 1e-5, 1e-6));
  EXPECT_TRUE(
      torch::allclose(out[0][0], p.at("stage0.cls_token")[0][0] + p.at("stage0.pos_embed")[0][0]));
}

// Our attention against libtorch's reference implementation with the same weights.
TEST(VitTest, SelfAttentionMatchesTorchMultiheadAttention) {
  torch::manual_seed(5);
  SelfAttention attn(16, 4, 4);
  torch::nn::MultiheadAttention reference(torch::nn::MultiheadAttentionOptions(16, 4));
  {
    torch::NoGradGuard no_grad;
    for (auto& p : attn->parameters()) p.normal_(0, 0.3);
    reference->in_proj_weight.copy_(
        torch::cat({attn->q->weight, attn->k->weight, attn->v->weight}));
    reference->in_proj_bias.copy_(torch::cat({attn->q->bias, attn->k->bias, attn->v->bias}));
    reference->out_proj->weight.copy_(attn->proj->weight);
    reference->out_proj->bias.copy_(attn->proj->bias);
  }
  const torch::Tensor x = torch::randn({2, 5, 16});
  // torch-compat: MultiheadAttention in libtorch 1.13 takes [tokens, batch, dim] (no batch_first).
  const torch::Tensor h = attn->norm(x).transpose(0, 1);
  const torch::Tensor expected = std::get<0>(reference->forward(h, h, h)).transpose(0, 1);
  EXPECT_TRUE(torch::allclose(attn->forward(x), expected, 1e-4, 1e-5));
}

TEST(VitTest, BlockFlopsMatchHandCount) {
  ModelConfig config = vit().resolve(tiny_config());  // T = 5, D = 8, 2 heads of 4, mlp 16
  // Attention: LN 5*5*8 = 200; q,k,v 3 * (2*5*8*8 + 5*8) = 2040; core QK^T 2*25*8 = 400,
  // softmax 5*2*25 = 250, AV 400 -> 1050; proj 2*5*8*8 + 40 = 680; residual 40.
  const int64_t attn = 200 + 2040 + (400 + 250 + 400) + 680 + 40;
  // MLP: LN 200; fc1 2*5*8*16 + 5*16 = 1360; GELU 5*16 = 80; fc2 2*5*16*8 + 40 = 1320; residual 40.
  const int64_t mlp = 200 + 1360 + 80 + 1320 + 40;
  EXPECT_EQ(vit().stage_forward_flops(config, 1), attn + mlp);
  EXPECT_EQ(attn + mlp, 7010);
  // Embedding: 4 patches x (2*16*8 + 8) = 1056, position add 5*8 = 40.
  EXPECT_EQ(vit().stage_forward_flops(config, 0), 1056 + 40);
  // Head: LN of the class token 5*8 = 40, fc 2*8*3 + 3 = 51.
  EXPECT_EQ(vit().stage_forward_flops(config, 2), 40 + 51);
  EXPECT_EQ(build_model(config)->forward_flops(), 1096 + 7010 + 91);

  // One head of 4 and no MLP: LN 200; q,k,v 3 * (2*5*8*4 + 5*4) = 1020; core 2*25*4 = 200,
  // softmax 5*1*25 = 125, AV 200; proj 2*5*4*8 + 40 = 360; residual 40.
  config.subnet = {{"stage1.heads", {1}}, {"stage1.mlp", {}}};
  EXPECT_EQ(vit().stage_forward_flops(vit().resolve(config), 1),
            200 + 1020 + (200 + 125 + 200) + 360 + 40);
  config.subnet = {{"stage1.attn", {}}, {"stage1.mlp", {}}};
  EXPECT_EQ(vit().stage_forward_flops(vit().resolve(config), 1), 0);
}

TEST(VitTest, UnitGroupsNameRealParametersWithConsistentSizes) {
  ModelConfig config = vit().resolve(small_config());
  StagedModel model(config);
  const auto params = parameters_by_name(*model);
  const auto groups = vit().unit_groups(config);
  ASSERT_EQ(groups.size(), 8u);  // 2 blocks x (attn, mlp, heads, mlp_hidden)
  std::map<std::string, int> branch_owner_count;
  for (const auto& group : groups) {
    for (const auto& slice : group.slices) {
      ASSERT_EQ(params.count(slice.name), 1u) << group.name << ": " << slice.name;
      if (slice.dim >= 0) {
        EXPECT_EQ(params.at(slice.name).size(slice.dim), group.size * slice.stride) << slice.name;
      } else {
        ++branch_owner_count[slice.name];
      }
    }
  }
  // Every parameter of a block belongs to exactly one branch; embedding and head to none.
  for (const auto& [name, tensor] : params) {
    const bool in_block = name.rfind("stage1.", 0) == 0 || name.rfind("stage2.", 0) == 0;
    EXPECT_EQ(branch_owner_count[name], in_block ? 1 : 0) << name;
  }
  const UnitGroup& heads = groups[2];
  EXPECT_EQ(heads.name, "stage1.heads");
  EXPECT_EQ(heads.kind, UnitKind::Head);
  EXPECT_EQ(heads.size, 4);
  EXPECT_EQ(heads.slices.front().name, "stage1.attn.q.weight");
  EXPECT_EQ(heads.slices.front().stride, 4);
  EXPECT_EQ(heads.slices.back().name, "stage1.attn.proj.weight");
  EXPECT_EQ(heads.slices.back().dim, 1);
  const UnitGroup& hidden = groups[7];
  EXPECT_EQ(hidden.name, "stage2.mlp_hidden");
  EXPECT_EQ(hidden.kind, UnitKind::Neuron);
  EXPECT_EQ(hidden.size, 12);
  EXPECT_EQ(groups[0].name, "stage1.attn");
  EXPECT_EQ(groups[0].kind, UnitKind::Branch);
  EXPECT_EQ(groups[1].name, "stage1.mlp");
}

void expect_trains(StagedModel& model) {
  const torch::Tensor x = torch::randn(with_batch(4, model->input_shape()));
  const torch::Tensor loss =
      torch::cross_entropy_loss(model->forward(x), torch::tensor({0, 1, 2, 0}));
  loss.backward();
  for (const auto& item : model->named_parameters()) {
    ASSERT_TRUE(item.value().grad().defined()) << item.key();
    EXPECT_TRUE(torch::isfinite(item.value().grad()).all().item<bool>()) << item.key();
  }
}

TEST(VitTest, SubnetAllocatesOnlyHeldUnits) {
  struct Case {
    Subnet subnet;
    int64_t parameters;
  };
  // From the 827 of ParameterCountMatchesHandArithmetic:
  const std::vector<Case> cases = {
      // 1 head of 4: q,k,v 3 * (8*4 + 4) = 108 instead of 216, proj 4*8 + 8 = 40 instead of 72.
      {{{"stage1.heads", {1}}}, 827 - (216 - 108) - (72 - 40)},
      // 4 hidden units: fc1 8*4 + 4 = 36 instead of 144, fc2 4*8 + 8 = 40 instead of 136.
      {{{"stage1.mlp_hidden", {0, 3, 5, 9}}}, 827 - (144 - 36) - (136 - 40)},
      {{{"stage1.attn", {}}}, 827 - 304},
      {{{"stage1.mlp", {}}}, 827 - 296},
      {{{"stage1.attn", {}}, {"stage1.mlp", {}}}, 827 - 304 - 296},
  };
  for (const Case& c : cases) {
    ModelConfig config = tiny_config();
    config.subnet = c.subnet;
    torch::manual_seed(1);
    StagedModel model = build_model(config);
    EXPECT_EQ(parameter_count(*model), c.parameters);
    expect_trains(model);
  }
  ModelConfig config = tiny_config();
  config.subnet = {{"stage1.heads", {1}}, {"stage1.mlp_hidden", {0, 3, 5, 9}}};
  auto params = parameters_by_name(*build_model(config));
  EXPECT_EQ(params.at("stage1.attn.q.weight").sizes(), torch::IntArrayRef({4, 8}));
  EXPECT_EQ(params.at("stage1.attn.proj.weight").sizes(), torch::IntArrayRef({8, 4}));
  EXPECT_EQ(params.at("stage1.mlp.fc1.weight").sizes(), torch::IntArrayRef({4, 8}));
  EXPECT_EQ(params.at("stage1.mlp.fc2.weight").sizes(), torch::IntArrayRef({8, 4}));
}

TEST(VitTest, BlockWithBothSublayersDroppedIsIdentity) {
  ModelConfig config = tiny_config();
  config.subnet = {{"stage1.attn", {}}, {"stage1.mlp", {}}};
  StagedModel block = build_model(config, 1, 2);
  EXPECT_EQ(parameter_count(*block), 0);
  const torch::Tensor x = torch::randn({2, 5, 8});
  EXPECT_TRUE(torch::equal(block->forward(x), x));
}

torch::Tensor rows(const torch::Tensor& t, const std::vector<int64_t>& held, int64_t stride,
                   int64_t dim) {
  std::vector<int64_t> index;
  for (int64_t unit : held)
    for (int64_t j = 0; j < stride; ++j) index.push_back(unit * stride + j);
  return t.index_select(dim, torch::tensor(index));
}

// Zeroes the output-projection columns of the heads not in `held` (head width 4).
void zero_other_heads(torch::Tensor proj_weight, const std::vector<int64_t>& held) {
  for (int64_t head = 0; head < 4; ++head)
    if (std::find(held.begin(), held.end(), head) == held.end())
      proj_weight.narrow(1, head * 4, 4).zero_();
}

TEST(VitTest, HeadSubsetEqualsFullModelWithOtherHeadsZeroed) {
  const std::vector<int64_t> held1 = {1, 3};
  const std::vector<int64_t> held2 = {0};
  ModelConfig full_config = vit().resolve(small_config());  // 4 heads of 4
  ModelConfig sub_config = full_config;
  sub_config.subnet = {{"stage1.heads", held1}, {"stage2.heads", held2}};
  torch::manual_seed(11);
  StagedModel full(full_config);
  StagedModel sub = build_model(sub_config);
  auto full_params = parameters_by_name(*full);
  auto sub_params = parameters_by_name(*sub);
  ASSERT_EQ(full_params.size(), sub_params.size());
  {
    torch::NoGradGuard no_grad;
    for (auto& [name, tensor] : sub_params) {
      const torch::Tensor& source = full_params.at(name);
      const std::vector<int64_t>& held = name.rfind("stage1.", 0) == 0 ? held1 : held2;
      const bool qkv = name.find(".attn.q.") != std::string::npos ||
                       name.find(".attn.k.") != std::string::npos ||
                       name.find(".attn.v.") != std::string::npos;
      if (qkv)
        tensor.copy_(rows(source, held, 4, 0));
      else if (name.find(".attn.proj.weight") != std::string::npos)
        tensor.copy_(rows(source, held, 4, 1));
      else
        tensor.copy_(source);
    }
  }
  const torch::Tensor x = torch::randn({3, 3, 8, 8});
  const torch::Tensor all_heads = full->forward(x).detach();
  {
    torch::NoGradGuard no_grad;
    zero_other_heads(full_params.at("stage1.attn.proj.weight"), held1);
    zero_other_heads(full_params.at("stage2.attn.proj.weight"), held2);
  }
  const torch::Tensor expected = full->forward(x);
  EXPECT_TRUE(torch::allclose(sub->forward(x), expected, 1e-5, 1e-6));
  // The dropped heads did matter, so the comparison above is not vacuous.
  EXPECT_FALSE(torch::allclose(all_heads, expected, 1e-3, 1e-3));
}

TEST(VitTest, HiddenSubsetAndDroppedBranchEqualFullModelWithZeroedUnits) {
  const std::vector<int64_t> held = {2, 5, 6, 11};
  ModelConfig full_config = vit().resolve(small_config());
  ModelConfig sub_config = full_config;
  sub_config.subnet = {{"stage1.mlp_hidden", held}, {"stage2.attn", {}}};
  torch::manual_seed(12);
  StagedModel full(full_config);
  StagedModel sub = build_model(sub_config);
  auto full_params = parameters_by_name(*full);
  {
    torch::NoGradGuard no_grad;
    for (auto& [name, tensor] : parameters_by_name(*sub)) {
      const torch::Tensor& source = full_params.at(name);
      if (name == "stage1.mlp.fc1.weight" || name == "stage1.mlp.fc1.bias")
        tensor.copy_(rows(source, held, 1, 0));
      else if (name == "stage1.mlp.fc2.weight")
        tensor.copy_(rows(source, held, 1, 1));
      else
        tensor.copy_(source);
    }
    // GELU(0) = 0, so a hidden unit with a zero fc2 column contributes nothing.
    torch::Tensor fc2 = full_params.at("stage1.mlp.fc2.weight");
    const torch::Tensor keep = torch::zeros({12});
    keep.index_fill_(0, torch::tensor(held), 1.0);
    fc2.mul_(keep);
    // A zero output projection makes the attention branch's residual the identity.
    full_params.at("stage2.attn.proj.weight").zero_();
    full_params.at("stage2.attn.proj.bias").zero_();
  }
  EXPECT_EQ(parameter_names(*sub).count("stage2.attn.q.weight"), 0u);
  const torch::Tensor x = torch::randn({3, 3, 8, 8});
  EXPECT_TRUE(torch::allclose(sub->forward(x), full->forward(x), 1e-5, 1e-6));
}

TEST(VitTest, PartitionParameterNamesEqualFullModel) {
  ModelConfig config = vit().resolve(small_config());
  StagedModel full(config);
  std::set<std::string> joined;
  for (auto [begin, end] : {std::pair<int64_t, int64_t>{0, 2}, {2, 3}, {3, 4}}) {
    StagedModel part(config, begin, end);
    for (const auto& name : parameter_names(*part)) EXPECT_TRUE(joined.insert(name).second) << name;
  }
  EXPECT_EQ(joined, parameter_names(*full));
  EXPECT_EQ(joined.count("stage2.attn.q.weight"), 1u);
  EXPECT_EQ(joined.count("stage1.mlp.fc2.bias"), 1u);
}

TEST(VitTest, InitialisationAndSeedDeterminism) {
  ModelConfig config = vit().resolve(tiny_config());
  config.embed_dim = 128;
  config.mlp_dim = 256;
  torch::manual_seed(7);
  StagedModel a(config);
  torch::manual_seed(7);
  StagedModel b(config);
  auto pa = parameters_by_name(*a);
  auto pb = parameters_by_name(*b);
  for (const auto& [name, tensor] : pa) EXPECT_TRUE(torch::equal(tensor, pb.at(name))) << name;
  EXPECT_TRUE(torch::equal(pa.at("stage1.attn.norm.weight"), torch::ones({128})));
  EXPECT_TRUE(torch::equal(pa.at("stage1.mlp.norm.bias"), torch::zeros({128})));
  EXPECT_TRUE(torch::equal(pa.at("stage1.attn.q.bias"), torch::zeros({128})));
  EXPECT_TRUE(torch::equal(pa.at("stage0.patch.bias"), torch::zeros({128})));
  const double q_std = pa.at("stage1.attn.q.weight").std().item<double>();
  EXPECT_NEAR(q_std, 0.02, 0.001);
  EXPECT_NEAR(pa.at("stage0.pos_embed").std().item<double>(), 0.02, 0.002);
  EXPECT_NEAR(pa.at("stage1.mlp.fc1.weight").std().item<double>(), 0.02, 0.001);
}

// The message of the UsageError that building `config` throws ("" if none).
std::string error_of(const ModelConfig& config) {
  try {
    build_model(config);
  } catch (const UsageError& e) {
    return e.what();
  }
  return "";
}

TEST(VitTest, BadConfigsAreUsageErrors) {
  auto with = [](auto change) {
    ModelConfig config = tiny_config();
    change(config);
    return config;
  };
  const std::vector<ModelConfig> bad = {
      with([](ModelConfig& c) {
        c.input_shape = {1, 10, 8};
      }),  // 10 % 4 != 0
      with([](ModelConfig& c) { c.input_shape = {784}; }),
      with([](ModelConfig& c) {
        c.input_shape = {0, 8, 8};
      }),
      with([](ModelConfig& c) {
        c.embed_dim = 10;
        c.num_heads = 4;
      }),
      with([](ModelConfig& c) { c.patch_size = 0; }),
      with([](ModelConfig& c) { c.embed_dim = -8; }),
      with([](ModelConfig& c) { c.num_heads = 0; }),
      with([](ModelConfig& c) { c.mlp_dim = 0; }),
      with([](ModelConfig& c) { c.depth = -1; }),
      with([](ModelConfig& c) { c.pool = "max"; }),
      with([](ModelConfig& c) { c.num_classes = 1; }),
      with([](ModelConfig& c) {
        c.subnet = {{"stage1.heads", {}}};
      }),
      with([](ModelConfig& c) {
        c.subnet = {{"stage1.heads", {2}}};
      }),
      with([](ModelConfig& c) {
        c.subnet = {{"stage2.attn", {}}};
      }),  // only one block
      with([](ModelConfig& c) {
        c.subnet = {{"stage1.mlp_hidden", {3, 1}}};
      }),
  };
  for (const ModelConfig& config : bad) EXPECT_THROW(build_model(config), UsageError);
  EXPECT_NE(error_of(with([](ModelConfig& c) {
              c.input_shape = {1, 10, 8};
            })).find("divisible by patch_size"),
            std::string::npos);
  EXPECT_NE(error_of(with([](ModelConfig& c) {
              c.embed_dim = 10;
              c.num_heads = 4;
            })).find("divisible by num_heads"),
            std::string::npos);
  EXPECT_NE(error_of(with([](ModelConfig& c) { c.pool = "max"; })).find("pool"), std::string::npos);
}

}  // namespace
}  // namespace tessera::models
