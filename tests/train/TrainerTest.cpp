#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "../test_support.h"
#include "tessera/core/error.h"
#include "tessera/data/load.h"
#include "tessera/metrics/measurement_scope.h"
#include "tessera/metrics/memory_tracker.h"
#include "tessera/models/staged_model.h"
#include "tessera/train/checkpoint.h"
#include "tessera/train/trainer.h"

using namespace tessera;

namespace {

using tessera::testing::fresh_dir;
using tessera::testing::synthetic_8x8;

models::StagedModel small_mlp(const data::Dataset& data, uint64_t seed, double dropout = 0) {
  models::ModelConfig config;
  config.input_shape = data.sample_shape();
  config.num_classes = data.num_classes;
  config.hidden = {64, 64};
  config.dropout = dropout;
  torch::manual_seed(seed);
  return models::build_model(config);
}

train::TrainConfig quick_config(int64_t epochs) {
  train::TrainConfig config;
  config.epochs = epochs;
  config.batch_size = 64;
  config.seed = 3;
  config.quiet = true;
  return config;
}

}  // namespace

TEST(Trainer, LearnsTheSyntheticSet) {
  const auto data = synthetic_8x8();
  auto model = small_mlp(data.train, 1);
  train::Trainer trainer(model, std::make_shared<train::Classification>(), quick_config(5),
                         nullptr);
  const double before = trainer.evaluate(data.test).accuracy;
  const train::TrainSummary summary = trainer.fit(data.train, &data.test);
  EXPECT_LT(before, 0.5);
  EXPECT_GE(summary.test.accuracy, 0.95);
  EXPECT_EQ(summary.train_samples, 5 * 2000);
  EXPECT_EQ(summary.steps, 5 * 32);  // ceil(2000 / 64) = 32 batches per epoch
  EXPECT_EQ(summary.train_flops, 3 * model->forward_flops() * 5 * 2000);
}

// The gradients are dropped before each backward rather than zeroed (backward then hands over the
// new ones without an addition); a trained tensor backward does not reach still gets a zero
// gradient, as with zeroing.
TEST(Trainer, ATrainedTensorBackwardDoesNotReachGetsAZeroGradient) {
  const auto data = synthetic_8x8();
  auto model = small_mlp(data.train, 1);
  train::Trainer trainer(model, std::make_shared<train::Classification>(), quick_config(1),
                         nullptr);
  const torch::Tensor unreached = torch::ones({3}).requires_grad_();
  std::vector<torch::Tensor> trained = model->parameters();
  trained.push_back(unreached);
  trainer.set_trained_parameters(trained);
  trainer.fit(data.train, nullptr);
  ASSERT_TRUE(unreached.grad().defined());
  EXPECT_TRUE(torch::equal(unreached.grad(), torch::zeros({3})));
  EXPECT_TRUE(torch::equal(unreached, torch::ones({3})));  // Adam moves nothing on zero gradients
  for (const auto& p : model->parameters()) {
    ASSERT_TRUE(p.grad().defined());
    EXPECT_GT(p.grad().abs().sum().item<double>(), 0);
  }
}

TEST(Trainer, MeasuresTrainingStateMemory) {
  metrics::install_memory_tracker();
  const auto data = synthetic_8x8();
  auto model = small_mlp(data.train, 1);
  train::Trainer trainer(model, std::make_shared<train::Classification>(), quick_config(1),
                         nullptr);
  const train::TrainSummary summary = trainer.fit(data.train, nullptr);
  EXPECT_EQ(summary.param_bytes, models::parameter_bytes(*model));
  EXPECT_EQ(summary.grad_bytes, summary.param_bytes);
  EXPECT_EQ(summary.optimizer_state_bytes, 2 * summary.param_bytes);  // Adam's two moments
  // Parameters, gradients and moments are all live at the end of a step, plus activations.
  EXPECT_GT(summary.peak_tensor_bytes, 4 * summary.param_bytes);
  // ...but not the data set, which was loaded before training started.
  EXPECT_LT(summary.peak_tensor_bytes, data.train.inputs.numel() * 4 + 4 * summary.param_bytes);
  EXPECT_GT(summary.peak_rss_bytes, 0);
  EXPECT_EQ(summary.comm_bytes, 0);
}

