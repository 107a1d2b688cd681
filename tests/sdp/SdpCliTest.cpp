// `tessera train --dist sdp` as a user runs it: worker processes started by `tessera launch`.
#include <gtest/gtest.h>

#include <filesystem>

#include <nlohmann/json.hpp>

#include "../command_output.h"
#include "../test_support.h"
#include "tessera/core/seeding.h"

namespace {

using Result = tessera::testing::CommandResult;
using tessera::testing::expect_eval_reproduces;
using tessera::testing::fresh_dir;
using tessera::testing::read_json;

Result launch(int workers, const std::string& args, int timeout_seconds = 180) {
  const std::string binary = TESSERA_BINARY;
  return tessera::testing::run_command("timeout -s KILL " + std::to_string(timeout_seconds) + " " +
                                       binary + " launch -n " + std::to_string(workers) + " -- " +
                                       binary + " train --dist sdp " + args + " 2>&1");
}

const std::string kData =
    "--data synthetic --synthetic-train 512 --synthetic-test 128 --synthetic-shape 1,8,8";
const std::string kResnet =
    kData + " --model resnet --depth 8 --width 0.125 --batch-size 64 --threads 1 --quiet";

}  // namespace

TEST(SdpCli, FourWorkersTrainHalfTheBranchesAndSaveTheFullModel) {
  const std::string dir = fresh_dir("sdp_cli_block");
  const auto r =
      launch(4, "--sdp-level block --coverage 0.5 --epochs 2 --run-dir " + dir + "/run " + kResnet);
  ASSERT_EQ(r.code, 0) << r.output;
  const auto summary = read_json(dir + "/run/summary.json");
  EXPECT_EQ(summary["world_size"], 4);
  EXPECT_EQ(summary["sdp"]["holders_per_unit"], 2);
  ASSERT_EQ(summary["ranks"].size(), 4u);
  for (const auto& rank : summary["ranks"]) EXPECT_GT(rank["comm_bytes"].get<int64_t>(), 0);
  EXPECT_LT(summary["sdp"]["worker_parameters"].get<int64_t>(),
            summary["sdp"]["full_parameters"].get<int64_t>());
  const auto plan = read_json(dir + "/run/sdp_plan.json");
  EXPECT_EQ(plan["subnets"].size(), 4u);
  EXPECT_EQ(plan["level"], "block");

  // The checkpoint is the assembled full model: eval reads it and finds the same accuracy.
  const std::string binary = TESSERA_BINARY;
  expect_eval_reproduces(dir + "/run/checkpoint.pt", kData, dir + "/eval.json",
                         summary["test_accuracy"].get<double>());
  // ... and a single worker trains on from it; a different network is refused by name.
  auto t = tessera::testing::run_command(binary + " train --init-from " + dir +
                                         "/run/checkpoint.pt --epochs 1 " + kResnet + " 2>&1");
  EXPECT_EQ(t.code, 0) << t.output;
  t = tessera::testing::run_command(binary + " train --init-from " + dir +
                                    "/run/checkpoint.pt --epochs 1 " + kResnet +
                                    " --width 0.25 2>&1");
  EXPECT_EQ(t.code, 1) << t.output;
  EXPECT_NE(t.output.find("checkpoint.pt"), std::string::npos) << t.output;
}

TEST(SdpCli, WorkersTrainTheirSubnetworksWithDropoutAndDropPath) {
  const std::string dir = fresh_dir("sdp_cli_regularizers");
  const auto r = launch(2,
                        "--sdp-level neuron --coverage 0.5 --epochs 1 --dropout 0.25 --drop-path "
                        "0.25 --run-dir " +
                            dir + "/run " + kResnet);
  ASSERT_EQ(r.code, 0) << r.output;
  const auto model = read_json(dir + "/run/config.json")["model"];
  EXPECT_DOUBLE_EQ(model["dropout"].get<double>(), 0.25);
  EXPECT_DOUBLE_EQ(model["drop_path"].get<double>(), 0.25);
}

