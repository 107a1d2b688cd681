#include <gtest/gtest.h>

#include <algorithm>

#include "../dist/rank_threads.h"
#include "../test_support.h"
#include "tessera/core/seeding.h"
#include "tessera/data/load.h"
#include "tessera/dist/data_parallel.h"
#include "tessera/models/staged_model.h"
#include "tessera/models/subnet.h"
#include "tessera/sdp/backward_masking.h"
#include "tessera/sdp/worker_model.h"
#include "tessera/train/optimizer.h"
#include "tessera/train/trainer.h"

using namespace tessera;

namespace {

using tessera::testing::mlp_6x6;

models::ModelConfig resnet_config() {
  models::ModelConfig config;
  config.arch = "resnet";
  config.depth = 20;
  config.width = 0.25;
  config.input_shape = {1, 8, 8};
  config.num_classes = 4;
  return models::architecture(config.arch).resolve(config);
}

sdp::MaskPlan make_plan(const models::ModelConfig& model, sdp::Level level, int64_t w,
                        double coverage) {
  sdp::PlanConfig config;
  config.level = level;
  config.workers = w;
  config.coverage = coverage;
  config.seed = 2;
  return sdp::make_mask_plan(model, config);
}

// The parameters of the subnetwork a worker holds (what forward masking would allocate).
int64_t subnet_numel(const models::ModelConfig& model, const models::Subnet& subnet) {
  models::ModelConfig config = model;
  config.subnet = subnet;
  models::StagedModel sub = models::build_model(config);
  return models::parameter_count(*sub);
}

std::map<std::string, torch::Tensor> named_snapshot(models::StagedModel& model) {
  std::map<std::string, torch::Tensor> copies;
  for (const auto& p : model->named_parameters()) copies[p.key()] = p.value().detach().clone();
  return copies;
}

// What one worker saw of its gradients and optimizer between backward and the step.
struct HeldState {
  int64_t grad_numel = 0;             // of every tensor with a gradient, model or compact copy
  int64_t model_grad_numel = 0;       // of the model's own parameters with a gradient
  int64_t whole_numel = 0;            // of the trained tensors that are model parameters
  int64_t optimizer_state_bytes = 0;  // after the last step
  int64_t trained_numel = 0;
};

}  // namespace

// Outside the anonymous namespace: the fixture below, which has external linkage, derives from it.
struct BackwardMaskingCase {
  std::string name;
  models::ModelConfig model;
  sdp::Level level;
  sdp::SyncMode mode;
};

class BackwardMaskingAgreement : public ::testing::TestWithParam<BackwardMaskingCase> {};

