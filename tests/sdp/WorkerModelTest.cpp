#include <gtest/gtest.h>

#include "../test_support.h"
#include "tessera/metrics/measurement_scope.h"
#include "tessera/metrics/memory_tracker.h"
#include "tessera/models/staged_model.h"
#include "tessera/models/subnet.h"
#include "tessera/sdp/mask_plan.h"
#include "tessera/sdp/worker_model.h"

using namespace tessera;

namespace {

using tessera::testing::resolved;

models::ModelConfig resnet(double width) {
  models::ModelConfig config;
  config.arch = "resnet";
  config.depth = 20;
  config.width = width;
  config.input_shape = {1, 8, 8};
  return resolved(config);
}

sdp::MaskPlan plan_for(const models::ModelConfig& model, sdp::Level level, int64_t w, double c) {
  sdp::PlanConfig config;
  config.level = level;
  config.workers = w;
  config.coverage = c;
  config.seed = 1;
  return sdp::make_mask_plan(model, config);
}

int64_t state_bytes(torch::nn::Module& module) {
  int64_t bytes = 0;
  for (const auto& p : module.parameters()) bytes += p.numel() * p.element_size();
  for (const auto& b : module.buffers()) bytes += b.numel() * b.element_size();
  return bytes;
}

}  // namespace

// Every held entry starts as it would in the full model built from the same seed.
TEST(WorkerModel, HeldEntriesStartAsInTheFullModel) {
  models::ModelConfig mlp;
  mlp.input_shape = {1, 6, 6};
  mlp.hidden = {16, 12, 8};
  mlp = resolved(mlp);
  models::ModelConfig vit;
  vit.arch = "vit";
  vit.depth = 2;
  vit.input_shape = {1, 8, 8};
  vit.embed_dim = 16;
  vit.num_heads = 4;
  vit.mlp_dim = 8;
  vit = resolved(vit);
  const std::vector<std::pair<models::ModelConfig, sdp::Level>> cases = {
      {mlp, sdp::Level::Neuron},
      {resnet(0.25), sdp::Level::Neuron},
      {resnet(0.25), sdp::Level::Block},
      {vit, sdp::Level::Neuron},
      {vit, sdp::Level::Block}};
  for (const auto& [model, level] : cases) {
    SCOPED_TRACE(model.arch + " " + sdp::to_string(level));
    const sdp::MaskPlan plan = plan_for(model, level, 4, 0.5);
    torch::manual_seed(42);
    models::StagedModel full = models::build_model(model);
    auto full_state = full->named_parameters();
    for (int64_t w = 0; w < 4; ++w) {
      const models::Subnet subnet = plan.subnet(w);
      models::StagedModel sub = sdp::build_worker_model(model, subnet, 42);
      EXPECT_LT(models::parameter_count(*sub), models::parameter_count(*full));
      for (const auto& p : sub->named_parameters()) {
        const torch::Tensor expected =
            models::select_held_entries(full_state[p.key()], p.key(), subnet, plan.groups);
        EXPECT_TRUE(torch::equal(p.value(), expected)) << p.key();
      }
    }
  }
}

// Forward masking allocates only the subnetwork: the tracker sees the worker model's own bytes and
// nothing of the full model, and the maskable part shrinks with the coverage.
TEST(WorkerModel, AllocatesOnlyItsSubnetworkInProportionToCoverage) {
  metrics::install_memory_tracker();
  const auto model = resnet(0.5);
  torch::manual_seed(0);
  models::StagedModel full = models::build_model(model);
  const int64_t full_bytes = state_bytes(*full);
  for (const double coverage : {0.75, 0.5, 0.25}) {
    const sdp::MaskPlan plan = plan_for(model, sdp::Level::Block, 4, coverage);
    const int64_t before = metrics::live_tensor_bytes();
    const metrics::MeasurementScope measured;
    models::StagedModel sub = sdp::build_worker_model(model, plan.subnet(0), 0);
    const int64_t kept = metrics::live_tensor_bytes() - before;
    EXPECT_EQ(kept, state_bytes(*sub));
    // While building, at most one stage of the full model existed beside the subnetwork.
    EXPECT_LT(measured.peak_tensor_bytes() - before, kept + full_bytes / 3);
    // Residual branches hold almost all weights, so the subnetwork is about `coverage` of them
    // (branches differ in size, hence the tolerance).
    const double ratio = static_cast<double>(kept) / static_cast<double>(full_bytes);
    EXPECT_NEAR(ratio, coverage, 0.15) << "coverage " << coverage;
  }
}

TEST(WorkerModel, RescalingMultipliesOnlyTheOutputsOfMaskedUnits) {
  models::ModelConfig mlp;
  mlp.input_shape = {1, 6, 6};
  mlp.hidden = {16, 12};
  mlp = resolved(mlp);
  const sdp::MaskPlan plan = plan_for(mlp, sdp::Level::Neuron, 4, 0.5);
  torch::manual_seed(3);
  models::StagedModel full = models::build_model(mlp);
  std::map<std::string, torch::Tensor> before;
  for (const auto& p : full->named_parameters()) before[p.key()] = p.value().clone();
  sdp::rescale_masked_units(*full, plan, 0.625);
  for (const auto& p : full->named_parameters()) {
    // Inputs of stage 1 and 2 come from masked neurons; stage 0 reads pixels, biases are not sums.
    const bool scaled = p.key() == "stage1.linear.weight" || p.key() == "stage2.linear.weight";
    EXPECT_TRUE(torch::allclose(p.value(), before[p.key()] * (scaled ? 0.625 : 1.0))) << p.key();
  }
}