// Backward masking: every worker runs the full model and keeps gradients and Adam state only for
// its half of the branches; rank 0's (refreshed) full model is the checkpoint.
TEST(SdpCli, BackwardMaskingTrainsTheFullModelAndSavesIt) {
  const std::string dir = fresh_dir("sdp_cli_backward");
  const auto r = launch(4,
                        "--sdp-level block --coverage 0.5 --sdp-masking backward --sdp-sync "
                        "grads --epochs 2 --run-dir " +
                            dir + "/run " + kResnet);
  ASSERT_EQ(r.code, 0) << r.output;
  const auto summary = read_json(dir + "/run/summary.json");
  EXPECT_EQ(summary["sdp"]["masking"], "backward");
  const int64_t full = summary["sdp"]["full_parameters"].get<int64_t>();
  EXPECT_EQ(summary["sdp"]["worker_parameters"].get<int64_t>(), full);
  const int64_t trained = summary["sdp"]["trained_parameters"].get<int64_t>();
  EXPECT_LT(trained, full);
  // Rank 0's gradients and Adam moments: float32, its held parameters only.
  EXPECT_EQ(summary["grad_bytes"].get<int64_t>(), 4 * trained);
  EXPECT_EQ(summary["optimizer_state_bytes"].get<int64_t>(), 2 * 4 * trained);
  EXPECT_GT(summary["sdp"]["refresh_comm_bytes"].get<int64_t>(), 0);
  EXPECT_TRUE(summary["sdp"].contains("worker0_own_bn_test_accuracy"));
  ASSERT_EQ(summary["ranks"].size(), 4u);
  for (const auto& rank : summary["ranks"]) EXPECT_GT(rank["comm_bytes"].get<int64_t>(), 0);

  expect_eval_reproduces(dir + "/run/checkpoint.pt", kData, dir + "/eval.json",
                         summary["test_accuracy"].get<double>());

  const auto refused = launch(2, "--sdp-masking backward --sdp-rescale --epochs 1 " + kResnet);
  EXPECT_NE(refused.code, 0);
  EXPECT_NE(refused.output.find("nothing to rescale"), std::string::npos) << refused.output;
  const auto no_factor =
      launch(2, "--sdp-masking backward --sdp-rescale-factor 0.7 --epochs 1 " + kResnet);
  EXPECT_NE(no_factor.code, 0);
  EXPECT_NE(no_factor.output.find("--sdp-rescale-factor sets the factor of --sdp-rescale"),
            std::string::npos)
      << no_factor.output;
}

// --sdp-eval ensemble: the run's figures are the workers' subnetworks' together; the checkpoint is
// still the assembled model, whose own figures summary.json keeps beside.
TEST(SdpCli, TheSubnetworksEnsembleIsTheRunsFigureAndTheAssembledModelIsSaved) {
  const std::string dir = fresh_dir("sdp_cli_ensemble");
  const auto r = launch(4,
                        "--sdp-level block --coverage 0.5 --epochs 2 --sdp-eval ensemble "
                        "--evals-per-epoch 2 --run-dir " +
                            dir + "/run " + kResnet);
  ASSERT_EQ(r.code, 0) << r.output;
  const auto summary = read_json(dir + "/run/summary.json");
  EXPECT_EQ(summary["sdp"]["evaluation"], "ensemble");
  EXPECT_EQ(summary["test_accuracy"], summary["sdp"]["subnet_ensemble_test_accuracy"]);
  EXPECT_EQ(summary["history"].size(), 4u);
  expect_eval_reproduces(dir + "/run/checkpoint.pt", kData, dir + "/eval.json",
                         summary["sdp"]["assembled_test_accuracy"].get<double>());
  // Each worker saved its subnetwork: evaluated together they give the run's figures.
  const std::string binary = TESSERA_BINARY;
  std::string members;
  for (int rank = 0; rank < 4; ++rank)
    members += " " + dir + "/run/subnet" + std::to_string(rank) + ".pt";
  const auto together =
      tessera::testing::run_command(binary + " eval --checkpoint" + members + " " + kData +
                                    " --output " + dir + "/ensemble.json 2>&1");
  ASSERT_EQ(together.code, 0) << together.output;
  const auto evaluated = read_json(dir + "/ensemble.json");
  EXPECT_EQ(evaluated["test_accuracy"], summary["test_accuracy"]);
  EXPECT_NEAR(evaluated["test_loss"].get<double>(), summary["test_loss"].get<double>(), 1e-5);
  // One of them alone is a smaller model, not the ensemble.
  const auto one = tessera::testing::run_command(binary + " eval --checkpoint " + dir +
                                                 "/run/subnet0.pt " + kData + " 2>&1");
  EXPECT_EQ(one.code, 0) << one.output;
  // Other methods have no subnetworks.
  const auto refused = tessera::testing::run_command(
      binary + " train --sdp-eval ensemble --epochs 1 " + kResnet + " 2>&1");
  EXPECT_NE(refused.code, 0);
  EXPECT_NE(refused.output.find("--sdp-eval ensemble is for --dist sdp"), std::string::npos)
      << refused.output;
}

