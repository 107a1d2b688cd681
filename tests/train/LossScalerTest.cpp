// Dynamic loss scaling (--loss-scale): the flag's parsing, the scale's back-off and growth, exact
// unscaling, a Trainer that trains the same weights with and without it when nothing overflows,
// overflowing steps absorbed by halving the scale, the floor under which --nonfinite decides, and
// the scale carried by checkpoints. fp16 itself needs CUDA, so these run in fp32 on the CPU.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <limits>
#include <string>

#include "../test_support.h"
#include "tessera/core/error.h"
#include "tessera/train/loss_scaler.h"
#include "tessera/train/nonfinite.h"
#include "tessera/train/trainer.h"

using namespace tessera;

namespace loss_scaler_test {

using tessera::testing::fresh_dir;
using tessera::testing::snapshot;
using tessera::testing::synthetic_8x8;

const double kTwoTo127 = std::ldexp(1.0, 127);

models::StagedModel mlp(const data::Dataset& data) {
  models::ModelConfig config;
  config.input_shape = data.sample_shape();
  config.num_classes = data.num_classes;
  config.hidden = {32, 32};
  torch::manual_seed(5);
  return models::build_model(config);
}

train::TrainConfig config(bool dynamic, double initial = 65536.0) {
  train::TrainConfig c;
  c.epochs = 2;
  c.batch_size = 100;  // 20 steps per epoch of synthetic_8x8
  c.seed = 2;
  c.quiet = true;
  c.optimizer.name = "adam";
  c.optimizer.lr = 1e-2;
  c.loss_scale.dynamic = dynamic;
  c.loss_scale.initial = initial;
  return c;
}

// Cross-entropy times 2^20: Adam trains it as it trains cross-entropy (its steps do not depend on
// the gradient's scale), but under a loss scale above 2^108 its scaled gradients overflow fp32.
class AmplifiedLoss : public train::Classification {
 public:
  torch::Tensor loss(const torch::Tensor& outputs, const data::Batch& batch) override {
    return Classification::loss(outputs, batch) * std::ldexp(1.0, 20);
  }
};

// Cross-entropy that is NaN on every training step: a diverged run, which no scale fixes.
class AlwaysNanLoss : public train::Classification {
 public:
  torch::Tensor loss(const torch::Tensor& outputs, const data::Batch& batch) override {
    return Classification::loss(outputs, batch) * std::numeric_limits<double>::quiet_NaN();
  }
};

void expect_usage_error(const std::function<void()>& call, const std::string& needle) {
  try {
    call();
    FAIL() << "accepted; expected an error naming " << needle;
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

}  // namespace loss_scaler_test

using namespace loss_scaler_test;

TEST(LossScaler, AutoScalesUnderFp16OnlyAndBadFlagsAreNamed) {
  using train::Precision;
  EXPECT_TRUE(train::parse_loss_scale("auto", 65536, Precision::Fp16).dynamic);
  EXPECT_FALSE(train::parse_loss_scale("auto", 65536, Precision::Fp32).dynamic);
  EXPECT_FALSE(train::parse_loss_scale("auto", 65536, Precision::Bf16).dynamic);
  EXPECT_FALSE(train::parse_loss_scale("off", 65536, Precision::Fp16).dynamic);
  const auto dynamic = train::parse_loss_scale("dynamic", 1024, Precision::Fp32);
  EXPECT_TRUE(dynamic.dynamic);
  EXPECT_EQ(dynamic.initial, 1024);
  EXPECT_EQ(train::to_json(dynamic)["initial"], 1024);
  EXPECT_EQ(train::to_json(train::LossScaleConfig{}), "off");
  expect_usage_error([] { train::parse_loss_scale("static", 65536, Precision::Fp16); },
                     "--loss-scale must be");
  for (const double bad : {1000.0, 0.0, -4.0, std::numeric_limits<double>::infinity()})
    expect_usage_error([bad] { train::parse_loss_scale("dynamic", bad, Precision::Fp16); },
                       "--loss-scale-init");
}

TEST(LossScaler, BacksOffToTheFloorGrowsAfterTheIntervalAndStopsAtTheCeiling) {
  train::LossScaleConfig config;
  config.dynamic = true;
  config.initial = 4.0;
  config.growth_interval = 3;
  train::LossScaler scaler(config);
  EXPECT_TRUE(scaler.back_off());
  EXPECT_EQ(scaler.scale(), 2.0);
  EXPECT_TRUE(scaler.back_off());
  EXPECT_EQ(scaler.scale(), 1.0);
  EXPECT_FALSE(scaler.back_off());  // at the floor: the non-finite guard decides
  EXPECT_EQ(scaler.scale(), 1.0);
  EXPECT_EQ(scaler.backoffs(), 2);
  scaler.step_was_clean();
  scaler.step_was_clean();
  EXPECT_EQ(scaler.scale(), 1.0);
  scaler.step_was_clean();  // the third clean step in a row
  EXPECT_EQ(scaler.scale(), 2.0);
  scaler.step_was_clean();
  scaler.step_was_clean();
  EXPECT_TRUE(scaler.back_off());  // an overflow restarts the count
  scaler.step_was_clean();
  scaler.step_was_clean();
  EXPECT_EQ(scaler.scale(), 1.0);
  EXPECT_EQ(scaler.growths(), 1);

  config.initial = train::LossScaler::kMaxScale;
  train::LossScaler top(config);
  for (int i = 0; i < 10; ++i) top.step_was_clean();
  EXPECT_EQ(top.scale(), train::LossScaler::kMaxScale);

  train::LossScaler off{train::LossScaleConfig{}};
  EXPECT_FALSE(off.back_off());
  const torch::Tensor loss = torch::tensor(3.0);
  EXPECT_TRUE(off.scale_loss(loss).is_same(loss));
}

TEST(LossScaler, UnscalingIsExactAndStateRoundTrips) {
  train::LossScaleConfig config;
  config.dynamic = true;
  config.initial = 65536.0;
  train::LossScaler scaler(config);
  torch::manual_seed(0);
  torch::Tensor w = torch::randn({5, 7}, torch::requires_grad());
  torch::Tensor unscaled_grad;
  {
    (w * w).sum().backward();
    unscaled_grad = w.grad().clone();
    w.mutable_grad().zero_();
  }
  scaler.scale_loss((w * w).sum()).backward();
  EXPECT_FALSE(torch::equal(w.grad(), unscaled_grad));
  scaler.unscale({w});
  EXPECT_TRUE(torch::equal(w.grad(), unscaled_grad));

  scaler.back_off();
  scaler.step_was_clean();
  train::LossScaler restored(config);
  restored.load(scaler.state());
  EXPECT_EQ(restored.state(), scaler.state());
  EXPECT_EQ(restored.scale(), 32768.0);
  train::LossScaler disabled{train::LossScaleConfig{}};
  disabled.load(scaler.state());  // an fp16 checkpoint resumed without scaling: ignored
  EXPECT_EQ(disabled.scale(), 65536.0);
}

TEST(LossScaler, TrainsTheSameWeightsAsNoScalingWhenNothingOverflows) {
  const auto data = synthetic_8x8();
  auto plain = mlp(data.train);
  auto scaled = mlp(data.train);
  train::Trainer a(plain, std::make_shared<train::Classification>(), config(false), nullptr);
  train::Trainer b(scaled, std::make_shared<train::Classification>(), config(true), nullptr);
  const train::TrainSummary sa = a.fit(data.train, &data.test);
  const train::TrainSummary sb = b.fit(data.train, &data.test);
  // Powers of two scale and unscale without rounding: bit for bit the same training.
  EXPECT_EQ(sa.last_train.loss, sb.last_train.loss);
  EXPECT_EQ(sa.test.loss, sb.test.loss);
  const auto wa = snapshot(plain);
  const auto wb = snapshot(scaled);
  for (size_t i = 0; i < wa.size(); ++i) EXPECT_TRUE(torch::equal(wa[i], wb[i])) << i;
  EXPECT_EQ(train::to_json(sa)["loss_scale"], "off");
  const nlohmann::json scale = train::to_json(sb)["loss_scale"];
  EXPECT_EQ(scale["initial"], 65536.0);
  EXPECT_EQ(scale["final"], 65536.0);  // 40 steps: no growth before 2000
  EXPECT_EQ(scale["backoffs"], 0);
}

TEST(LossScaler, OverflowingStepsAreSkippedWithTheScaleHalvedThenTrainingGoesOn) {
  const auto data = synthetic_8x8();
  const std::string dir = fresh_dir("loss_scaler_overflow");
  train::RunDirectory run(dir, false);
  auto model = mlp(data.train);
  // From 2^127 the first steps' scaled gradients are infinite (at least 19 of them).
  train::Trainer trainer(model, std::make_shared<AmplifiedLoss>(), config(true, kTwoTo127), &run);
  const train::TrainSummary summary = trainer.fit(data.train, &data.test);
  const int64_t backoffs = summary.loss_scale["backoffs"].get<int64_t>();
  EXPECT_GE(backoffs, 19);
  EXPECT_LT(backoffs, 30);
  EXPECT_EQ(summary.loss_scale["final"].get<double>(), std::ldexp(1.0, 127 - backoffs));
  EXPECT_EQ(summary.nonfinite_skipped_steps, 0);  // not a --nonfinite matter
  EXPECT_TRUE(train::state_finite(*model));
  EXPECT_GT(summary.test.accuracy, 0.5);  // it trained once the scale fitted
  // Every back-off is in the run's metrics, with the scale it left.
  std::ifstream metrics(run.file("metrics.jsonl"));
  std::string line;
  int64_t logged = 0;
  while (std::getline(metrics, line))
    if (nlohmann::json::parse(line).value("type", "") == "loss_scale_backoff") ++logged;
  EXPECT_EQ(logged, backoffs);
  // The checkpoint carries the scale, and a resumed trainer continues from it.
  const nlohmann::json meta = trainer.checkpoint_meta();
  EXPECT_EQ(meta["loss_scale"]["scale"], summary.loss_scale["final"]);
  train::Trainer resumed(mlp(data.train), std::make_shared<train::Classification>(),
                         config(true, kTwoTo127), nullptr);
  resumed.resume_from_meta(meta);
  EXPECT_EQ(resumed.checkpoint_meta()["loss_scale"], meta["loss_scale"]);
}

TEST(LossScaler, ARunThatDivergesStillStopsOnceTheScaleIsAtItsFloor) {
  const auto data = synthetic_8x8();
  auto model = mlp(data.train);
  // From 4, two back-offs reach the floor of 1; the third NaN step is --nonfinite stop's.
  train::Trainer trainer(model, std::make_shared<AlwaysNanLoss>(), config(true, 4.0), nullptr);
  try {
    trainer.fit(data.train, nullptr);
    FAIL() << "a NaN loss on every step did not stop the run";
  } catch (const train::NonfiniteError& e) {
    EXPECT_NE(std::string(e.what()).find("step 3"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(train::state_finite(*model));
}

TEST(LossScaler, Fp16IsForCudaAndNamedAsSuch) {
  EXPECT_EQ(train::parse_precision("fp16"), train::Precision::Fp16);
  EXPECT_STREQ(train::precision_name(train::Precision::Fp16), "fp16");
  EXPECT_EQ(train::compute_dtype(train::Precision::Fp16), torch::kHalf);
  expect_usage_error(
      [] {
        train::require_precision_supported(train::Precision::Fp16, torch::Device(torch::kCPU));
      },
      "--precision fp16 needs a CUDA device");
  EXPECT_NO_THROW(
      train::require_precision_supported(train::Precision::Fp16, torch::Device(torch::kCUDA, 0)));
}
