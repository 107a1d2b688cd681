#include <gtest/gtest.h>

#include "tessera/core/error.h"
#include "tessera/train/optimizer.h"
#include "tessera/train/schedule.h"

using namespace tessera;
using namespace tessera::train;

TEST(Schedule, ConstantWarmupStepCosine) {
  ScheduleConfig constant;
  EXPECT_DOUBLE_EQ(scheduled_lr(constant, 0.1, 57, 100, 10), 0.1);

  ScheduleConfig warm;
  warm.warmup_steps = 4;
  EXPECT_DOUBLE_EQ(scheduled_lr(warm, 0.1, 0, 100, 10), 0.025);
  EXPECT_DOUBLE_EQ(scheduled_lr(warm, 0.1, 3, 100, 10), 0.1);

  ScheduleConfig step;
  step.name = "step";
  step.step_every_epochs = 2;
  step.gamma = 0.5;
  EXPECT_DOUBLE_EQ(scheduled_lr(step, 0.1, 19, 100, 10), 0.1);    // epoch 1
  EXPECT_DOUBLE_EQ(scheduled_lr(step, 0.1, 20, 100, 10), 0.05);   // epoch 2
  EXPECT_DOUBLE_EQ(scheduled_lr(step, 0.1, 45, 100, 10), 0.025);  // epoch 4

  ScheduleConfig cosine;
  cosine.name = "cosine";
  EXPECT_DOUBLE_EQ(scheduled_lr(cosine, 0.1, 0, 100, 10), 0.1);
  EXPECT_NEAR(scheduled_lr(cosine, 0.1, 50, 100, 10), 0.05, 1e-12);
  EXPECT_NEAR(scheduled_lr(cosine, 0.1, 100, 100, 10), 0.0, 1e-12);
  cosine.min_lr_ratio = 0.1;
  EXPECT_NEAR(scheduled_lr(cosine, 0.1, 100, 100, 10), 0.01, 1e-12);
}

TEST(Schedule, InvalidValuesAreRefused) {
  ScheduleConfig bad;
  bad.name = "exponential";
  EXPECT_THROW(validate(bad), UsageError);
  bad = ScheduleConfig{};
  bad.warmup_steps = -1;
  EXPECT_THROW(validate(bad), UsageError);
}

TEST(Optimizer, StateBytesAreReadFromTheState) {
  auto w = torch::randn({10, 10}, torch::requires_grad());
  for (const std::string name : {"sgd", "adam", "adamw"}) {
    OptimizerConfig config;
    config.name = name;
    auto optimizer = make_optimizer({w}, config);
    EXPECT_EQ(optimizer_state_bytes(*optimizer), 0);  // allocated lazily
    w.mutable_grad() = torch::ones_like(w);
    optimizer->step();
    const int64_t expected = (name == "sgd" ? 1 : 2) * 100 * 4;
    EXPECT_EQ(optimizer_state_bytes(*optimizer), expected) << name;
    set_learning_rate(*optimizer, 0.5);
    EXPECT_DOUBLE_EQ(optimizer->param_groups()[0].options().get_lr(), 0.5);
  }
  OptimizerConfig bad;
  bad.name = "lion";
  EXPECT_THROW(make_optimizer({w}, bad), UsageError);
  bad = OptimizerConfig{};
  bad.name = "sgd";
  bad.momentum = 0;
  bad.nesterov = true;
  EXPECT_THROW(make_optimizer({w}, bad), UsageError);
}