// Redrawn plans: every epoch the workers move to a new plan, receiving the branches they now
// hold from an old holder; the run ends with an ordinary checkpoint of the assembled model.
TEST(SdpCli, RedrawnPlansMoveBranchesBetweenWorkersEveryEpoch) {
  const std::string dir = fresh_dir("sdp_cli_redraw");
  const auto r = launch(4,
                        "--sdp-level block --coverage 0.5 --sdp-sync grads --epochs 3 "
                        "--sdp-redraw-epochs 1 --sdp-rescale-factor 0.625 --run-dir " +
                            dir + "/run " + kResnet);
  ASSERT_EQ(r.code, 0) << r.output;
  const auto summary = read_json(dir + "/run/summary.json");
  EXPECT_EQ(summary["sdp"]["rescale_factor"].get<double>(), 0.625);
  const auto redraw = summary["sdp"]["redraw"];
  EXPECT_EQ(redraw["redraws"], 2);
  EXPECT_GT(redraw["comm_bytes"].get<int64_t>(), 0);
  EXPECT_GT(redraw["received_entries"].get<int64_t>(), 0);
  EXPECT_EQ(summary["epochs"], 3);
  const auto first = read_json(dir + "/run/sdp_plan.json")["subnets"];
  const auto second = read_json(dir + "/run/sdp_plan_epoch1.json")["subnets"];
  const auto third = read_json(dir + "/run/sdp_plan_epoch2.json")["subnets"];
  EXPECT_NE(first, second);
  EXPECT_NE(second, third);
  expect_eval_reproduces(dir + "/run/checkpoint.pt", kData, dir + "/eval.json",
                         summary["test_accuracy"].get<double>());
}