// The after-step callback sees every step in order, with the run's total and the samples so far;
// a peak it measures by resetting the counter does not hide the training peak before it.
TEST(Trainer, AfterStepSeesEveryStepAndItsPeakResetsDoNotHideTraining) {
  metrics::install_memory_tracker();
  const auto data = synthetic_8x8();
  train::Trainer reference(small_mlp(data.train, 1), std::make_shared<train::Classification>(),
                           quick_config(2), nullptr);
  const int64_t training_peak = reference.fit(data.train, nullptr).peak_tensor_bytes;

  train::Trainer trainer(small_mlp(data.train, 1), std::make_shared<train::Classification>(),
                         quick_config(2), nullptr);
  std::vector<train::StepPoint> seen;
  trainer.after_step([&](const train::StepPoint& at) {
    seen.push_back(at);
    const metrics::MeasurementScope inner;  // restarts the peak counter
  });
  const train::TrainSummary summary = trainer.fit(data.train, nullptr);
  ASSERT_EQ(seen.size(), 64u);  // 2 epochs of ceil(2000 / 64) = 32 steps
  for (size_t i = 0; i < seen.size(); ++i) {
    EXPECT_EQ(seen[i].step, static_cast<int64_t>(i) + 1);
    EXPECT_EQ(seen[i].total_steps, 64);
  }
  EXPECT_EQ(seen[31].train_samples, 2000);  // the first epoch's last step
  EXPECT_EQ(seen[32].train_samples, 2064);
  EXPECT_EQ(seen.back().train_samples, 4000);
  EXPECT_EQ(summary.peak_tensor_bytes, training_peak);
}

