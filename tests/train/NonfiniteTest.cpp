// --nonfinite in the Trainer: a step whose loss turns NaN stops the run before the update (stop),
// or is left out (skip), counted, and stops the run after too many in a row.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include "../test_support.h"
#include "tessera/train/checkpoint.h"
#include "tessera/train/nonfinite.h"
#include "tessera/train/trainer.h"

using namespace tessera;

namespace nonfinite_test {

using tessera::testing::fresh_dir;
using tessera::testing::snapshot;
using tessera::testing::synthetic_8x8;

// Cross-entropy whose loss is NaN on the training steps listed (1-based, counting training calls
// only: evaluation runs without gradients).
class PoisonedLoss : public train::Classification {
 public:
  explicit PoisonedLoss(std::vector<int64_t> steps) : steps_(std::move(steps)) {}
  torch::Tensor loss(const torch::Tensor& outputs, const data::Batch& batch) override {
    torch::Tensor loss = Classification::loss(outputs, batch);
    if (!torch::GradMode::is_enabled()) return loss;
    ++calls_;
    for (const int64_t s : steps_)
      if (s == calls_) return loss * std::numeric_limits<double>::quiet_NaN();
    return loss;
  }

 private:
  std::vector<int64_t> steps_;
  int64_t calls_ = 0;
};

models::StagedModel mlp(const data::Dataset& data) {
  models::ModelConfig config;
  config.input_shape = data.sample_shape();
  config.num_classes = data.num_classes;
  config.hidden = {32};
  torch::manual_seed(4);
  return models::build_model(config);
}

train::TrainConfig config(int64_t epochs, const std::string& policy) {
  train::TrainConfig c;
  c.epochs = epochs;
  c.batch_size = 250;  // 8 steps per epoch of synthetic_8x8
  c.seed = 2;
  c.quiet = true;
  c.nonfinite = policy;
  c.nonfinite_max_skips = 2;
  return c;
}

std::string bytes_of(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

bool equal(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  for (size_t i = 0; i < a.size(); ++i)
    if (!torch::equal(a[i], b[i])) return false;
  return true;
}

TEST(Nonfinite, StopNamesTheStepAndKeepsTheLastCheckpoint) {
  const auto data = synthetic_8x8();
  const std::string dir = fresh_dir("train_nonfinite_stop");
  auto model = mlp(data.train);
  train::RunDirectory run(dir, false);
  // Step 11 is the third of the second epoch; epoch 1 (steps 1-8) ends with a checkpoint.
  train::Trainer trainer(model, std::make_shared<PoisonedLoss>(std::vector<int64_t>{11}),
                         config(2, "stop"), &run);
  trainer.fit(data.train, nullptr, /*until_epoch=*/1);
  const std::string checkpoint = bytes_of(run.checkpoint_path());
  const std::string metrics = bytes_of(run.file("metrics.jsonl"));
  const auto before = snapshot(model);
  try {
    trainer.fit(data.train, nullptr);
    FAIL() << "a NaN loss did not stop the run";
  } catch (const train::NonfiniteError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("the loss was nan at epoch 2, step 11 on rank 0"), std::string::npos)
        << message;
    EXPECT_NE(message.find(run.checkpoint_path()), std::string::npos) << message;
  }
  EXPECT_EQ(bytes_of(run.checkpoint_path()), checkpoint);
  EXPECT_EQ(bytes_of(run.file("metrics.jsonl")), metrics);
  // Steps 9 and 10 trained; step 11's update never happened, so the weights are finite.
  EXPECT_FALSE(equal(before, snapshot(model)));
  EXPECT_TRUE(train::state_finite(*model));
}

TEST(Nonfinite, SkipLeavesTheWeightsAsTheyWereAndCountsTheStep) {
  const auto data = synthetic_8x8();
  auto model = mlp(data.train);
  auto objective = std::make_shared<PoisonedLoss>(std::vector<int64_t>{3, 5, 6});
  train::Trainer trainer(model, objective, config(1, "skip"), nullptr);
  data::BatchIterator batches(data.train, data::in_order(250));
  data::Batch batch;
  for (int64_t step = 1; step <= 6 && batches.next(batch); ++step) {
    const auto before = snapshot(model);
    trainer.train_step(batch);
    const bool poisoned = step == 3 || step == 5 || step == 6;
    EXPECT_EQ(trainer.last_step_skipped(), poisoned) << "step " << step;
    EXPECT_EQ(equal(before, snapshot(model)), poisoned) << "step " << step;
  }
  EXPECT_TRUE(train::state_finite(*model));
}

TEST(Nonfinite, SkipCountsInTheSummaryAndStopsAfterTooManyInARow) {
  const auto data = synthetic_8x8();
  {
    auto model = mlp(data.train);
    train::Trainer trainer(model, std::make_shared<PoisonedLoss>(std::vector<int64_t>{2, 3, 7}),
                           config(1, "skip"), nullptr);
    const train::TrainSummary summary = trainer.fit(data.train, &data.test);
    EXPECT_EQ(summary.nonfinite_skipped_steps, 3);
    EXPECT_EQ(summary.steps, 8);
    EXPECT_EQ(summary.train_samples, 5 * 250);  // the skipped steps trained on nothing
    EXPECT_TRUE(std::isfinite(summary.last_train.loss));
    EXPECT_EQ(train::to_json(summary)["nonfinite_skipped_steps"], 3);
  }
  auto model = mlp(data.train);
  // --nonfinite-max-skips 2: steps 4 and 5 are skipped, the third in a row (6) stops the run.
  train::Trainer trainer(model, std::make_shared<PoisonedLoss>(std::vector<int64_t>{4, 5, 6}),
                         config(1, "skip"), nullptr);
  try {
    trainer.fit(data.train, nullptr);
    FAIL() << "three non-finite steps in a row did not stop the run";
  } catch (const train::NonfiniteError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("step 6"), std::string::npos) << message;
    EXPECT_NE(message.find("--nonfinite-max-skips 2"), std::string::npos) << message;
  }
}

