#include <gtest/gtest.h>

#include <map>
#include <set>

#include "../test_support.h"
#include "tessera/core/error.h"
#include "tessera/models/staged_model.h"
#include "tessera/sdp/mask_plan.h"

using namespace tessera;

namespace {

using tessera::testing::resolved;

models::ModelConfig small_resnet() {
  models::ModelConfig config;
  config.arch = "resnet";
  config.depth = 20;
  config.width = 0.25;
  config.input_shape = {1, 8, 8};
  return resolved(config);
}

models::ModelConfig small_mlp() {
  models::ModelConfig config;
  config.input_shape = {1, 6, 6};
  config.hidden = {16, 12, 8};
  return resolved(config);
}

models::ModelConfig small_vit() {
  models::ModelConfig config;
  config.arch = "vit";
  config.depth = 3;
  config.input_shape = {1, 8, 8};
  config.embed_dim = 16;
  config.num_heads = 4;
  config.mlp_dim = 8;
  return resolved(config);
}

sdp::MaskPlan plan_for(const models::ModelConfig& model, sdp::Level level, int64_t w, int64_t k,
                       uint64_t seed = 3) {
  sdp::PlanConfig config;
  config.level = level;
  config.workers = w;
  config.coverage = static_cast<double>(k) / static_cast<double>(w);
  config.seed = seed;
  return sdp::make_mask_plan(model, config);
}

// Every unit on exactly k workers; every worker's share of each group (neuron level) within one
// unit of the others', or its forward FLOPs (block level) within one branch of the others'; every
// subnetwork builds and runs.
void expect_uniform_and_connected(const models::ModelConfig& model, sdp::Level level, int64_t w,
                                  int64_t k) {
  SCOPED_TRACE(model.arch + " " + sdp::to_string(level) + " W=" + std::to_string(w) +
               " k=" + std::to_string(k));
  const sdp::MaskPlan plan = plan_for(model, level, w, k);
  EXPECT_EQ(plan.holders_per_unit, k);
  ASSERT_FALSE(plan.holders.empty());
  for (const auto& [name, sets] : plan.holders) {
    std::vector<int64_t> load(static_cast<size_t>(w), 0);
    for (const sdp::WorkerSet set : sets) {
      EXPECT_EQ(sdp::count_workers(set), k) << name;
      EXPECT_EQ(set & ~plan.all_workers(), 0u) << name;
      for (const int64_t worker : sdp::worker_list(set)) ++load[worker];
    }
    if (level == sdp::Level::Neuron) {
      EXPECT_LE(
          *std::max_element(load.begin(), load.end()) - *std::min_element(load.begin(), load.end()),
          1)
          << name;
    }
  }
  const torch::Tensor x =
      torch::randn({2, model.input_shape[0], model.input_shape[1], model.input_shape[2]});
  std::vector<int64_t> worker_flops;
  for (int64_t worker = 0; worker < w; ++worker) {
    models::ModelConfig sub = model;
    sub.subnet = plan.subnet(worker);
    models::StagedModel m = models::build_model(sub);  // validates: no neuron group left empty
    EXPECT_EQ(m->forward(x).sizes(), (std::vector<int64_t>{2, model.num_classes}));
    worker_flops.push_back(m->forward_flops());
  }
  if (level == sdp::Level::Block) {
    // Compute (and with it step time and activations) balanced to within one branch.
    int64_t largest_branch = 0;
    const int64_t full_flops = models::build_model(model)->forward_flops();
    for (const auto& [name, sets] : plan.holders) {
      models::ModelConfig without = model;
      without.subnet[name] = {};
      largest_branch =
          std::max(largest_branch, full_flops - models::build_model(without)->forward_flops());
    }
    EXPECT_LE(*std::max_element(worker_flops.begin(), worker_flops.end()) -
                  *std::min_element(worker_flops.begin(), worker_flops.end()),
              largest_branch);
  }
}

}  // namespace

TEST(MaskPlan, EveryUnitHasKHoldersAndEverySubnetworkIsConnected) {
  torch::manual_seed(0);
  const auto resnet = small_resnet();
  const auto mlp = small_mlp();
  const auto vit = small_vit();
  for (int64_t w = 1; w <= 8; ++w) {
    for (int64_t k = 1; k <= w; ++k) {
      if (9 * k >= w) expect_uniform_and_connected(resnet, sdp::Level::Block, w, k);
      if (8 * k >= w) expect_uniform_and_connected(mlp, sdp::Level::Neuron, w, k);
      if (4 * k >= w) expect_uniform_and_connected(vit, sdp::Level::Neuron, w, k);
    }
  }
  expect_uniform_and_connected(resnet, sdp::Level::Neuron, 4, 2);
  expect_uniform_and_connected(vit, sdp::Level::Block, 4, 2);
}

