// Moving SDP workers to a redrawn plan: every worker ends with its new subnetwork holding the
// values and optimizer state its units had under the old plan, received from their old holders,
// and entries that no worker holds travel to and from their keepers: a change loses nothing.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "../dist/rank_threads.h"
#include "../test_support.h"
#include "tessera/models/subnet.h"
#include "tessera/sdp/plan_change.h"
#include "tessera/sdp/shared_entries.h"
#include "tessera/sdp/worker_model.h"
#include "tessera/train/optimizer_state.h"

using namespace tessera;

namespace {

using tessera::testing::mlp_6x6;

models::ModelConfig resnet_model() {
  models::ModelConfig config;
  config.arch = "resnet";
  config.input_shape = {1, 8, 8};
  config.num_classes = 4;
  config.depth = 14;
  config.width = 0.25;
  return models::architecture(config.arch).resolve(config);
}

constexpr uint64_t kSeed = 9;
constexpr int64_t kSteps = 7;

// A full model's worth of "trained" values and Adam moments, by tensor name: what every holder of
// an entry has after synchronised training. Float tensors only.
struct FullState {
  std::map<std::string, torch::Tensor> value, first, second;
};

FullState trained_state(const models::ModelConfig& model) {
  torch::manual_seed(kSeed);
  models::StagedModel full = models::build_model(model);
  torch::manual_seed(123);
  FullState state;
  for (const auto& p : full->named_parameters()) {
    state.value[p.key()] = p.value().detach() + torch::randn_like(p.value());
    state.first[p.key()] = torch::randn_like(p.value());
    state.second[p.key()] = torch::rand_like(p.value());
  }
  for (const auto& b : full->named_buffers())
    if (b.value().is_floating_point())
      state.value[b.key()] = b.value() + torch::rand_like(b.value());
  return state;
}

// Worker `w`'s subnetwork under `plan` with its entries of `state`, and an Adam optimizer whose
// moments are its entries of the full moments.
sdp::WorkerState worker_under(const sdp::MaskPlan& plan, int64_t w, const FullState& state,
                              const models::ModelConfig& model) {
  const models::Subnet subnet = plan.subnet(w);
  sdp::WorkerState worker;
  worker.model = sdp::build_worker_model(model, subnet, kSeed);
  train::OptimizerConfig adam;
  worker.optimizer = train::make_optimizer(worker.model->parameters(), adam);
  torch::NoGradGuard no_grad;
  for (const auto& p : worker.model->named_parameters()) {
    p.value().copy_(
        models::select_held_entries(state.value.at(p.key()), p.key(), subnet, plan.groups));
    auto moments = train::parameter_state(*worker.optimizer, p.value(), kSteps);
    moments[0].copy_(
        models::select_held_entries(state.first.at(p.key()), p.key(), subnet, plan.groups));
    moments[1].copy_(
        models::select_held_entries(state.second.at(p.key()), p.key(), subnet, plan.groups));
  }
  for (const auto& b : worker.model->named_buffers())
    if (b.value().is_floating_point())
      b.value().copy_(
          models::select_held_entries(state.value.at(b.key()), b.key(), subnet, plan.groups));
  return worker;
}

// What the full model holds after the change: the trained state where some worker held the entry
// under `from`; the initial value and zero moments where nobody did.
FullState expected_after(const FullState& trained, const sdp::MaskPlan& from,
                         const models::ModelConfig& model) {
  torch::manual_seed(kSeed);
  models::StagedModel initial = models::build_model(model);
  auto initial_state = initial->named_parameters();
  FullState expected;
  std::vector<std::string> names;
  for (const auto& [name, value] : trained.value) {
    expected.value[name] = value.clone();
    names.push_back(name);
  }
  for (const auto& [name, first] : trained.first) {
    expected.first[name] = first.clone();
    expected.second[name] = trained.second.at(name).clone();
  }
  for (const auto& cell : sdp::full_model_cells(from, names)) {
    if (cell.holders != 0) continue;
    const std::string& name = names[cell.tensor];
    if (!initial_state.contains(name)) {  // only weights join neurons nobody holds together
      ADD_FAILURE() << "unheld entries in " << name;
      continue;
    }
    sdp::scatter_cell(expected.value[name], cell, sdp::gather_cell(initial_state[name], cell));
    sdp::scatter_cell(expected.first[name], cell,
                      torch::zeros({sdp::gather_numel(initial_state[name], cell)}));
    sdp::scatter_cell(expected.second[name], cell,
                      torch::zeros({sdp::gather_numel(initial_state[name], cell)}));
  }
  return expected;
}

// Every worker's share of the entries no worker holds under `plan`, with their `state` values and
// moments.
sdp::KeptEntries kept_under(const sdp::MaskPlan& plan, int64_t w, const FullState& state) {
  std::vector<std::vector<int64_t>> shapes;
  for (const auto& name : sdp::masked_tensor_names(plan))  // integer buffers: never unheld
    shapes.push_back(state.value.count(name) ? state.value.at(name).sizes().vec()
                                             : std::vector<int64_t>{});
  return sdp::keep_entries(
      plan, w, shapes, 2, torch::kCPU,
      [&](const std::string& name, const sdp::Cell& cell, sdp::KeptCell& kept) {
        kept.value.view({-1}).copy_(sdp::gather_cell(state.value.at(name), cell));
        kept.state[0].view({-1}).copy_(sdp::gather_cell(state.first.at(name), cell));
        kept.state[1].view({-1}).copy_(sdp::gather_cell(state.second.at(name), cell));
      });
}

// `started`: the change is a later one, so the entries no worker holds under `from` are kept
// (with the trained state); else it is the run's first, and they have their initial values.
void expect_moved(const models::ModelConfig& model, sdp::Level level, int64_t workers,
                  double coverage, bool started) {
  sdp::PlanConfig config;
  config.level = level;
  config.workers = workers;
  config.coverage = coverage;
  config.seed = 4;
  const sdp::MaskPlan from = sdp::redrawn_plan(model, config, 0);
  const sdp::MaskPlan to = sdp::redrawn_plan(model, config, 1);
  ASSERT_NE(sdp::to_json(from)["subnets"], sdp::to_json(to)["subnets"])
      << "the redraw changed nothing";
  const FullState trained = trained_state(model);
  // A later change loses nothing: the full model's state is the trained one, entries that no
  // worker held included.
  const FullState expected = started ? trained : expected_after(trained, from, model);

  std::vector<sdp::WorkerState> before(workers), after(workers);
  std::vector<sdp::KeptEntries> kept(workers);
  std::vector<sdp::PlanChangeStats> stats(workers);
  for (int64_t w = 0; w < workers; ++w) {
    before[w] = worker_under(from, w, trained, model);
    if (started) kept[w] = kept_under(from, w, trained);
  }
  const bool ran = test::run_ranks(workers, "sdp_plan_change", [&](dist::ProcessGroup& group) {
    const int64_t w = group.rank();
    after[w] = sdp::change_plan(group, from, to, *before[w].model, *before[w].optimizer, model,
                                train::OptimizerConfig{}, kSeed, kSteps, kept[w], &stats[w]);
  });
  if (!ran) GTEST_SKIP() << "no process group on this machine";

  int64_t received = 0;
  size_t kept_cells = 0;
  for (int64_t w = 0; w < workers; ++w) {
    const models::Subnet subnet = to.subnet(w);
    for (const auto& p : after[w].model->named_parameters()) {
      const std::string& name = p.key();
      auto select = [&](const torch::Tensor& full) {
        return models::select_held_entries(full, name, subnet, to.groups);
      };
      EXPECT_TRUE(torch::equal(p.value(), select(expected.value.at(name)))) << w << " " << name;
      const auto moments = train::parameter_state(*after[w].optimizer, p.value(), 0);
      ASSERT_EQ(moments.size(), 2u);
      EXPECT_TRUE(torch::equal(moments[0], select(expected.first.at(name)))) << w << " " << name;
      EXPECT_TRUE(torch::equal(moments[1], select(expected.second.at(name)))) << w << " " << name;
      auto& states = after[w].optimizer->state();
      using Key = std::decay_t<decltype(states)>::key_type;
      const auto& adam = static_cast<const torch::optim::AdamParamState&>(
          *states.at(train::optimizer_state_key<Key>(p.value())));
      EXPECT_EQ(adam.step(), kSteps) << w << " " << name;
    }
    for (const auto& b : after[w].model->named_buffers()) {
      if (!b.value().is_floating_point()) continue;
      EXPECT_TRUE(torch::equal(b.value(), models::select_held_entries(expected.value.at(b.key()),
                                                                      b.key(), subnet, to.groups)))
          << w << " " << b.key();
    }
    // The entries no worker holds under `to` are with their keepers, state and all.
    ASSERT_TRUE(kept[w].started);
    const auto names = sdp::masked_tensor_names(to);
    for (const auto& [index, cell] : kept[w].kept) {
      const sdp::UnheldCell& unheld = kept[w].cells.at(index);
      EXPECT_EQ(unheld.keeper, w);
      const std::string& name = names[unheld.cell.tensor];
      auto gather = [&](const std::map<std::string, torch::Tensor>& full) {
        return sdp::gather_cell(full.at(name), unheld.cell);
      };
      EXPECT_TRUE(torch::equal(cell.value.reshape({-1}), gather(expected.value))) << w << name;
      EXPECT_TRUE(torch::equal(cell.state[0].reshape({-1}), gather(expected.first))) << w << name;
      EXPECT_TRUE(torch::equal(cell.state[1].reshape({-1}), gather(expected.second))) << w << name;
    }
    kept_cells += kept[w].kept.size();
    EXPECT_LT(models::parameter_count(*after[w].model),
              models::parameter_count(*models::build_model(model)));
    received += stats[w].received_entries;
    EXPECT_GT(stats[w].peak_tensor_bytes, 0);
  }
  EXPECT_EQ(kept_cells, sdp::unheld_cells(to).size());
  EXPECT_GT(received, 0);
}

}  // namespace

