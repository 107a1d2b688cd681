// Time to accuracy: every evaluation of a run records elapsed_seconds, a resumed run's clock goes
// on from its checkpoint, and seconds_to_target reads the first time a target was reached.
#include <gtest/gtest.h>

#include <filesystem>

#include "../test_support.h"
#include "tessera/core/error.h"
#include "tessera/train/time_to_target.h"

namespace {

using tessera::testing::fresh_dir;
using tessera::testing::mlp_6x6;
using tessera::testing::sgd_config;
using tessera::testing::synthetic_6x6;
using namespace tessera;

std::vector<train::EvalPoint> three_points() {
  std::vector<train::EvalPoint> history(3);
  const double accuracy[] = {0.5, 0.8, 0.7};
  const double loss[] = {1.5, 0.6, 0.4};
  for (size_t i = 0; i < 3; ++i) {
    history[i].epoch = static_cast<double>(i + 1);
    history[i].test.accuracy = accuracy[i];
    history[i].test.loss = loss[i];
    history[i].elapsed_seconds = 10.0 * static_cast<double>(i + 1);
  }
  return history;
}

}  // namespace

TEST(TimeToTarget, FirstEvaluationThatReachesTheTarget) {
  using Kind = train::Target::Kind;
  const auto history = three_points();
  EXPECT_EQ(train::seconds_to_target(history, {Kind::Accuracy, 0.5}), 10.0);  // at or above
  EXPECT_EQ(train::seconds_to_target(history, {Kind::Accuracy, 0.75}), 20.0);
  EXPECT_EQ(train::seconds_to_target(history, {Kind::Accuracy, 0.9}), -1.0);
  EXPECT_EQ(train::seconds_to_target(history, {Kind::Loss, 0.6}), 20.0);  // at or below
  EXPECT_EQ(train::seconds_to_target(history, {Kind::Loss, 0.45}), 30.0);
  EXPECT_EQ(train::seconds_to_target(history, {Kind::Loss, 0.1}), -1.0);
  EXPECT_EQ(train::seconds_to_target(std::vector<train::EvalPoint>{}, {Kind::Loss, 9.0}), -1.0);
  // The same from summary.json's history.
  const nlohmann::json json = train::history_json(history);
  EXPECT_EQ(train::seconds_to_target(json, {Kind::Accuracy, 0.75}), 20.0);
  EXPECT_EQ(train::seconds_to_target(json, {Kind::Loss, 0.45}), 30.0);
  nlohmann::json old = json;
  old[0].erase("elapsed_seconds");
  EXPECT_THROW(train::seconds_to_target(old, {Kind::Accuracy, 0.75}), Error);
  EXPECT_THROW(train::seconds_to_target(nlohmann::json::object(), {Kind::Accuracy, 0.5}), Error);
}

TEST(TimeToTarget, EvaluationsRecordElapsedSecondsAndAResumedRunContinuesTheClock) {
  const data::TrainTest data = synthetic_6x6(256);
  const std::string dir = fresh_dir("train_time_to_target");
  train::TrainConfig config = sgd_config(32, 0, 1);
  config.epochs = 3;
  config.evals_per_epoch = 2;
  std::vector<train::EvalPoint> first_part;
  {
    train::RunDirectory run(dir, false);
    torch::manual_seed(config.seed);
    train::Trainer trainer(models::build_model(mlp_6x6()),
                           std::make_shared<train::Classification>(), config, &run);
    first_part = trainer.fit(data.train, &data.test, /*until_epoch=*/2).history;
  }
  ASSERT_EQ(first_part.size(), 4u);
  for (size_t i = 0; i < first_part.size(); ++i) {
    EXPECT_GT(first_part[i].elapsed_seconds, 0.0);
    if (i > 0) {
      EXPECT_GT(first_part[i].elapsed_seconds, first_part[i - 1].elapsed_seconds);
    }
  }
  // A later "process": its clock starts from the checkpoint's elapsed time, not from zero.
  train::RunDirectory run(dir, true);
  train::Trainer trainer(models::build_model(mlp_6x6()), std::make_shared<train::Classification>(),
                         config, &run);
  trainer.set_run_clock(metrics::RunClock());
  ASSERT_EQ(trainer.resume(), 2);
  const auto history = trainer.fit(data.train, &data.test).history;
  ASSERT_EQ(history.size(), 6u);  // the whole run's evaluations
  for (size_t i = 0; i < first_part.size(); ++i)
    EXPECT_EQ(history[i].elapsed_seconds, first_part[i].elapsed_seconds);
  EXPECT_GT(history[4].elapsed_seconds, first_part.back().elapsed_seconds);
  // metrics.jsonl's epoch records carry it too.
  std::ifstream metrics(dir + "/metrics.jsonl");
  int epochs = 0;
  for (std::string line; std::getline(metrics, line);) {
    const auto record = nlohmann::json::parse(line);
    if (record.at("type") != "epoch") continue;
    ++epochs;
    EXPECT_GT(record.at("elapsed_seconds").get<double>(), 0.0) << line;
  }
  EXPECT_EQ(epochs, 3);
  std::filesystem::remove_all(dir);
}
