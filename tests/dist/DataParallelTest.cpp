#include <gtest/gtest.h>

#include <mutex>

#include "../test_support.h"
#include "rank_threads.h"
#include "tessera/core/error.h"
#include "tessera/data/load.h"
#include "tessera/dist/data_parallel.h"
#include "tessera/metrics/memory_tracker.h"
#include "tessera/models/staged_model.h"
#include "tessera/train/trainer.h"

using namespace tessera;

namespace {

using tessera::testing::sgd_config;
using tessera::testing::snapshot;
using tessera::testing::synthetic_6x6;

models::StagedModel small_mlp(const data::Dataset& data, uint64_t seed) {
  models::ModelConfig config;
  config.input_shape = data.sample_shape();
  config.num_classes = data.num_classes;
  config.hidden = {32, 24};
  torch::manual_seed(seed);
  return models::build_model(config);
}

void expect_close(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i)
    EXPECT_TRUE(torch::allclose(a[i], b[i], 1e-4, 1e-5))
        << "parameter " << i << " differs by " << (a[i] - b[i]).abs().max().item<double>();
}

// Trains a replica per rank (each initialised from its own seed, so only the broadcast can make
// them agree) on `data_of(rank)` and returns every rank's final parameters and summary.
struct DdpRun {
  std::vector<std::vector<torch::Tensor>> parameters;
  std::vector<train::TrainSummary> summaries;
  std::vector<int64_t>
      gradient_bytes;  // each rank's reducer's count (the summary's is the process's)
  bool ran = false;
};

DdpRun train_ddp(int64_t world, int64_t batch_size, dist::ReducerOptions reducer,
                 const std::function<const data::Dataset&(int64_t)>& data_of,
                 const std::string& name) {
  DdpRun run;
  run.parameters.resize(world);
  run.summaries.resize(world);
  run.gradient_bytes.resize(world);
  std::vector<models::StagedModel> models;
  for (int64_t r = 0; r < world; ++r) models.push_back(small_mlp(data_of(r), 100 + r));
  run.ran = test::run_ranks(world, name, [&](dist::ProcessGroup& group) {
    const int64_t rank = group.rank();
    train::Trainer trainer(models[rank], std::make_shared<train::Classification>(),
                           sgd_config(batch_size, rank, world), nullptr);
    auto ddp = std::make_shared<dist::DataParallel>(group, reducer);
    trainer.set_worker_sync(ddp);
    run.summaries[rank] = trainer.fit(data_of(rank), nullptr);
    run.gradient_bytes[rank] = ddp->reducer()->stats().comm_bytes;
    run.parameters[rank] = snapshot(models[rank]);
  });
  return run;
}

}  // namespace

class DdpEquivalence : public ::testing::TestWithParam<dist::ReducerOptions> {};

TEST_P(DdpEquivalence, TwoRanksWithBatchBEqualOneWorkerWithBatch2B) {
  metrics::install_memory_tracker();
  const auto data = synthetic_6x6(480);
  auto single_model = small_mlp(data.train, 100);
  train::Trainer single(single_model, std::make_shared<train::Classification>(),
                        sgd_config(32, 0, 1), nullptr);
  single.fit(data.train, nullptr);

  const DdpRun ddp = train_ddp(
      2, 16, GetParam(), [&](int64_t) -> const data::Dataset& { return data.train; },
      "equivalence");
  if (!ddp.ran) GTEST_SKIP() << "no process group on this machine";
  expect_close(ddp.parameters[0], snapshot(single_model));
  // The replicas stay bit-identical: they apply the same reduced gradient.
  for (size_t i = 0; i < ddp.parameters[0].size(); ++i)
    EXPECT_TRUE(torch::equal(ddp.parameters[0][i], ddp.parameters[1][i]));
  EXPECT_EQ(ddp.summaries[0].steps, 2 * 15);  // 240 samples per rank in batches of 16
  EXPECT_EQ(ddp.summaries[0].train_samples, 480);
  EXPECT_GT(ddp.summaries[0].comm_bytes, 0);
}

INSTANTIATE_TEST_SUITE_P(Buckets, DdpEquivalence,
                         ::testing::Values(dist::ReducerOptions{4 << 20, true},
                                           dist::ReducerOptions{1024, true},  // many buckets
                                           dist::ReducerOptions{1024, false}));

