#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "../dist/rank_threads.h"
#include "../test_support.h"
#include "tessera/core/error.h"
#include "tessera/core/seeding.h"
#include "tessera/data/load.h"
#include "tessera/dist/data_parallel.h"
#include "tessera/models/staged_model.h"
#include "tessera/models/subnet.h"
#include "tessera/sdp/subnet_sync.h"
#include "tessera/sdp/worker_model.h"
#include "tessera/train/trainer.h"

using namespace tessera;

namespace {

using tessera::testing::mlp_6x6;
using tessera::testing::sgd_config;
using tessera::testing::snapshot;
using tessera::testing::synthetic_6x6;

sdp::MaskPlan plan_for(const models::ModelConfig& model, int64_t w, double coverage) {
  sdp::PlanConfig config;
  config.level = sdp::Level::Neuron;
  config.workers = w;
  config.coverage = coverage;
  config.seed = 2;
  return sdp::make_mask_plan(model, config);
}

// Each worker's subnetwork of `plan`, built from seed 9.
std::vector<models::StagedModel> worker_models(const models::ModelConfig& model,
                                               const sdp::MaskPlan& plan) {
  std::vector<models::StagedModel> workers;
  for (int64_t w = 0; w < plan.config.workers; ++w)
    workers.push_back(sdp::build_worker_model(model, plan.subnet(w), 9));
  return workers;
}

}  // namespace

// The sync mode, and whether the averages travel as bf16.
class HolderAgreement : public ::testing::TestWithParam<std::pair<sdp::SyncMode, bool>> {};

// Three workers, each unit on two of them, each worker stepping on its own random data and
// clipping its gradients: after the steps every holder of an entry has the same value, and the
// assembled model has it too.
TEST_P(HolderAgreement, HoldersAgreeAfterEveryStepAndTheAssemblyHasTheirValues) {
  const auto model = mlp_6x6();
  const auto plan = plan_for(model, 3, 2.0 / 3.0);
  std::vector<models::StagedModel> workers = worker_models(model, plan);
  std::vector<std::vector<torch::Tensor>> initial;
  for (auto& m : workers) initial.push_back(snapshot(m));
  models::StagedModel assembled{nullptr};
  const bool ran = test::run_ranks(3, "sdp_agree", [&](dist::ProcessGroup& group) {
    const int64_t rank = group.rank();
    models::StagedModel& m = workers[rank];
    sdp::SubnetSync sync(group, plan, GetParam().first, GetParam().second);
    sync.start(*m);
    torch::optim::SGD sgd(m->parameters(), torch::optim::SGDOptions(0.1));
    at::Generator generator = make_generator(100 + rank);
    for (int step = 0; step < 3; ++step) {
      const torch::Tensor x = torch::randn({8, 1, 6, 6}, generator);
      const torch::Tensor y = torch::randint(0, 4, {8}, generator);
      sgd.zero_grad();
      sync.before_backward(8);
      torch::nn::functional::cross_entropy(m->forward(x), y).backward();
      sync.after_backward();
      // Small enough to clip every step: holders must still scale by one factor.
      sync.clip_gradients(m->parameters(), 1e-3);
      sgd.step();
      sync.after_step();
    }
    EXPECT_GT(sync.stats().comm_bytes, 0);
    EXPECT_GT(sync.stats().holder_sets, 1);
    models::StagedModel full = sdp::assemble_full_model(group, *m, plan, model, 9, 0.0, {});
    if (rank == 0) assembled = full;
  });
  if (!ran) GTEST_SKIP() << "no process group on this machine";
  ASSERT_TRUE(assembled.ptr() != nullptr);
  auto full_params = assembled->named_parameters();
  for (int64_t w = 0; w < 3; ++w) {
    const auto params = workers[w]->named_parameters();
    for (size_t i = 0; i < params.size(); ++i) {
      const std::string& name = params[i].key();
      EXPECT_FALSE(torch::equal(params[i].value(), initial[w][i])) << "untrained: " << name;
      const torch::Tensor expected =
          models::select_held_entries(full_params[name], name, plan.subnet(w), plan.groups);
      EXPECT_TRUE(torch::equal(params[i].value(), expected)) << "worker " << w << " " << name;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Modes, HolderAgreement,
                         ::testing::Values(std::pair{sdp::SyncMode::Params, false},
                                           std::pair{sdp::SyncMode::Grads, false},
                                           std::pair{sdp::SyncMode::Grads, true}),
                         [](const auto& mode) {
                           return std::string(sdp::to_string(mode.param.first)) +
                                  (mode.param.second ? "_bf16" : "");
                         });

// Clipping measures the mean gradient of the whole model: each entry counted once, however many
// workers hold it, and entries no worker holds not at all. The reference puts every worker's
// averaged gradients into full-size tensors and takes their norm.
TEST(SubnetSync, ClippingUsesTheNormOfTheFullModelsMeanGradient) {
  const auto model = mlp_6x6();
  const auto plan = plan_for(model, 3, 2.0 / 3.0);
  std::vector<models::StagedModel> workers = worker_models(model, plan);
  std::vector<std::vector<torch::Tensor>> averaged(3);  // each worker's mean gradients
  std::vector<std::vector<torch::Tensor>> clipped(3);
  std::vector<double> norms(3);
  const bool ran = test::run_ranks(3, "sdp_clip_norm", [&](dist::ProcessGroup& group) {
    const int64_t rank = group.rank();
    models::StagedModel& m = workers[rank];
    sdp::SubnetSync sync(group, plan, sdp::SyncMode::Grads);
    sync.start(*m);
    at::Generator generator = make_generator(100 + rank);
    const torch::Tensor x = torch::randn({8, 1, 6, 6}, generator);
    const torch::Tensor y = torch::randint(0, 4, {8}, generator);
    sync.before_backward(8);
    torch::nn::functional::cross_entropy(m->forward(x), y).backward();
    sync.after_backward();
    for (const auto& p : m->parameters()) averaged[rank].push_back(p.grad().clone());
    norms[rank] = sync.clip_gradients(m->parameters(), 1e-3);
    for (const auto& p : m->parameters()) clipped[rank].push_back(p.grad().clone());
  });
  if (!ran) GTEST_SKIP() << "no process group on this machine";

  models::StagedModel full = models::build_model(model);
  double squares = 0.0;
  for (const auto& p : full->named_parameters()) {
    torch::Tensor mean = torch::zeros_like(p.value());
    for (int64_t w = 0; w < 3; ++w) {
      const auto names = workers[w]->named_parameters().keys();
      const size_t i = std::find(names.begin(), names.end(), p.key()) - names.begin();
      ASSERT_LT(i, names.size()) << p.key();
      models::scatter_held_entries(mean, averaged[w][i], p.key(), plan.subnet(w), plan.groups);
    }
    squares += mean.square().sum().item<double>();
  }
  const double reference = std::sqrt(squares);
  ASSERT_GT(reference, 1e-3);
  for (int64_t w = 0; w < 3; ++w) {
    EXPECT_NEAR(norms[w], reference, 1e-5 * reference) << "worker " << w;
    for (size_t i = 0; i < averaged[w].size(); ++i)
      EXPECT_TRUE(torch::allclose(clipped[w][i], averaged[w][i] * (1e-3 / reference), 1e-4, 1e-9))
          << "worker " << w << " tensor " << i;
  }
}

TEST(SubnetSync, Bf16ParameterAveragingIsRefusedWithTheReason) {
  const auto model = mlp_6x6();
  const auto plan = plan_for(model, 1, 1.0);
  const bool ran = test::run_ranks(1, "sdp_bf16_params", [&](dist::ProcessGroup& group) {
    try {
      sdp::SubnetSync sync(group, plan, sdp::SyncMode::Params, /*bf16_comm=*/true);
      ADD_FAILURE() << "bf16 parameter averaging was accepted";
    } catch (const UsageError& e) {
      EXPECT_NE(std::string(e.what()).find("--sdp-sync grads"), std::string::npos) << e.what();
    }
  });
  if (!ran) GTEST_SKIP() << "no process group on this machine";
}

TEST(SubnetSync, OneWorkerWithFullCoverageIsConventionalTraining) {
  const auto data = synthetic_6x6(256);
  const auto model = mlp_6x6();
  torch::manual_seed(4);
  models::StagedModel conventional = models::build_model(model);
  train::Trainer single(conventional, std::make_shared<train::Classification>(),
                        sgd_config(32, 0, 1), nullptr);
  single.fit(data.train, nullptr);

  const auto plan = plan_for(model, 1, 1.0);
  models::StagedModel worker = sdp::build_worker_model(model, plan.subnet(0), 4);
  const bool ran = test::run_ranks(1, "sdp_single", [&](dist::ProcessGroup& group) {
    train::Trainer trainer(worker, std::make_shared<train::Classification>(), sgd_config(32, 0, 1),
                           nullptr);
    trainer.set_worker_sync(std::make_shared<sdp::SubnetSync>(group, plan, sdp::SyncMode::Params));
    trainer.fit(data.train, nullptr);
  });
  if (!ran) GTEST_SKIP() << "no process group on this machine";
  const auto a = snapshot(conventional);
  const auto b = snapshot(worker);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i], b[i])) << "parameter " << i;
}

