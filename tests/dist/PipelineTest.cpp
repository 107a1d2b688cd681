#include <gtest/gtest.h>

#include <mutex>

#include "rank_threads.h"
#include "tessera/core/error.h"
#include "tessera/data/load.h"
#include "tessera/dist/pipeline.h"
#include "tessera/metrics/memory_tracker.h"
#include "tessera/models/staged_model.h"
#include "tessera/train/trainer.h"

using namespace tessera;

namespace {

data::TrainTest synthetic_data() {
  data::DataConfig config;
  config.name = "synthetic";
  config.synthetic_train = 200;  // not a multiple of the batch: the last batch is partial
  config.synthetic_test = 50;
  config.synthetic_classes = 4;
  config.synthetic_shape = {1, 6, 6};
  config.synthetic_seed = 9;
  return data::load_dataset(config);
}

models::ModelConfig mlp_config(const data::Dataset& data) {
  models::ModelConfig config;
  config.input_shape = data.sample_shape();
  config.num_classes = data.num_classes;
  config.hidden = {32, 24, 16};  // four stages
  return config;
}

train::TrainConfig sgd_config() {
  train::TrainConfig config;
  config.epochs = 2;
  config.batch_size = 32;
  config.eval_batch_size = 20;
  config.seed = 4;
  config.optimizer.name = "sgd";
  config.optimizer.lr = 0.05;
  config.optimizer.momentum = 0.9;
  config.clip_grad_norm = 1.0;  // the norm must be taken over the whole model, across ranks
  config.quiet = true;
  return config;
}

}  // namespace

TEST(SplitStages, BalancesFlopsAndGivesEveryRankAStage) {
  models::ModelConfig config;
  config.input_shape = {1, 28, 28};
  config.hidden = {1024, 1024, 1024, 1024, 1024};  // six stages, the first 784 wide
  const auto two = dist::split_stages(config, 2);
  ASSERT_EQ(two.size(), 2u);
  EXPECT_EQ(two[0].first, 0);
  EXPECT_EQ(two[0].second, two[1].first);
  EXPECT_EQ(two[1].second, 6);
  EXPECT_EQ(two[0].second, 3);  // 784k + 1M + 1M against 1M + 1M + 10k
  const auto six = dist::split_stages(config, 6);
  for (int64_t r = 0; r < 6; ++r) EXPECT_EQ(six[r], std::make_pair(r, r + 1));
  EXPECT_THROW(dist::split_stages(config, 7), UsageError);
}

class PipelineEquivalence : public ::testing::TestWithParam<std::pair<int64_t, int64_t>> {};

TEST_P(PipelineEquivalence, EqualsSingleWorkerTrainingOnTheSameBatches) {
  metrics::install_memory_tracker();
  const int64_t world = GetParam().first;  // (a lambda cannot capture structured bindings)
  const int64_t micro_batches = GetParam().second;
  const auto data = synthetic_data();
  const models::ModelConfig config = mlp_config(data.train);
  torch::manual_seed(sgd_config().seed);
  auto single_model = models::build_model(config);
  train::Trainer single(single_model, std::make_shared<train::Classification>(), sgd_config(),
                        nullptr);
  const train::TrainSummary expected = single.fit(data.train, &data.test);
  auto expected_parameters = single_model->named_parameters();

  std::mutex seeding;  // the constructor seeds torch's global generator
  std::vector<train::TrainSummary> summaries(world);
  const bool ran = test::run_ranks(world, "pipeline", [&](dist::ProcessGroup& group) {
    std::unique_ptr<dist::PipelineTrainer> pipeline;
    {
      std::lock_guard<std::mutex> lock(seeding);
      pipeline = std::make_unique<dist::PipelineTrainer>(group, config,
                                                         std::make_shared<train::Classification>(),
                                                         sgd_config(), micro_batches, nullptr);
    }
    summaries[group.rank()] = pipeline->fit(data.train, &data.test);
    for (const auto& item : pipeline->partition()->named_parameters())
      EXPECT_TRUE(torch::allclose(item.value(), expected_parameters[item.key()], 1e-4, 1e-5))
          << "rank " << group.rank() << " " << item.key();
    models::StagedModel full = pipeline->gather_full_model();
    if (group.rank() == 0) {
      ASSERT_TRUE(full);
      for (const auto& item : full->named_parameters())
        EXPECT_TRUE(torch::allclose(item.value(), expected_parameters[item.key()], 1e-4, 1e-5))
            << "gathered " << item.key();
    }
  });
  if (!ran) GTEST_SKIP() << "no process group on this machine";
  for (int64_t r = 0; r < world; ++r) {
    EXPECT_EQ(summaries[r].steps, expected.steps);
    EXPECT_NEAR(summaries[r].last_train.loss, expected.last_train.loss, 1e-5);
    EXPECT_NEAR(summaries[r].test.loss, expected.test.loss, 1e-5);
    EXPECT_DOUBLE_EQ(summaries[r].test.accuracy, expected.test.accuracy);
  }
}