TEST(DataParallel, Bf16GradientsTrainLikeFp32OnesWithIdenticalReplicasAndHalfTheBytes) {
  const auto data = synthetic_6x6(480);
  auto same_data = [&](int64_t) -> const data::Dataset& { return data.train; };
  const DdpRun fp32 = train_ddp(2, 16, dist::ReducerOptions{1024, true, false}, same_data, "fp32");
  const DdpRun bf16 = train_ddp(2, 16, dist::ReducerOptions{1024, true, true}, same_data, "bf16");
  if (!fp32.ran || !bf16.ran) GTEST_SKIP() << "no process group on this machine";
  double largest = 0.0;
  bool any_differs = false;
  for (size_t i = 0; i < fp32.parameters[0].size(); ++i) {
    EXPECT_TRUE(torch::equal(bf16.parameters[0][i], bf16.parameters[1][i])) << "parameter " << i;
    const torch::Tensor gap = (bf16.parameters[0][i] - fp32.parameters[0][i]).abs();
    largest = std::max(largest, gap.max().item<double>());
    any_differs = any_differs || gap.max().item<double>() > 0;
  }
  EXPECT_TRUE(any_differs);  // the gradients were rounded
  EXPECT_LT(largest, 2e-3);  // but 30 SGD steps stay close to fp32's
  EXPECT_NEAR(bf16.summaries[0].last_train.loss, fp32.summaries[0].last_train.loss, 0.01);
  // Each of two ranks sends one payload per all-reduce: fp32 4N + 4 bytes a step (the count rides
  // in bucket 0), bf16 2N + 4 (the count in a float32 all-reduce of its own).
  int64_t parameters = 0;
  for (const auto& p : fp32.parameters[0]) parameters += p.numel();
  const int64_t steps = fp32.summaries[0].steps;
  EXPECT_EQ(fp32.gradient_bytes[0], steps * (4 * parameters + 4));
  EXPECT_EQ(bf16.gradient_bytes[0], steps * (2 * parameters + 4));
}

TEST(DataParallel, UnequalShardsFinishWithIdenticalReplicas) {
  metrics::install_memory_tracker();
  // Rank 1 has fewer samples than rank 0 (as with differing --limit-train): it runs out of
  // batches and must still take part in every step instead of leaving rank 0 waiting forever.
  const auto large = synthetic_6x6(300);
  const auto small = synthetic_6x6(100);
  const DdpRun ddp = train_ddp(
      2, 32, {},
      [&](int64_t rank) -> const data::Dataset& { return rank == 0 ? large.train : small.train; },
      "unequal");
  if (!ddp.ran) GTEST_SKIP() << "no process group on this machine";
  // Shards of 150 and 50 samples: ceil(150 / 32) = 5 steps per epoch on both ranks.
  EXPECT_EQ(ddp.summaries[0].steps, 2 * 5);
  EXPECT_EQ(ddp.summaries[1].steps, 2 * 5);
  EXPECT_EQ(ddp.summaries[0].train_samples, 2 * 150);
  EXPECT_EQ(ddp.summaries[1].train_samples, 2 * 50);
  for (size_t i = 0; i < ddp.parameters[0].size(); ++i)
    EXPECT_TRUE(torch::equal(ddp.parameters[0][i], ddp.parameters[1][i]));
}

TEST(DataParallel, PaddedShardsOnThreeRanksFinish) {
  metrics::install_memory_tracker();
  const auto data = synthetic_6x6(301);  // not a multiple of 3: the sampler pads by wrapping
  const DdpRun ddp = train_ddp(
      3, 20, {}, [&](int64_t) -> const data::Dataset& { return data.train; }, "padded");
  if (!ddp.ran) GTEST_SKIP() << "no process group on this machine";
  for (int r = 0; r < 3; ++r) EXPECT_EQ(ddp.summaries[r].steps, 2 * 6);  // ceil(101 / 20)
  for (size_t i = 0; i < ddp.parameters[0].size(); ++i)
    EXPECT_TRUE(torch::equal(ddp.parameters[0][i], ddp.parameters[2][i]));
}

TEST(DataParallel, DifferentModelsOnTheRanksAreAnErrorNotAHang) {
  metrics::install_memory_tracker();
  const auto data = synthetic_6x6(64);
  std::vector<std::string> messages(2);
  const bool ran = test::run_ranks(2, "mismatch", [&](dist::ProcessGroup& group) {
    models::ModelConfig config;
    config.input_shape = data.train.sample_shape();
    config.num_classes = data.train.num_classes;
    config.hidden = {group.rank() == 0 ? 16 : 17};
    auto model = models::build_model(config);
    dist::DataParallel ddp(group, {});
    try {
      ddp.start(*model);
    } catch (const Error& e) {
      messages[group.rank()] = e.what();
    }
  });
  if (!ran) GTEST_SKIP() << "no process group on this machine";
  for (const auto& m : messages) EXPECT_NE(m.find("different model structure"), std::string::npos);
}

TEST(DataParallel, StartMakesParametersAndBuffersOfEveryTypeIdentical) {
  metrics::install_memory_tracker();
  models::ModelConfig config;
  config.arch = "resnet";
  config.depth = 8;
  config.input_shape = {3, 8, 8};
  config.num_classes = 4;
  std::vector<models::StagedModel> models;
  for (int r = 0; r < 2; ++r) {
    torch::manual_seed(50 + r);
    models.push_back(models::build_model(config));
    torch::NoGradGuard no_grad;
    for (auto& b : models.back()->buffers()) b.fill_(r + 1);  // e.g. int64 num_batches_tracked
  }
  const bool ran = test::run_ranks(2, "buffers", [&](dist::ProcessGroup& group) {
    dist::DataParallel ddp(group, {});
    ddp.start(*models[group.rank()]);
  });
  if (!ran) GTEST_SKIP() << "no process group on this machine";
  const auto a = models[0]->named_buffers();
  const auto b = models[1]->named_buffers();
  for (const auto& item : a) EXPECT_TRUE(torch::equal(item.value(), b[item.key()])) << item.key();
  EXPECT_EQ(dist::state_checksum(*models[0]), dist::state_checksum(*models[1]));
}