TEST(MaskPlan, BlockPlansBalanceEveryResolutionLevel) {
  // resnet-26 has 4 branches per level; at W = 4, k = 2 every worker holds 2 of each level (not,
  // say, 3 of the activation-heavy first level and 1 of the last), and the levels' branch names
  // are stage<1..4>, <5..8>, <9..12>.
  models::ModelConfig resnet26 = small_resnet();
  resnet26.depth = 26;
  resnet26 = resolved(resnet26);
  for (const uint64_t seed : {1, 2, 3}) {
    const auto plan = plan_for(resnet26, sdp::Level::Block, 4, 2, seed);
    ASSERT_EQ(plan.holders.size(), 12u);
    std::vector<std::set<std::vector<int64_t>>> level_subnets(3);  // distinct per level
    for (int64_t worker = 0; worker < 4; ++worker) {
      std::vector<std::vector<int64_t>> held(3);
      for (const auto& [name, holder_sets] : plan.holders) {
        const auto stage = std::stoll(name.substr(name.find_first_of("0123456789")));
        if (holder_sets[0] >> worker & 1)
          held[static_cast<size_t>((stage - 1) / 4)].push_back(stage);
      }
      for (size_t level = 0; level < 3; ++level) {
        EXPECT_EQ(held[level].size(), 2u) << "seed " << seed << " worker " << worker;
        level_subnets[level].insert(held[level]);
      }
    }
    // No two workers hold the same branches of a level (their subnetworks would be one there).
    for (const auto& subnets : level_subnets) EXPECT_EQ(subnets.size(), 4u) << "seed " << seed;
    // No fixed teams: every pair of workers trains some branch together, and the 12 branches'
    // pairs are spread over the 6 possible ones.
    std::map<sdp::WorkerSet, int64_t> pairs;
    for (const auto& [name, holder_sets] : plan.holders) ++pairs[holder_sets[0]];
    EXPECT_EQ(pairs.size(), 6u) << "seed " << seed;
    for (const auto& [pair, count] : pairs) EXPECT_LE(count, 3) << "seed " << seed;
  }
}

TEST(MaskPlan, EveryVitWorkerHoldsAttentionAsWellAsMlpSublayers) {
  models::ModelConfig vit = small_vit();
  vit.depth = 4;
  vit = resolved(vit);
  for (const uint64_t seed : {1, 2, 3}) {
    const auto plan = plan_for(vit, sdp::Level::Block, 4, 2, seed);
    for (int64_t worker = 0; worker < 4; ++worker) {
      int64_t attention = 0;
      int64_t mlp = 0;
      for (const auto& [name, holder_sets] : plan.holders) {
        if (!(holder_sets[0] >> worker & 1)) continue;
        (name.find("attn") != std::string::npos ? attention : mlp) += 1;
      }
      EXPECT_EQ(attention, 2) << "seed " << seed << " worker " << worker;
      EXPECT_EQ(mlp, 2) << "seed " << seed << " worker " << worker;
    }
  }
}

TEST(MaskPlan, IsDeterministicForASeedAndVariesHolderSets) {
  const auto resnet = small_resnet();
  const auto a = plan_for(resnet, sdp::Level::Block, 4, 2, 7);
  const auto b = plan_for(resnet, sdp::Level::Block, 4, 2, 7);
  const auto c = plan_for(resnet, sdp::Level::Block, 4, 2, 8);
  EXPECT_EQ(sdp::to_json(a), sdp::to_json(b));
  EXPECT_NE(sdp::to_json(a), sdp::to_json(c));
  // Not a split into two fixed halves: the 9 branches use more than two holder pairs.
  std::set<sdp::WorkerSet> sets;
  for (const auto& [name, holders] : a.holders) sets.insert(holders[0]);
  EXPECT_GT(sets.size(), 2u);
}

TEST(MaskPlan, CoverageOneHoldsEverythingEverywhere) {
  const auto plan = plan_for(small_mlp(), sdp::Level::Neuron, 3, 3);
  for (int64_t w = 0; w < 3; ++w) EXPECT_TRUE(plan.subnet(w).empty());
}

TEST(MaskPlan, ImpossiblePlansAreClearErrors) {
  const auto resnet = small_resnet();
  sdp::PlanConfig config;
  config.workers = 4;
  config.coverage = 0.3;  // 1.2 holders per unit
  try {
    sdp::make_mask_plan(resnet, config);
    FAIL() << "coverage 0.3 on 4 workers was accepted";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("whole number"), std::string::npos) << e.what();
  }
  config.coverage = 0.0;
  EXPECT_THROW(sdp::make_mask_plan(resnet, config), UsageError);
  config.coverage = 1.5;
  EXPECT_THROW(sdp::make_mask_plan(resnet, config), UsageError);
  config.coverage = 0.5;
  config.workers = 64;
  EXPECT_THROW(sdp::make_mask_plan(resnet, config), UsageError);
  // An MLP has no residual branches.
  config.workers = 2;
  try {
    sdp::make_mask_plan(small_mlp(), config);
    FAIL() << "block level on an MLP was accepted";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("--sdp-level neuron"), std::string::npos) << e.what();
  }
  // 8 hidden units held once cannot reach 9 workers... nor 9 branches 12 workers at k = 1.
  EXPECT_THROW(plan_for(small_mlp(), sdp::Level::Neuron, 9, 1), UsageError);
  EXPECT_THROW(plan_for(resnet, sdp::Level::Block, 12, 1), UsageError);
  EXPECT_THROW(sdp::parse_level("layer"), UsageError);
}