TEST(Nonfinite, ACheckpointOfNonFiniteWeightsIsRefused) {
  const auto data = synthetic_8x8();
  const std::string dir = fresh_dir("train_nonfinite_checkpoint");
  auto model = mlp(data.train);
  train::save_checkpoint(dir + "/checkpoint.pt", *model, nullptr, {{"epoch", 1}});
  const std::string good = bytes_of(dir + "/checkpoint.pt");
  {
    torch::NoGradGuard no_grad;
    model->parameters()[0][0][0].fill_(std::numeric_limits<double>::infinity());
  }
  EXPECT_THROW(train::save_checkpoint(dir + "/checkpoint.pt", *model, nullptr, {{"epoch", 2}}),
               train::NonfiniteError);
  EXPECT_EQ(bytes_of(dir + "/checkpoint.pt"), good);
  EXPECT_FALSE(std::filesystem::exists(dir + "/checkpoint.pt.tmp"));
}

TEST(Nonfinite, BallotsNameTheOneRankOrCountTheWorkers) {
  std::vector<double> sum = {0, 0};
  for (int64_t rank = 0; rank < 4; ++rank) {
    const auto ballot = train::nonfinite_ballot(rank == 2, rank);
    sum[0] += ballot[0];
    sum[1] += ballot[1];
  }
  const train::NonfiniteVote one = train::count_ballots(sum);
  EXPECT_EQ(one.workers, 1);
  EXPECT_EQ(one.rank, 2);
  const train::NonfiniteVote none = train::count_ballots({0, 0});
  EXPECT_FALSE(none.any());
  const train::NonfiniteVote two = train::count_ballots({2, 5});
  EXPECT_EQ(two.workers, 2);
  EXPECT_EQ(two.rank, -1);
  train::NonfiniteStep elsewhere{3, 40, 0, 0.25, false};
  EXPECT_EQ(train::describe(elsewhere, one),
            "the loss or a gradient was non-finite at epoch 3, step 40 on rank 2");
  EXPECT_THROW(train::parse_nonfinite_policy("ignore"), UsageError);
}

// The gradient scan reads raw floats in one parallel region over all gradients laid end to end:
// a single bad value anywhere (first, last, across a tensor boundary, in a small or a large
// tensor, as +inf, -inf or NaN) must be seen, and the largest finite values and subnormals must
// not be mistaken for one.
TEST(Nonfinite, TheGradientScanFindsOneBadValueAnywhere) {
  torch::manual_seed(3);
  auto parameter = [](int64_t n) {
    torch::Tensor p = torch::zeros({n}, torch::requires_grad());
    p.mutable_grad() = torch::randn({n});
    return p;
  };
  std::vector<torch::Tensor> params = {parameter(7), parameter(200000), parameter(1),
                                       parameter(65537)};
  params[1].mutable_grad()[5] = std::numeric_limits<float>::max();
  params[3].mutable_grad()[9] = -std::numeric_limits<float>::max();
  params[3].mutable_grad()[10] = std::numeric_limits<float>::denorm_min();
  ASSERT_TRUE(train::gradients_finite(params));
  const float bad[] = {std::numeric_limits<float>::infinity(),
                       -std::numeric_limits<float>::infinity(),
                       std::numeric_limits<float>::quiet_NaN()};
  for (float value : bad)
    for (size_t i = 0; i < params.size(); ++i) {
      const int64_t n = params[i].numel();
      for (int64_t at : {int64_t{0}, n / 2, n - 1}) {
        torch::Tensor g = params[i].mutable_grad();
        const float kept = g[at].item<float>();
        g[at] = value;
        EXPECT_FALSE(train::gradients_finite(params))
            << value << " in tensor " << i << " at " << at;
        g[at] = kept;
      }
    }
  ASSERT_TRUE(train::gradients_finite(params));
  // A tensor the fused scan does not take (a strided view, doubles) goes through isfinite().
  torch::Tensor strided = torch::zeros({4, 4}, torch::requires_grad());
  strided.mutable_grad() = torch::zeros({4, 4}).t();
  strided.mutable_grad()[1][2] = std::nanf("");
  EXPECT_FALSE(train::gradients_finite({params[0], strided}));
  torch::Tensor doubles = torch::zeros({3}, torch::dtype(torch::kDouble).requires_grad(true));
  doubles.mutable_grad() =
      torch::full({3}, std::numeric_limits<double>::infinity(), torch::kDouble);
  EXPECT_FALSE(train::gradients_finite({params[0], doubles}));
}

}  // namespace nonfinite_test