TEST(PlanChange, BlockLevelWorkersReceiveTheBranchesTheyNowHoldWithTheirAdamState) {
  expect_moved(resnet_model(), sdp::Level::Block, 4, 0.5, /*started=*/true);
}

TEST(PlanChange, NeuronLevelWorkersReceiveTheirNewNeuronsWithTheirAdamState) {
  // At W = 3, C = 2/3 every two neurons share a holder: no entry is unheld.
  expect_moved(mlp_6x6(), sdp::Level::Neuron, 3, 2.0 / 3.0, /*started=*/true);
}

TEST(PlanChange, AtTheFirstChangeWeightsNoWorkerHeldComeWithTheirInitialValue) {
  // At W = 4, C = 1/2 two neurons with disjoint holder pairs are held together by no worker.
  const auto model = mlp_6x6();
  sdp::PlanConfig config{sdp::Level::Neuron, 4, 0.5, 4};
  ASSERT_FALSE(sdp::unheld_cells(sdp::redrawn_plan(model, config, 0)).empty());
  expect_moved(model, sdp::Level::Neuron, 4, 0.5, /*started=*/false);
}

TEST(PlanChange, LaterChangesLoseNoWeightThatNoWorkerHolds) {
  // The weights between neurons held together by no worker come from their keepers, trained
  // values and moments, and go to the new keepers: the full model's state is unchanged.
  expect_moved(mlp_6x6(), sdp::Level::Neuron, 4, 0.5, /*started=*/true);
}