// Redraws by steps change plans inside an epoch; a period of one epoch's steps is the same run
// as --sdp-redraw-epochs 1.
TEST(SdpCli, RedrawsEveryFewStepsChangePlansInsideAnEpoch) {
  const std::string dir = fresh_dir("sdp_cli_redraw_steps");
  // 512 samples over 4 workers, batch 64: 2 steps per epoch.
  const std::string args =
      "--sdp-level block --coverage 0.5 --sdp-sync grads --epochs 2 " + kResnet + " --run-dir ";
  auto r = launch(4, "--sdp-redraw-steps 1 " + args + dir + "/every-step");
  ASSERT_EQ(r.code, 0) << r.output;
  const auto summary = read_json(dir + "/every-step/summary.json");
  EXPECT_EQ(summary["sdp"]["redraw"]["every_steps"], 1);
  EXPECT_EQ(summary["sdp"]["redraw"]["redraws"], 3);
  // Plan r comes from the run's seed and r alone (every worker computes it without talking).
  const auto run_seed = read_json(dir + "/every-step/sdp_plan.json")["seed"].get<uint64_t>();
  for (uint64_t redraw = 1; redraw <= 3; ++redraw) {
    const std::string plan = dir + "/every-step/sdp_plan_step" + std::to_string(redraw) + ".json";
    ASSERT_TRUE(std::filesystem::exists(plan)) << plan;
    EXPECT_EQ(read_json(plan)["seed"].get<uint64_t>(), tessera::mix_seed(run_seed, redraw));
  }
  expect_eval_reproduces(dir + "/every-step/checkpoint.pt", kData, dir + "/eval.json",
                         summary["test_accuracy"].get<double>());

  r = launch(4, "--sdp-redraw-steps 2 " + args + dir + "/steps");
  ASSERT_EQ(r.code, 0) << r.output;
  r = launch(4, "--sdp-redraw-epochs 1 " + args + dir + "/epochs");
  ASSERT_EQ(r.code, 0) << r.output;
  const auto by_steps = read_json(dir + "/steps/summary.json");
  const auto by_epochs = read_json(dir + "/epochs/summary.json");
  EXPECT_EQ(by_steps["sdp"]["redraw"]["redraws"], 1);
  EXPECT_EQ(by_steps["test_loss"].get<double>(), by_epochs["test_loss"].get<double>());
  EXPECT_EQ(read_json(dir + "/steps/sdp_plan_step2.json"),
            read_json(dir + "/epochs/sdp_plan_epoch1.json"));
}

// A redraw period of at least the run's epochs is one plan: the same run as without the flag.
TEST(SdpCli, ARedrawPeriodLongerThanTheRunChangesNothing) {
  const std::string dir = fresh_dir("sdp_cli_no_redraw");
  const std::string args = "--sdp-level block --coverage 0.5 --epochs 1 " + kResnet;
  auto r = launch(2, args + " --run-dir " + dir + "/fixed");
  ASSERT_EQ(r.code, 0) << r.output;
  r = launch(2, args + " --sdp-redraw-epochs 2 --run-dir " + dir + "/long");
  ASSERT_EQ(r.code, 0) << r.output;
  const auto fixed = read_json(dir + "/fixed/summary.json");
  const auto long_period = read_json(dir + "/long/summary.json");
  EXPECT_EQ(fixed["test_loss"].get<double>(), long_period["test_loss"].get<double>());
  EXPECT_EQ(long_period["sdp"]["redraw"]["redraws"], 0);
}

TEST(SdpCli, ImpossiblePlansAreUsageErrorsNamingTheReason) {
  auto r = launch(4, "--coverage 0.3 --epochs 1 " + kResnet);
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("whole number"), std::string::npos) << r.output;
  r = launch(2, "--sdp-level block --epochs 1 " + kData + " --hidden 16,16 --quiet");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("--sdp-level neuron"), std::string::npos) << r.output;
  r = launch(2, "--sdp-level gate --epochs 1 " + kResnet);
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("--sdp-level must be block or neuron"), std::string::npos) << r.output;
  r = launch(2, "--sdp-redraw-epochs -1 --epochs 1 " + kResnet);
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("--sdp-redraw-epochs: must be an integer in [0, "), std::string::npos)
      << r.output;
  r = launch(2, "--sdp-redraw-steps -3 --epochs 1 " + kResnet);
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("--sdp-redraw-steps: must be an integer in [0, "), std::string::npos)
      << r.output;
  r = launch(2, "--sdp-redraw-steps 5 --sdp-redraw-epochs 1 --epochs 1 " + kResnet);
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("give one"), std::string::npos) << r.output;
  r = launch(2, "--sdp-masking backward --sdp-redraw-steps 1 --epochs 1 " + kResnet);
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("every worker has every unit already"), std::string::npos) << r.output;
  r = launch(2, "--sdp-masking backward --sdp-redraw-epochs 1 --epochs 1 " + kResnet);
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("every worker has every unit already"), std::string::npos) << r.output;
}