// Evaluations during fit are measured apart: an evaluation in one batch of the whole training set
// peaks far above training in batches of 64, and the training peak is the one a run without
// evaluations reaches.
TEST(Trainer, SeparatesTheEvaluationPeakFromTheTrainingPeak) {
  metrics::install_memory_tracker();
  const auto data = synthetic_8x8();
  train::TrainConfig config = quick_config(2);
  config.eval_batch_size = 2000;
  train::Trainer reference(small_mlp(data.train, 1), std::make_shared<train::Classification>(),
                           config, nullptr);
  const train::TrainSummary alone = reference.fit(data.train, nullptr);
  EXPECT_EQ(alone.train_peak_tensor_bytes, alone.peak_tensor_bytes);
  EXPECT_EQ(alone.eval_peak_tensor_bytes, 0);

  train::Trainer trainer(small_mlp(data.train, 1), std::make_shared<train::Classification>(),
                         config, nullptr);
  const train::TrainSummary summary = trainer.fit(data.train, &data.train);
  EXPECT_EQ(summary.train_peak_tensor_bytes, alone.train_peak_tensor_bytes);
  // 2000 x 64 hidden activations alone are 512 KB; the whole training state is about 140 KB.
  EXPECT_GT(summary.eval_peak_tensor_bytes, summary.train_peak_tensor_bytes + 500'000);
  EXPECT_EQ(summary.peak_tensor_bytes, summary.eval_peak_tensor_bytes);
  EXPECT_EQ(train::to_json(summary).at("eval_peak_tensor_bytes"), summary.eval_peak_tensor_bytes);
}

TEST(Trainer, ResumeReachesTheSameWeightsAsAnUninterruptedRun) {
  const auto data = synthetic_8x8();
  auto config = quick_config(4);
  config.optimizer.name = "sgd";
  config.optimizer.lr = 0.05;
  config.optimizer.nesterov = true;
  config.schedule.name = "cosine";
  config.schedule.warmup_steps = 10;
  config.augmentation.horizontal_flip = true;
  config.augmentation.crop_padding = 1;

  train::RunDirectory straight_dir(fresh_dir("trainer_straight"), false);
  auto straight = small_mlp(data.train, 5);
  train::Trainer(straight, std::make_shared<train::Classification>(), config, &straight_dir)
      .fit(data.train, nullptr);

  // The same run stopped after epoch 2 (as if killed), then resumed by a new process-like trainer
  // whose model starts from a different initialisation.
  train::RunDirectory interrupted_dir(fresh_dir("trainer_interrupted"), false);
  train::Trainer(small_mlp(data.train, 5), std::make_shared<train::Classification>(), config,
                 &interrupted_dir)
      .fit(data.train, nullptr, /*until_epoch=*/2);
  train::RunDirectory resumed_dir(interrupted_dir.path(), /*resume=*/true);
  auto resumed = small_mlp(data.train, 99);
  train::Trainer trainer(resumed, std::make_shared<train::Classification>(), config, &resumed_dir);
  EXPECT_EQ(trainer.resume(), 2);
  const auto summary = trainer.fit(data.train, nullptr);
  EXPECT_EQ(summary.epochs, 4);
  EXPECT_EQ(summary.train_samples, 4 * 2000);

  const auto expected = straight->named_parameters();
  for (const auto& item : resumed->named_parameters())
    EXPECT_TRUE(torch::equal(item.value(), *expected.find(item.key()))) << item.key();
}

TEST(Trainer, DropoutMasksComeFromTheRunsSeedAndResumeExactly) {
  const auto data = synthetic_8x8();
  const auto config_with_seed = [](uint64_t seed) {
    auto config = quick_config(2);
    config.seed = seed;
    return config;
  };
  const auto train_with_seed = [&](uint64_t seed, const std::string& dir, int64_t until_epoch) {
    train::RunDirectory run(dir, false);
    auto model = small_mlp(data.train, 5, 0.5);
    train::Trainer(model, std::make_shared<train::Classification>(), config_with_seed(seed), &run)
        .fit(data.train, nullptr, until_epoch);
    return model;
  };
  const auto same = [](models::StagedModel& a, models::StagedModel& b) {
    const auto expected = b->named_parameters();
    for (const auto& item : a->named_parameters())
      if (!torch::equal(item.value(), *expected.find(item.key()))) return false;
    return true;
  };
  auto first = train_with_seed(3, fresh_dir("trainer_dropout_a"), 0);
  auto again = train_with_seed(3, fresh_dir("trainer_dropout_b"), 0);
  auto other = train_with_seed(4, fresh_dir("trainer_dropout_c"), 0);
  EXPECT_TRUE(same(first, again));
  EXPECT_FALSE(same(first, other));  // the same initial weights; other batches and masks

  // Stopped after epoch 1 and resumed: epoch 2 draws the masks of the uninterrupted run.
  const std::string dir = fresh_dir("trainer_dropout_interrupted");
  train_with_seed(3, dir, 1);
  train::RunDirectory resumed_dir(dir, /*resume=*/true);
  auto resumed = small_mlp(data.train, 99, 0.5);
  train::Trainer trainer(resumed, std::make_shared<train::Classification>(), config_with_seed(3),
                         &resumed_dir);
  EXPECT_EQ(trainer.resume(), 1);
  trainer.fit(data.train, nullptr);
  EXPECT_TRUE(same(resumed, first));
}

TEST(Checkpoint, AFailedWriteKeepsTheLastGoodCheckpoint) {
  const auto data = synthetic_8x8();
  const std::string dir = fresh_dir("trainer_atomic");
  const std::string path = dir + "/checkpoint.pt";
  auto model = small_mlp(data.train, 1);
  train::save_checkpoint(path, *model, nullptr, {{"epoch", 1}});
  // A directory where the temporary file should go makes the next write fail, as a full disk would.
  std::filesystem::create_directories(path + ".tmp");
  EXPECT_THROW(train::save_checkpoint(path, *model, nullptr, {{"epoch", 2}}), Error);
  EXPECT_EQ(train::read_checkpoint_meta(path).at("epoch"), 1);
  auto other = small_mlp(data.train, 2);
  train::load_checkpoint(path, *other, nullptr);
  EXPECT_TRUE(torch::equal(other->parameters()[0], model->parameters()[0]));
}

TEST(Checkpoint, BadFilesGiveClearErrors) {
  const auto data = synthetic_8x8();
  const std::string dir = fresh_dir("trainer_bad");
  auto model = small_mlp(data.train, 1);
  try {
    train::load_checkpoint(dir + "/missing.pt", *model, nullptr);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("does not exist"), std::string::npos);
  }
  {
    std::ofstream garbage(dir + "/garbage.pt");
    garbage << "not a checkpoint";
  }
  EXPECT_THROW(train::load_checkpoint(dir + "/garbage.pt", *model, nullptr), Error);
  // A checkpoint of a different architecture does not load silently.
  train::save_checkpoint(dir + "/mlp.pt", *model, nullptr, {{"epoch", 1}});
  models::ModelConfig wider;
  wider.input_shape = data.train.sample_shape();
  wider.num_classes = data.train.num_classes;
  wider.hidden = {65, 64};
  auto other = models::build_model(wider);
  EXPECT_THROW(train::load_checkpoint(dir + "/mlp.pt", *other, nullptr), Error);
}