TEST(PlanChange, TheFirstRedrawIsTheRunsPlanAndLaterOnesDiffer) {
  sdp::PlanConfig config;
  config.level = sdp::Level::Neuron;
  config.workers = 3;
  config.coverage = 2.0 / 3.0;
  config.seed = 4;
  const auto model = mlp_6x6();
  EXPECT_EQ(sdp::to_json(sdp::redrawn_plan(model, config, 0)),
            sdp::to_json(sdp::make_mask_plan(model, config)));
  EXPECT_EQ(sdp::to_json(sdp::redrawn_plan(model, config, 2)),
            sdp::to_json(sdp::redrawn_plan(model, config, 2)));
  EXPECT_NE(sdp::to_json(sdp::redrawn_plan(model, config, 1))["subnets"],
            sdp::to_json(sdp::redrawn_plan(model, config, 2))["subnets"]);
}

TEST(PlanChange, TheAssembledModelTakesWeightsNoWorkerHoldsFromTheirKeepers) {
  const auto model = mlp_6x6();
  const sdp::PlanConfig config{sdp::Level::Neuron, 4, 0.5, 4};
  const sdp::MaskPlan plan = sdp::redrawn_plan(model, config, 1);
  ASSERT_FALSE(sdp::unheld_cells(plan).empty());
  const FullState trained = trained_state(model);
  std::vector<sdp::WorkerState> workers(4);
  std::vector<sdp::KeptEntries> kept(4);
  for (int64_t w = 0; w < 4; ++w) {
    workers[w] = worker_under(plan, w, trained, model);
    kept[w] = kept_under(plan, w, trained);
  }
  models::StagedModel full(nullptr);
  const bool ran = test::run_ranks(4, "sdp_assemble_kept", [&](dist::ProcessGroup& group) {
    const int64_t w = group.rank();
    models::StagedModel assembled =
        sdp::assemble_full_model(group, *workers[w].model, plan, model, kSeed, false, kept[w]);
    if (w == 0) full = assembled;
  });
  if (!ran) GTEST_SKIP() << "no process group on this machine";
  // Every entry is the trained one: held entries from their holders, the others from keepers.
  for (const auto& p : full->named_parameters())
    EXPECT_TRUE(torch::equal(p.value(), trained.value.at(p.key()))) << p.key();
}
