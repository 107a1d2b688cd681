// A whole SDP run in-process (sdp/sdp_run): the workers are threads meeting through a FileStore,
// as in the dist tests, each calling run_sdp as a worker process of `tessera train --dist sdp`
// would.
#include "tessera/sdp/sdp_run.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <mutex>
#include <sstream>

#include "../dist/rank_threads.h"
#include "../test_support.h"
#include "tessera/dist/ddp_run.h"
#include "tessera/metrics/memory_tracker.h"
#include "tessera/models/staged_model.h"
#include "tessera/train/checkpoint.h"

using namespace tessera;

namespace {

using tessera::testing::synthetic_8x8;

models::ModelConfig run_mlp() {
  models::ModelConfig config;
  config.input_shape = {1, 8, 8};
  config.num_classes = 10;
  config.hidden = {32, 32, 32};
  return tessera::testing::resolved(config);
}

train::TrainConfig run_train_config(int64_t epochs) {
  train::TrainConfig config;
  config.epochs = epochs;
  config.batch_size = 50;
  config.seed = 5;
  config.optimizer.name = "adam";
  config.optimizer.lr = 2e-3;
  config.quiet = true;
  return config;
}

sdp::SdpSetup run_setup(double coverage) {
  sdp::SdpSetup setup;
  setup.model = run_mlp();
  setup.train = run_train_config(2);
  setup.level = sdp::Level::Neuron;
  setup.coverage = coverage;
  setup.bn_batches = 0;
  return setup;
}

// Runs `setup` on `world` worker threads (rank 0 writing to `run_dir` if given) and returns every
// rank's result. Skips the test if the threads cannot form a group.
#define RUN_SDP_OR_SKIP(results, world, name, setup, run_dir) \
  std::vector<dist::RunResult> results;                       \
  if (!run_workers(world, name, setup, run_dir, results))     \
    GTEST_SKIP() << "no process group between threads on this machine";

bool run_workers(int64_t world, const std::string& name, const sdp::SdpSetup& setup,
                 const std::string& run_dir, std::vector<dist::RunResult>& results) {
  static const data::TrainTest data = synthetic_8x8();
  metrics::install_memory_tracker();
  results.assign(static_cast<size_t>(world), {});
  std::unique_ptr<train::RunDirectory> run;
  if (!run_dir.empty()) run = std::make_unique<train::RunDirectory>(run_dir, false);
  return test::run_ranks(
      world, name,
      [&](dist::ProcessGroup& group) {
        sdp::SdpSetup mine = setup;
        mine.run = group.rank() == 0 ? run.get() : nullptr;
        results[static_cast<size_t>(group.rank())] = sdp::run_sdp(mine, group, data);
      },
      120);
}

// The test accuracy of the checkpoint rank 0 saved, evaluated on its own.
double checkpoint_accuracy(const std::string& run_dir, const models::ModelConfig& model) {
  models::StagedModel loaded = models::build_model(model);
  train::load_checkpoint(run_dir + "/checkpoint.pt", *loaded, nullptr);
  train::Trainer evaluator(loaded, std::make_shared<train::Classification>(), run_train_config(1),
                           nullptr);
  return evaluator.evaluate(synthetic_8x8().test).accuracy;
}

TEST(SdpRun, OnePlanTrainsSubnetworksAndSavesTheAssembledModel) {
  const std::string dir = tessera::testing::fresh_dir("sdp_run_one_plan");
  const sdp::SdpSetup setup = run_setup(0.5);
  RUN_SDP_OR_SKIP(results, 4, "sdp_one_plan", setup, dir);
  const nlohmann::json& details = results[0].details;
  EXPECT_EQ(details.at("holders_per_unit"), 2);
  EXPECT_EQ(details.at("level"), "neuron");
  EXPECT_FALSE(details.contains("redraw"));
  // Each worker holds half of every hidden layer: fewer parameters than the full model.
  EXPECT_LT(details.at("worker_parameters").get<int64_t>(),
            details.at("full_parameters").get<int64_t>());
  for (const auto& r : results) {
    EXPECT_EQ(r.summary.steps, results[0].summary.steps);
    EXPECT_GT(r.step_comm_bytes, 0);
    EXPECT_GE(r.summary.comm_bytes, r.step_comm_bytes);  // + the assembly's messages
    EXPECT_GT(r.summary.peak_tensor_bytes, 0);
  }
  // 10 classes: chance is 0.1. (Forward masking's assembled model learns slowly: 0.31 here.)
  EXPECT_GT(results[0].summary.test.accuracy, 0.2);
  // The checkpoint is the assembled model the summary's figures are of.
  EXPECT_DOUBLE_EQ(checkpoint_accuracy(dir, setup.model), results[0].summary.test.accuracy);
  EXPECT_TRUE(std::filesystem::exists(dir + "/sdp_plan.json"));
}

TEST(SdpRun, TwoWorkersHoldingEverythingAndAveragingGradientsAreDataParallelTraining) {
  sdp::SdpSetup setup = run_setup(1.0);
  setup.sync = sdp::SyncMode::Grads;
  RUN_SDP_OR_SKIP(sdp_results, 2, "sdp_is_ddp", setup, "");
  std::vector<dist::RunResult> ddp(2);
  ASSERT_TRUE(test::run_ranks(2, "sdp_is_ddp_reference", [&](dist::ProcessGroup& group) {
    static const data::TrainTest data = synthetic_8x8();
    dist::DdpSetup reference{setup.model, setup.train, {}, {}, nullptr};
    ddp[static_cast<size_t>(group.rank())] = dist::run_ddp(reference, group, data);
  }));
  // The same up to the order of floating-point sums (at most one of 500 test samples apart).
  EXPECT_NEAR(sdp_results[0].summary.test.loss, ddp[0].summary.test.loss, 1e-4);
  EXPECT_NEAR(sdp_results[0].summary.test.accuracy, ddp[0].summary.test.accuracy, 0.0021);
  EXPECT_GT(sdp_results[0].summary.test.accuracy, 0.5);
}

TEST(SdpRun, RedrawsMoveEveryWorkerToNewPlansAndCountTheChanges) {
  const std::string dir = tessera::testing::fresh_dir("sdp_run_redraw");
  sdp::SdpSetup by_steps = run_setup(0.5);
  by_steps.redraw_steps = 10;  // 2000 / 4 workers / 50 = 10 steps per epoch
  RUN_SDP_OR_SKIP(steps, 4, "sdp_redraw_steps", by_steps, dir);
  const nlohmann::json& redraw = steps[0].details.at("redraw");
  EXPECT_EQ(redraw.at("every_steps"), 10);
  EXPECT_EQ(redraw.at("redraws"), 1);  // after step 10 of 20 (none after the last step)
  EXPECT_GT(redraw.at("comm_bytes").get<int64_t>(), 0);
  EXPECT_GT(redraw.at("received_entries").get<int64_t>(), 0);
  EXPECT_GT(redraw.at("peak_tensor_bytes").get<int64_t>(), 0);
  EXPECT_TRUE(std::filesystem::exists(dir + "/sdp_plan_step10.json"));
  EXPECT_DOUBLE_EQ(checkpoint_accuracy(dir, by_steps.model), steps[0].summary.test.accuracy);

  // A period of one epoch's steps is the same run, bit for bit, as a redraw every epoch.
  sdp::SdpSetup by_epochs = run_setup(0.5);
  by_epochs.redraw_epochs = 1;
  RUN_SDP_OR_SKIP(epochs, 4, "sdp_redraw_epochs", by_epochs, "");
  EXPECT_EQ(epochs[0].details.at("redraw").at("redraws"), 1);
  EXPECT_EQ(epochs[0].summary.test.loss, steps[0].summary.test.loss);
  EXPECT_EQ(epochs[0].step_comm_bytes, steps[0].step_comm_bytes);
  EXPECT_EQ(epochs[0].summary.train_flops, steps[0].summary.train_flops);

  // Without the redraw the run is a different one: the change did move units.
  RUN_SDP_OR_SKIP(fixed, 4, "sdp_no_redraw", run_setup(0.5), "");
  EXPECT_NE(fixed[0].summary.test.loss, steps[0].summary.test.loss);
  EXPECT_LT(fixed[0].step_comm_bytes, steps[0].step_comm_bytes);
}

TEST(SdpRun, BackwardMaskingTrainsHeldUnitsOfTheFullModelAndRefreshesTheRest) {
  const std::string dir = tessera::testing::fresh_dir("sdp_run_backward");
  sdp::SdpSetup setup = run_setup(0.5);
  setup.masking = sdp::Masking::Backward;
  RUN_SDP_OR_SKIP(results, 4, "sdp_backward", setup, dir);
  const nlohmann::json& details = results[0].details;
  EXPECT_EQ(details.at("masking"), "backward");
  // Every worker runs the full model, but trains only about half of its hidden units.
  EXPECT_EQ(details.at("worker_parameters"), details.at("full_parameters"));
  EXPECT_LT(details.at("trained_parameters").get<int64_t>(),
            details.at("worker_parameters").get<int64_t>());
  for (const auto& r : results) EXPECT_GT(r.details.at("refresh_comm_bytes").get<int64_t>(), 0);
  EXPECT_GT(results[0].summary.test.accuracy, 0.5);
  EXPECT_DOUBLE_EQ(checkpoint_accuracy(dir, setup.model), results[0].summary.test.accuracy);
}

// Every tensor of the two checkpoints' models is the same, bit for bit.
void expect_same_checkpoints(const std::string& a, const std::string& b,
                             const models::ModelConfig& model) {
  models::StagedModel first = models::build_model(model);
  models::StagedModel second = models::build_model(model);
  train::load_checkpoint(a + "/checkpoint.pt", *first, nullptr);
  train::load_checkpoint(b + "/checkpoint.pt", *second, nullptr);
  auto theirs = second->named_parameters();
  for (const auto& item : first->named_parameters())
    EXPECT_TRUE(torch::equal(item.value(), theirs[item.key()])) << item.key();
}

// Evaluations during training only read the workers' models: the run ends with the model of a
// run without them, and its history holds the full model's figures on the run's clock, the last
// of them the final model's.
void expect_evaluations_leave_training_unchanged(sdp::SdpSetup setup, const std::string& name) {
  setup.train.evals_per_epoch = 3;  // 10 steps per epoch: after steps 3, 6 and 10
  const std::string plain_dir = tessera::testing::fresh_dir(name + "_plain");
  const std::string evaluated_dir = tessera::testing::fresh_dir(name + "_evaluated");
  setup.evaluate_during_training = false;
  RUN_SDP_OR_SKIP(plain, 4, name + "_plain", setup, plain_dir);
  setup.evaluate_during_training = true;
  RUN_SDP_OR_SKIP(evaluated, 4, name + "_evaluated", setup, evaluated_dir);

  EXPECT_TRUE(plain[0].summary.history.empty());
  EXPECT_EQ(evaluated[0].summary.test.loss, plain[0].summary.test.loss);
  expect_same_checkpoints(plain_dir, evaluated_dir, setup.model);

  const std::vector<train::EvalPoint>& history = evaluated[0].summary.history;
  ASSERT_EQ(history.size(), 6u);
  EXPECT_DOUBLE_EQ(history[0].epoch, 0.3);
  EXPECT_DOUBLE_EQ(history.back().epoch, 2.0);
  EXPECT_DOUBLE_EQ(history.back().test.accuracy, evaluated[0].summary.test.accuracy);
  EXPECT_DOUBLE_EQ(history.back().test.loss, evaluated[0].summary.test.loss);
  EXPECT_EQ(history.back().test.samples, 500);
  for (size_t k = 1; k < history.size(); ++k) {
    EXPECT_GT(history[k].train_samples, history[k - 1].train_samples);
    EXPECT_GT(history[k].elapsed_seconds, history[k - 1].elapsed_seconds);
    // Each evaluation's time is counted once the next point comes.
    EXPECT_GT(history[k].evaluation_seconds, history[k - 1].evaluation_seconds);
    EXPECT_LT(history[k].evaluation_seconds, history[k].elapsed_seconds);
  }
  EXPECT_EQ(history[0].evaluation_seconds, 0.0);
  // The assembled model learns: better than chance (0.1) by the end. (Not asked of the ensemble:
  // after these 20 steps a worker's subnetwork alone is still near chance, 0.12.)
  if (setup.evaluation == sdp::Evaluation::Assembled) {
    EXPECT_GT(history.back().test.accuracy, 0.2);
  }
  // Every worker records rank 0's figures.
  for (const auto& r : evaluated) {
    ASSERT_EQ(r.summary.history.size(), history.size());
    for (size_t k = 0; k < history.size(); ++k)
      EXPECT_EQ(r.summary.history[k].test.loss, history[k].test.loss);
  }
  // Rank 0's metrics.jsonl: each epoch's record with the full model's test figures then.
  std::istringstream lines(tessera::testing::file_contents(evaluated_dir + "/metrics.jsonl"));
  std::vector<double> epoch_accuracies;
  for (std::string line; std::getline(lines, line);) {
    const nlohmann::json record = nlohmann::json::parse(line);
    if (record.at("type") == "epoch") {
      epoch_accuracies.push_back(record.at("test_accuracy").get<double>());
      EXPECT_TRUE(record.contains("elapsed_seconds"));
    }
  }
  EXPECT_EQ(epoch_accuracies,
            (std::vector<double>{history[2].test.accuracy, history[5].test.accuracy}));
}

TEST(SdpRun, EvaluationsDuringTrainingOfTheAssembledModelChangeNothing) {
  sdp::SdpSetup setup = run_setup(0.5);
  setup.redraw_epochs = 1;  // an evaluation right after a plan change, too
  expect_evaluations_leave_training_unchanged(setup, "sdp_evals_forward");
}

TEST(SdpRun, EvaluationsDuringTrainingOfTheBackwardMaskedModelChangeNothing) {
  sdp::SdpSetup setup = run_setup(0.5);
  setup.masking = sdp::Masking::Backward;
  expect_evaluations_leave_training_unchanged(setup, "sdp_evals_backward");
}

TEST(SdpRun, EvaluationsDuringTrainingOfTheSubnetEnsembleChangeNothing) {
  sdp::SdpSetup setup = run_setup(0.5);
  setup.redraw_epochs = 1;
  setup.evaluation = sdp::Evaluation::Ensemble;
  expect_evaluations_leave_training_unchanged(setup, "sdp_evals_ensemble");
}

// Under --sdp-eval ensemble the run's figures are the workers' subnetworks' together; the saved
// checkpoint is still the assembled model, whose figures are recorded beside.
TEST(SdpRun, TheEnsembleIsTheRunsResultAndTheAssembledModelIsSavedBeside) {
  const std::string dir = tessera::testing::fresh_dir("sdp_run_ensemble");
  sdp::SdpSetup setup = run_setup(0.5);
  setup.evaluation = sdp::Evaluation::Ensemble;
  RUN_SDP_OR_SKIP(results, 4, "sdp_ensemble", setup, dir);
  const nlohmann::json& details = results[0].details;
  EXPECT_EQ(details.at("evaluation"), "ensemble");
  EXPECT_DOUBLE_EQ(details.at("subnet_ensemble_test_accuracy").get<double>(),
                   results[0].summary.test.accuracy);
  EXPECT_DOUBLE_EQ(details.at("subnet_ensemble_test_loss").get<double>(),
                   results[0].summary.test.loss);
  EXPECT_DOUBLE_EQ(checkpoint_accuracy(dir, setup.model),
                   details.at("assembled_test_accuracy").get<double>());
  // Different subnetworks: the ensemble is not the assembled model.
  EXPECT_NE(details.at("assembled_test_loss").get<double>(), results[0].summary.test.loss);
}

// Workers that all hold the whole model and average gradients end equal: their ensemble is the
// model itself, which the assembly rebuilds (coverage 1 scales nothing).
TEST(SdpRun, AnEnsembleOfEqualWorkersIsTheAssembledModel) {
  sdp::SdpSetup setup = run_setup(1.0);
  setup.sync = sdp::SyncMode::Grads;
  setup.evaluation = sdp::Evaluation::Ensemble;
  RUN_SDP_OR_SKIP(results, 2, "sdp_ensemble_equal", setup, "");
  const nlohmann::json& details = results[0].details;
  EXPECT_NEAR(results[0].summary.test.loss, details.at("assembled_test_loss").get<double>(), 1e-5);
  EXPECT_DOUBLE_EQ(results[0].summary.test.accuracy,
                   details.at("assembled_test_accuracy").get<double>());
}

TEST(SdpRun, RefusesSettingsThatExcludeEachOther) {
  sdp::SdpSetup setup = run_setup(0.5);
  setup.masking = sdp::Masking::Backward;
  setup.redraw_steps = 5;
  EXPECT_THROW(sdp::validate(setup), UsageError);
  setup.redraw_steps = 0;
  setup.rescale = true;
  EXPECT_THROW(sdp::validate(setup), UsageError);
  setup.masking = sdp::Masking::Forward;
  EXPECT_NO_THROW(sdp::validate(setup));
  setup.redraw_steps = 5;
  setup.redraw_epochs = 1;
  EXPECT_THROW(sdp::validate(setup), UsageError);
  EXPECT_EQ(sdp::parse_masking("backward"), sdp::Masking::Backward);
  EXPECT_THROW(sdp::parse_masking("sideways"), UsageError);
  setup = run_setup(0.5);
  setup.masking = sdp::Masking::Backward;
  setup.evaluation = sdp::Evaluation::Ensemble;
  EXPECT_THROW(sdp::validate(setup), UsageError);
  EXPECT_EQ(sdp::parse_evaluation("ensemble"), sdp::Evaluation::Ensemble);
  EXPECT_THROW(sdp::parse_evaluation("vote"), UsageError);
}

}  // namespace