TEST(SubnetSync, TwoWorkersWithFullCoverageAndGradientSyncAreDdp) {
  const auto data = synthetic_6x6(480);
  const auto model = mlp_6x6();
  const auto plan = plan_for(model, 2, 1.0);
  auto train_two = [&](bool sdp_sync, const std::string& name) {
    std::vector<models::StagedModel> replicas;
    for (int64_t r = 0; r < 2; ++r) replicas.push_back(sdp::build_worker_model(model, {}, 6));
    const bool ran = test::run_ranks(2, name, [&](dist::ProcessGroup& group) {
      const int64_t rank = group.rank();
      train::TrainConfig config = sgd_config(16, rank, 2);
      config.clip_grad_norm = 0.1;  // clips most steps: SDP must clip as DDP does
      train::Trainer trainer(replicas[rank], std::make_shared<train::Classification>(), config,
                             nullptr);
      if (sdp_sync)
        trainer.set_worker_sync(
            std::make_shared<sdp::SubnetSync>(group, plan, sdp::SyncMode::Grads));
      else
        trainer.set_worker_sync(
            std::make_shared<dist::DataParallel>(group, dist::ReducerOptions{}));
      trainer.fit(data.train, nullptr);
    });
    return ran ? std::vector<std::vector<torch::Tensor>>{snapshot(replicas[0]),
                                                         snapshot(replicas[1])}
               : std::vector<std::vector<torch::Tensor>>{};
  };
  const auto sdp_run = train_two(true, "sdp_as_ddp");
  const auto ddp_run = train_two(false, "ddp_for_sdp");
  if (sdp_run.empty() || ddp_run.empty()) GTEST_SKIP() << "no process group on this machine";
  for (size_t i = 0; i < ddp_run[0].size(); ++i) {
    EXPECT_TRUE(torch::allclose(sdp_run[0][i], ddp_run[0][i], 1e-5, 1e-6)) << "parameter " << i;
    EXPECT_TRUE(torch::equal(sdp_run[0][i], sdp_run[1][i])) << "replicas differ: " << i;
  }
}
