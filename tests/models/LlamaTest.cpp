#include "tessera/models/llama.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "../text_support.h"
#include "tessera/core/error.h"
#include "tessera/metrics/flops.h"
#include "tessera/models/architecture.h"
#include "tessera/models/generation.h"
#include "tessera/models/rotary.h"
#include "tessera/models/staged_model.h"
#include "tessera/models/subnet.h"

namespace tessera::models {
namespace llama_test {

using tessera::testing::tiny_llama;

const Architecture& llama() {
  return architecture("llama");
}

std::map<std::string, torch::Tensor> named_parameters_of(torch::nn::Module& module) {
  std::map<std::string, torch::Tensor> named;
  for (const auto& item : module.named_parameters()) named[item.key()] = item.value();
  return named;
}

torch::Tensor random_tokens(int64_t batch, int64_t length, uint64_t seed) {
  torch::manual_seed(seed);
  return torch::randint(0, 256, {batch, length}, torch::kLong);
}

TEST(LlamaTest, ParameterCountShapesAndStageNames) {
  StagedModel model = build_model(tiny_llama(8));
  // Embedding 256*16; per block: attention RMSNorm 16 + q,k,v,proj 4 * 16*16, SwiGLU RMSNorm 16
  // + gate, up, down 3 * 16*24; head RMSNorm 16 + 16*256. No biases.
  const int64_t block = 16 + 4 * 16 * 16 + 16 + 3 * 16 * 24;
  EXPECT_EQ(parameter_count(*model), 256 * 16 + 2 * block + 16 + 16 * 256);
  const ModelConfig config = model->config();
  ASSERT_EQ(llama().num_stages(config), 4);
  EXPECT_EQ(llama().stage_name(config, 0), "embed 256->16");
  EXPECT_EQ(llama().stage_name(config, 1), "block 1 (4 heads, mlp 24)");
  EXPECT_EQ(llama().stage_name(config, 3), "head 16->256");
  EXPECT_EQ(model->output_shape(), (Shape{8, 256}));
  for (int64_t stage = 0; stage < 4; ++stage) {
    StagedModel part(config, stage, stage + 1);
    const torch::Tensor in =
        stage == 0 ? random_tokens(2, 8, 1) : torch::randn(with_batch(2, part->input_shape()));
    EXPECT_EQ(part->forward(in).sizes().vec(),
              with_batch(2, llama().boundary_shape(config, stage + 1)));
  }
  // Defaults: 4 blocks.
  ModelConfig defaults = tiny_llama(8);
  defaults.depth = 0;
  EXPECT_EQ(llama().resolve(defaults).depth, 4);
}

TEST(LlamaTest, FutureTokensDoNotChangeEarlierOutputs) {
  torch::manual_seed(3);
  StagedModel model = build_model(tiny_llama(12));
  model->eval();
  torch::Tensor tokens = random_tokens(2, 12, 4);
  const torch::Tensor before = model->forward(tokens).detach();
  torch::Tensor changed = tokens.clone();
  changed.narrow(1, 7, 5).random_(0, 256);  // positions 7..11
  const torch::Tensor after = model->forward(changed).detach();
  EXPECT_TRUE(torch::equal(before.narrow(1, 0, 7), after.narrow(1, 0, 7)));
  EXPECT_FALSE(torch::allclose(before.narrow(1, 7, 5), after.narrow(1, 7, 5)));
  // Gradients agree: position 3's output has no gradient with respect to later embeddings.
  StagedModel blocks(model->config(), 1, 3);
  const torch::Tensor x = torch::randn({1, 12, 16}, torch::requires_grad());
  blocks->forward(x).select(1, 3).sum().backward();
  EXPECT_EQ(x.grad().narrow(1, 4, 8).abs().max().item<double>(), 0.0);
  EXPECT_GT(x.grad().narrow(1, 0, 4).abs().max().item<double>(), 0.0);
}

TEST(LlamaTest, RotaryEmbeddingMatchesDirectComputation) {
  torch::manual_seed(5);
  const torch::Tensor x = torch::randn({2, 3, 6, 8}, torch::kFloat64);  // [B, H, T, hd]
  for (const int64_t offset : {0, 5}) {
    const torch::Tensor rotated = apply_rotary(x, offset);
    torch::Tensor expected = torch::empty_like(x);
    auto in = x.accessor<double, 4>();
    auto out = expected.accessor<double, 4>();
    for (int64_t b = 0; b < 2; ++b)
      for (int64_t h = 0; h < 3; ++h)
        for (int64_t t = 0; t < 6; ++t)
          for (int64_t i = 0; i < 4; ++i) {
            const double angle =
                static_cast<double>(offset + t) * std::pow(10000.0, -2.0 * i / 8.0);
            const double a = in[b][h][t][2 * i], c = in[b][h][t][2 * i + 1];
            out[b][h][t][2 * i] = a * std::cos(angle) - c * std::sin(angle);
            out[b][h][t][2 * i + 1] = a * std::sin(angle) + c * std::cos(angle);
          }
    EXPECT_TRUE(torch::allclose(rotated, expected, 1e-12, 1e-12)) << "offset " << offset;
  }
  // The point of it: a rotated query-key product depends on the positions' difference only.
  const torch::Tensor q = torch::randn({1, 1, 1, 8}, torch::kFloat64);
  const torch::Tensor k = torch::randn({1, 1, 1, 8}, torch::kFloat64);
  const double near = (apply_rotary(q, 7) * apply_rotary(k, 4)).sum().item<double>();
  const double far = (apply_rotary(q, 103) * apply_rotary(k, 100)).sum().item<double>();
  EXPECT_NEAR(near, far, 1e-9);
}

// The cached table must give exactly what the direct computation gives, also after it grows
// (a KV-cached generation reaching past the training length) and for another dtype.
TEST(LlamaTest, RotaryTableIsBitIdenticalToDirectComputation) {
  torch::manual_seed(6);
  RotaryTable table;
  for (const auto& [offset, tokens] :
       std::vector<std::pair<int64_t, int64_t>>{{0, 16}, {3, 5}, {16, 1}, {20, 40}, {0, 64}}) {
    const torch::Tensor x = torch::randn({2, 3, tokens, 8});
    EXPECT_TRUE(torch::equal(table.apply(x, offset), apply_rotary(x, offset)))
        << "offset " << offset << ", tokens " << tokens;
  }
  const torch::Tensor x64 = torch::randn({1, 2, 9, 8}, torch::kFloat64);
  EXPECT_TRUE(torch::equal(table.apply(x64, 30), apply_rotary(x64, 30)));
}

// Zeroes, in the full model, what the subnet leaves out, on the entries that scale a unit's
// output (a head's proj columns, a hidden unit's down column, a dropped branch's last map).
void zero_units_not_held(std::map<std::string, torch::Tensor>& params, const Subnet& subnet,
                         const std::vector<UnitGroup>& groups) {
  torch::NoGradGuard no_grad;
  for (const auto& group : groups) {
    const auto found = subnet.find(group.name);
    if (found == subnet.end()) continue;
    for (const auto& slice : group.slices) {
      if (!slice.scales_output) continue;
      torch::Tensor tensor = params.at(slice.name);
      if (slice.dim < 0) {
        if (found->second.empty()) tensor.zero_();
        continue;
      }
      for (int64_t unit = 0; unit < group.size; ++unit)
        if (std::find(found->second.begin(), found->second.end(), unit) == found->second.end())
          tensor.narrow(slice.dim, unit * slice.stride, slice.stride).zero_();
    }
  }
}

TEST(LlamaTest, SubnetworkEqualsMaskedFullModel) {
  const ModelConfig full_config = llama().resolve(tiny_llama(10));
  const std::vector<Subnet> subnets = {
      {{"stage1.heads", {1, 3}}, {"stage2.heads", {0}}},                       // neuron level
      {{"stage1.mlp_hidden", {0, 4, 5, 17, 23}}, {"stage2.mlp_hidden", {2}}},  // neuron level
      {{"stage1.attn", {}}, {"stage2.mlp", {}}},                               // block level
  };
  for (const Subnet& subnet : subnets) {
    torch::manual_seed(13);
    StagedModel full(full_config);
    ModelConfig sub_config = full_config;
    sub_config.subnet = subnet;
    StagedModel sub = build_model(sub_config);
    const auto groups = llama().unit_groups(full_config);
    copy_held_entries(*full, *sub, subnet, groups);
    EXPECT_LT(parameter_count(*sub), parameter_count(*full));
    const torch::Tensor tokens = random_tokens(3, 10, 14);
    const torch::Tensor whole = full->forward(tokens).detach();
    auto params = named_parameters_of(*full);
    zero_units_not_held(params, subnet, groups);
    const torch::Tensor masked = full->forward(tokens).detach();
    EXPECT_TRUE(torch::allclose(sub->forward(tokens), masked, 1e-5, 1e-5));
    EXPECT_FALSE(torch::allclose(whole, masked, 1e-4, 1e-4));  // the units did matter
  }
}

TEST(LlamaTest, UnitGroupsNameRealParameters) {
  const ModelConfig config = llama().resolve(tiny_llama(6));
  StagedModel model(config);
  const auto params = named_parameters_of(*model);
  const auto groups = llama().unit_groups(config);
  ASSERT_EQ(groups.size(), 8u);
  std::map<std::string, int> branch_owners;
  for (const auto& group : groups)
    for (const auto& slice : group.slices) {
      ASSERT_EQ(params.count(slice.name), 1u) << slice.name;
      if (slice.dim >= 0)
        EXPECT_EQ(params.at(slice.name).size(slice.dim), group.size * slice.stride) << slice.name;
      else
        ++branch_owners[slice.name];
    }
  for (const auto& [name, tensor] : params) {
    const bool in_block = name.rfind("stage1.", 0) == 0 || name.rfind("stage2.", 0) == 0;
    EXPECT_EQ(branch_owners[name], in_block ? 1 : 0) << name;
  }
}

TEST(LlamaTest, FlopsIncludeAttentionsSequenceTerm) {
  using namespace metrics;
  const ModelConfig config = llama().resolve(tiny_llama(8));
  const int64_t t = 8, d = 16, h = 24;
  const int64_t attention = norm_flops(t * d) + 3 * linear_flops(t, d, d, false) +
                            elementwise_flops(6 * t * d) + attention_flops(t, d, 4) +
                            linear_flops(t, d, d, false) + elementwise_flops(t * d);
  const int64_t mlp = norm_flops(t * d) + 2 * linear_flops(t, d, h, false) +
                      elementwise_flops(5 * t * h) + linear_flops(t, h, d, false) +
                      elementwise_flops(t * d);
  EXPECT_EQ(llama().stage_forward_flops(config, 1), attention + mlp);
  EXPECT_EQ(llama().stage_forward_flops(config, 3),
            norm_flops(t * d) + linear_flops(t, d, 256, false));
  // Per token, a block costs more at a longer sequence: the T^2 term of the scores.
  const ModelConfig longer = llama().resolve(tiny_llama(64));
  EXPECT_GT(llama().stage_forward_flops(longer, 1) / 64,
            llama().stage_forward_flops(config, 1) / 8);
}

TEST(LlamaTest, KeyValueCacheGivesTheFullForwardsLogits) {
  torch::manual_seed(21);
  StagedModel model = build_model(tiny_llama(12, 3));
  model->eval();
  torch::NoGradGuard no_grad;
  const torch::Tensor tokens = random_tokens(2, 12, 22);
  const torch::Tensor full = model->forward(tokens);
  LlamaCache cache;
  std::vector<torch::Tensor> pieces = {llama_forward_cached(model, tokens.narrow(1, 0, 5), cache)};
  EXPECT_EQ(cache.length(), 5);
  for (int64_t t = 5; t < 12; ++t)
    pieces.push_back(llama_forward_cached(model, tokens.narrow(1, t, 1), cache));
  EXPECT_EQ(cache.length(), 12);
  EXPECT_TRUE(torch::allclose(torch::cat(pieces, 1), full, 1e-5, 1e-5));
}

TEST(LlamaTest, GenerationIsReproducibleForASeed) {
  torch::manual_seed(31);
  StagedModel model = build_model(tiny_llama(8));
  const std::vector<int64_t> prompt = {72, 105, 33};
  GenerationConfig config;
  config.tokens = 20;  // past the 8-token window: the cache restarts
  config.temperature = 1.0;
  config.top_k = 50;
  config.seed = 4;
  const auto first = generate(model, prompt, config);
  EXPECT_EQ(first.size(), 20u);
  EXPECT_EQ(generate(model, prompt, config), first);
  config.seed = 5;
  EXPECT_NE(generate(model, prompt, config), first);
  // Greedy decoding picks the full forward's most likely next token.
  config.temperature = 0.0;
  config.tokens = 1;
  const auto greedy = generate(model, prompt, config);
  torch::NoGradGuard no_grad;
  const torch::Tensor logits = model->forward(torch::tensor(prompt).unsqueeze(0));
  EXPECT_EQ(greedy.front(), logits[0][-1].argmax().item<int64_t>());
  for (int64_t token : first) EXPECT_TRUE(token >= 0 && token < 256);
}

TEST(LlamaTest, TiedEmbeddingsShareOneWeightBetweenTheEmbeddingAndTheHead) {
  ModelConfig config = tiny_llama(8);
  config.tie_embeddings = true;
  torch::manual_seed(3);
  StagedModel model = build_model(config);
  const int64_t untied = parameter_count(*build_model(tiny_llama(8)));
  EXPECT_EQ(parameter_count(*model), untied - 256 * 16);
  EXPECT_EQ(llama().stage_name(model->config(), 3), "head 16->256 (tied)");
  auto params = named_parameters_of(*model);
  EXPECT_EQ(params.count("stage3.out.weight"), 0u);
  torch::Tensor table = params.at("stage0.embed.weight");

  // Tokens 0..9 only: row 200 of the table is used by the head alone, so its gradient proves the
  // head multiplies by the table, and zeroing row 5 zeroes every position's logit for byte 5.
  torch::manual_seed(4);
  const torch::Tensor tokens = torch::randint(0, 10, {2, 8}, torch::kLong);
  model->forward(tokens).logsumexp(-1).sum().backward();
  EXPECT_GT(table.grad()[200].abs().sum().item<double>(), 0.0);
  {
    torch::NoGradGuard no_grad;
    table[5].zero_();
  }
  const torch::Tensor logits = model->forward(tokens);
  EXPECT_TRUE(torch::equal(logits.select(-1, 5), torch::zeros({2, 8})));
  EXPECT_GT(logits.select(-1, 6).abs().sum().item<double>(), 0.0);

  // The flag survives the model's JSON (checkpoints, config.json).
  EXPECT_TRUE(model_config_from_json(to_json(model->config())).tie_embeddings);
  EXPECT_FALSE(model_config_from_json(nlohmann::json::object()).tie_embeddings);
}

TEST(LlamaTest, TiedModelsCannotBeCutAndOtherFamiliesCannotTie) {
  ModelConfig config = tiny_llama(8);
  config.tie_embeddings = true;
  EXPECT_THROW(require_cuttable(config, "PNN"), UsageError);
  EXPECT_NO_THROW(require_cuttable(tiny_llama(8), "PNN"));
  // A model holding the head without the embedding has no output map; its forward says so.
  StagedModel head(architecture("llama").resolve(config), 3, 4);
  try {
    head->forward(torch::randn({2, 8, 16}));
    ADD_FAILURE() << "a tied head without its embedding ran";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("tied to the token embedding"), std::string::npos);
  }
  ModelConfig mlp;  // the default 784-1024x5-10 MLP, which has no embedding
  mlp.tie_embeddings = true;
  EXPECT_THROW(build_model(mlp), UsageError);
}

TEST(LlamaTest, BadConfigsAreUsageErrors) {
  auto expect_usage = [](ModelConfig config, const std::string& needle) {
    try {
      llama().resolve(config);
      ADD_FAILURE() << "no error for " << needle;
    } catch (const UsageError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  ModelConfig image = tiny_llama(8);
  image.input_shape = {1, 28, 28};
  expect_usage(image, "--data text");
  ModelConfig odd = tiny_llama(8);
  odd.embed_dim = 12;  // 4 heads of 3
  expect_usage(odd, "even");
  ModelConfig heads = tiny_llama(8);
  heads.num_heads = 3;
  expect_usage(heads, "divisible");
  ModelConfig subnet = tiny_llama(8);
  subnet.subnet = {{"stage1.heads", {}}};
  expect_usage(subnet, "stage1.heads");
}

}  // namespace llama_test
}  // namespace tessera::models