// Three workers, each unit on two of them, each stepping on its own random data and clipping its
// gradients: after every step
// all workers have the same full model, gradients and optimizer state cover exactly the units the
// worker holds, and what a worker does not hold has changed only through the refresh.
TEST_P(BackwardMaskingAgreement, WorkersKeepOneFullModelAndStateOnlyForHeldUnits) {
  const BackwardMaskingCase& c = GetParam();
  const sdp::MaskPlan plan = make_plan(c.model, c.level, 3, 2.0 / 3.0);
  std::vector<models::StagedModel> workers;
  for (int64_t w = 0; w < 3; ++w) workers.push_back(sdp::build_worker_model(c.model, {}, 9));
  const auto initial = named_snapshot(workers[0]);
  std::vector<HeldState> held(3);
  std::vector<std::vector<std::string>> untrained(3);  // names of parameters without gradients
  const bool ran = test::run_ranks(3, "sdp_backward_" + c.name, [&](dist::ProcessGroup& group) {
    const int64_t rank = group.rank();
    models::StagedModel& m = workers[rank];
    sdp::BackwardMasking sync(group, plan, c.mode, *m);
    sync.start(*m);
    auto optimizer = train::make_optimizer(sync.trained_parameters(), train::OptimizerConfig{});
    at::Generator generator = make_generator(100 + rank);
    for (int step = 0; step < 3; ++step) {
      std::vector<int64_t> shape = {8};
      shape.insert(shape.end(), c.model.input_shape.begin(), c.model.input_shape.end());
      const torch::Tensor x = torch::randn(shape, generator);
      const torch::Tensor y = torch::randint(0, 4, {8}, generator);
      optimizer->zero_grad();
      sync.before_backward(8);
      torch::nn::functional::cross_entropy(m->forward(x), y).backward();
      sync.after_backward();
      sync.clip_gradients(sync.trained_parameters(), 1e-3);  // every step: one factor for all
      if (step == 0) {
        for (const auto& p : m->named_parameters()) {
          if (p.value().grad().defined()) held[rank].model_grad_numel += p.value().numel();
          if (!p.value().requires_grad()) untrained[rank].push_back(p.key());
        }
        const auto own = m->parameters();
        for (const auto& t : sync.trained_parameters()) {
          held[rank].trained_numel += t.numel();
          if (t.grad().defined()) held[rank].grad_numel += t.numel();
          if (std::any_of(own.begin(), own.end(), [&](const auto& p) { return p.is_same(t); }))
            held[rank].whole_numel += t.numel();
        }
      }
      optimizer->step();
      sync.after_step();
    }
    held[rank].optimizer_state_bytes = train::optimizer_state_bytes(*optimizer);
    EXPECT_GT(sync.stats().comm_bytes, sync.refresh_bytes());
    EXPECT_GT(sync.refresh_bytes(), 0);
  });
  if (!ran) GTEST_SKIP() << "no process group on this machine";

  const auto reference = named_snapshot(workers[0]);
  for (int64_t w = 1; w < 3; ++w)
    for (const auto& [name, value] : named_snapshot(workers[w]))
      EXPECT_TRUE(torch::equal(value, reference.at(name))) << "worker " << w << " " << name;
  for (const auto& [name, value] : reference)
    EXPECT_FALSE(torch::equal(value, initial.at(name))) << "untrained: " << name;

  for (int64_t w = 0; w < 3; ++w) {
    SCOPED_TRACE("worker " + std::to_string(w));
    const int64_t numel = subnet_numel(c.model, plan.subnet(w));
    EXPECT_LT(numel, models::parameter_count(*workers[w]));
    EXPECT_EQ(held[w].trained_numel, numel);
    EXPECT_EQ(held[w].grad_numel, numel);
    // Adam: two moments per held entry, nothing for the rest.
    EXPECT_EQ(held[w].optimizer_state_bytes, 2 * numel * 4);
    // Only tensors held whole keep their gradient in the model; the held entries of the others
    // are in compact copies (neuron level) and their full-size gradients are gone.
    EXPECT_EQ(held[w].model_grad_numel, held[w].whole_numel);
    if (c.level == sdp::Level::Block)
      EXPECT_EQ(held[w].whole_numel, numel);
    else
      EXPECT_LT(held[w].whole_numel, numel);
    // A branch the worker does not hold has no gradient and no optimizer state, yet it trained
    // (checked above): only the refresh from its holders can have changed it.
    EXPECT_EQ(untrained[w].empty(), c.level == sdp::Level::Neuron);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Levels, BackwardMaskingAgreement,
    ::testing::Values(
        BackwardMaskingCase{"block_grads", resnet_config(), sdp::Level::Block,
                            sdp::SyncMode::Grads},
        BackwardMaskingCase{"block_params", resnet_config(), sdp::Level::Block,
                            sdp::SyncMode::Params},
        BackwardMaskingCase{"neuron_grads", mlp_6x6(), sdp::Level::Neuron, sdp::SyncMode::Grads},
        BackwardMaskingCase{"neuron_params", mlp_6x6(), sdp::Level::Neuron, sdp::SyncMode::Params},
        BackwardMaskingCase{"resnet_neuron", resnet_config(), sdp::Level::Neuron,
                            sdp::SyncMode::Grads}),
    [](const auto& test_case) { return test_case.param.name; });

namespace {

using tessera::testing::snapshot;
using tessera::testing::synthetic_6x6;

train::TrainConfig trainer_config(const std::string& optimizer, int64_t rank, int64_t world) {
  train::TrainConfig config;
  config.epochs = 2;
  config.batch_size = 16;
  config.seed = 11;
  config.optimizer.name = optimizer;
  config.optimizer.lr = optimizer == "sgd" ? 0.05 : 1e-3;
  config.quiet = true;
  config.rank = rank;
  config.world_size = world;
  return config;
}

}  // namespace

TEST(BackwardMasking, TwoWorkersWithFullCoverageAndGradientSyncAreDdp) {
  const auto data = synthetic_6x6(480);
  const auto model = mlp_6x6();
  const auto plan = make_plan(model, sdp::Level::Neuron, 2, 1.0);
  auto train_two = [&](bool sdp_sync, const std::string& name) {
    std::vector<models::StagedModel> replicas;
    for (int64_t r = 0; r < 2; ++r) replicas.push_back(sdp::build_worker_model(model, {}, 6));
    const bool ran = test::run_ranks(2, name, [&](dist::ProcessGroup& group) {
      const int64_t rank = group.rank();
      train::TrainConfig config = trainer_config("sgd", rank, 2);
      config.clip_grad_norm = 0.1;  // clips most steps: SDP must clip as DDP does
      train::Trainer trainer(replicas[rank], std::make_shared<train::Classification>(), config,
                             nullptr);
      if (sdp_sync) {
        auto masking = std::make_shared<sdp::BackwardMasking>(group, plan, sdp::SyncMode::Grads,
                                                              *replicas[rank]);
        trainer.set_worker_sync(masking);
        trainer.set_trained_parameters(masking->trained_parameters());
      } else {
        trainer.set_worker_sync(
            std::make_shared<dist::DataParallel>(group, dist::ReducerOptions{}));
      }
      trainer.fit(data.train, nullptr);
    });
    return ran ? std::vector<std::vector<torch::Tensor>>{snapshot(replicas[0]),
                                                         snapshot(replicas[1])}
               : std::vector<std::vector<torch::Tensor>>{};
  };
  const auto sdp_run = train_two(true, "sdp_backward_as_ddp");
  const auto ddp_run = train_two(false, "ddp_for_sdp_backward");
  if (sdp_run.empty() || ddp_run.empty()) GTEST_SKIP() << "no process group on this machine";
  for (size_t i = 0; i < ddp_run[0].size(); ++i) {
    EXPECT_TRUE(torch::allclose(sdp_run[0][i], ddp_run[0][i], 1e-5, 1e-6)) << "parameter " << i;
    EXPECT_TRUE(torch::equal(sdp_run[0][i], sdp_run[1][i])) << "replicas differ: " << i;
  }
}

// Through the Trainer, as `tessera train --dist sdp --sdp-masking backward` runs it: the summary's
// gradient and optimizer-state bytes are the held units', the memory peak counts the compact
// copies, and the workers end equal (clipping included).
TEST(BackwardMasking, TrainerKeepsGradientsAndAdamStateOnlyForHeldUnits) {
  const auto data = synthetic_6x6(256);
  const auto model = mlp_6x6();
  const auto plan = make_plan(model, sdp::Level::Neuron, 2, 0.5);
  std::vector<models::StagedModel> workers;
  for (int64_t r = 0; r < 2; ++r) workers.push_back(sdp::build_worker_model(model, {}, 6));
  std::vector<train::TrainSummary> summaries(2);
  const bool ran = test::run_ranks(2, "sdp_backward_trainer", [&](dist::ProcessGroup& group) {
    const int64_t rank = group.rank();
    train::TrainConfig config = trainer_config("adam", rank, 2);
    config.clip_grad_norm = 1e-3;  // clips every step, by one factor on both workers
    train::Trainer trainer(workers[rank], std::make_shared<train::Classification>(), config,
                           nullptr);
    auto masking =
        std::make_shared<sdp::BackwardMasking>(group, plan, sdp::SyncMode::Grads, *workers[rank]);
    trainer.set_worker_sync(masking);
    trainer.set_trained_parameters(masking->trained_parameters());
    summaries[rank] = trainer.fit(data.train, nullptr);
  });
  if (!ran) GTEST_SKIP() << "no process group on this machine";
  for (int64_t w = 0; w < 2; ++w) {
    SCOPED_TRACE("worker " + std::to_string(w));
    const int64_t held_bytes = subnet_numel(model, plan.subnet(w)) * 4;
    EXPECT_EQ(summaries[w].grad_bytes, held_bytes);
    EXPECT_EQ(summaries[w].optimizer_state_bytes, 2 * held_bytes);
    // Full parameters + compact copies + their gradients + Adam state, at the least.
    EXPECT_GE(summaries[w].peak_tensor_bytes, summaries[w].param_bytes + 4 * held_bytes);
  }
  const auto a = snapshot(workers[0]);
  const auto b = snapshot(workers[1]);
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i], b[i])) << "parameter " << i;
}