INSTANTIATE_TEST_SUITE_P(RanksAndMicroBatches, PipelineEquivalence,
                         ::testing::Values(std::make_pair(2, 1), std::make_pair(2, 3),
                                           std::make_pair(4, 4)));

// --evals-per-epoch: the pipeline evaluates where the Trainer does (the same epochs and samples,
// the same figures), each point on the run's clock, and the evaluations change no weight.
TEST(PipelineHistory, EvaluatesWhereTheTrainerDoesDuringEpochs) {
  metrics::install_memory_tracker();
  const auto data = synthetic_data();
  const models::ModelConfig config = mlp_config(data.train);
  train::TrainConfig settings = sgd_config();
  settings.evals_per_epoch = 3;  // 7 steps per epoch: after steps 2, 4 and 7
  torch::manual_seed(settings.seed);
  auto single_model = models::build_model(config);
  train::Trainer single(single_model, std::make_shared<train::Classification>(), settings, nullptr);
  const train::TrainSummary expected = single.fit(data.train, &data.test);
  ASSERT_EQ(expected.history.size(), 6u);
  auto expected_parameters = single_model->named_parameters();

  std::mutex seeding;  // the constructor seeds torch's global generator
  std::vector<train::TrainSummary> summaries(2);
  const bool ran = test::run_ranks(2, "pipeline_history", [&](dist::ProcessGroup& group) {
    std::unique_ptr<dist::PipelineTrainer> pipeline;
    {
      std::lock_guard<std::mutex> lock(seeding);
      pipeline = std::make_unique<dist::PipelineTrainer>(
          group, config, std::make_shared<train::Classification>(), settings, 2, nullptr);
    }
    summaries[group.rank()] = pipeline->fit(data.train, &data.test);
    for (const auto& item : pipeline->partition()->named_parameters())
      EXPECT_TRUE(torch::allclose(item.value(), expected_parameters[item.key()], 1e-4, 1e-5))
          << "rank " << group.rank() << " " << item.key();
  });
  if (!ran) GTEST_SKIP() << "no process group on this machine";
  for (const auto& summary : summaries) {
    ASSERT_EQ(summary.history.size(), expected.history.size());
    for (size_t k = 0; k < expected.history.size(); ++k) {
      const train::EvalPoint& got = summary.history[k];
      EXPECT_DOUBLE_EQ(got.epoch, expected.history[k].epoch);
      EXPECT_EQ(got.train_samples, expected.history[k].train_samples);
      EXPECT_NEAR(got.test.loss, expected.history[k].test.loss, 1e-5);
      if (k > 0) {
        EXPECT_GT(got.elapsed_seconds, summary.history[k - 1].elapsed_seconds);
        EXPECT_GT(got.evaluation_seconds, summary.history[k - 1].evaluation_seconds);
      }
    }
    EXPECT_NEAR(summary.test.loss, expected.test.loss, 1e-5);
  }
}
