// A parameter's optimizer state read and written directly (what an SDP plan redraw moves).
#include <gtest/gtest.h>

#include "tessera/train/optimizer.h"
#include "tessera/train/optimizer_state.h"

using namespace tessera;

namespace {

// Two optimizers of `config` on equal parameters: one steps `p` twice from scratch; the other is
// given, before its second step, state copied by parameter_state from the first after one step.
// Both must end equal.
void expect_transplanted_state_steps_alike(const std::string& name) {
  train::OptimizerConfig config;
  config.name = name;
  config.lr = 0.1;
  torch::manual_seed(3);
  torch::Tensor a = torch::randn({5, 4}).requires_grad_();
  torch::Tensor b = a.detach().clone().requires_grad_();
  const torch::Tensor g1 = torch::randn({5, 4});
  const torch::Tensor g2 = torch::randn({5, 4});
  auto first = train::make_optimizer({a}, config);
  a.mutable_grad() = g1.clone();
  first->step();
  {
    torch::NoGradGuard no_grad;
    b.copy_(a);
  }
  auto second = train::make_optimizer({b}, config);
  const auto source = train::parameter_state(*first, a, 1);
  const auto target = train::parameter_state(*second, b, 1);
  ASSERT_EQ(source.size(), target.size());
  ASSERT_FALSE(source.empty());
  for (size_t i = 0; i < source.size(); ++i) {
    EXPECT_TRUE(torch::equal(target[i], torch::zeros_like(target[i]))) << "fresh state is zero";
    target[i].copy_(source[i]);
  }
  a.mutable_grad() = g2.clone();
  b.mutable_grad() = g2.clone();
  first->step();
  second->step();
  EXPECT_TRUE(torch::equal(a, b)) << name;
  // Writing into the returned tensors wrote the optimizer's own state.
  const auto after = train::parameter_state(*second, b, 0);
  for (size_t i = 0; i < after.size(); ++i)
    EXPECT_TRUE(torch::equal(after[i], train::parameter_state(*first, a, 0)[i])) << name;
}

}  // namespace

TEST(OptimizerState, StateCopiedIntoAFreshOptimizerStepsAsTheOriginal) {
  expect_transplanted_state_steps_alike("sgd");
  expect_transplanted_state_steps_alike("adam");
  expect_transplanted_state_steps_alike("adamw");
}

TEST(OptimizerState, ZeroStateCreatedForAnUnsteppedParameterStepsLikeAFreshOne) {
  train::OptimizerConfig config;  // adam
  torch::manual_seed(4);
  torch::Tensor a = torch::randn({6}).requires_grad_();
  torch::Tensor b = a.detach().clone().requires_grad_();
  auto plain = train::make_optimizer({a}, config);
  auto created = train::make_optimizer({b}, config);
  EXPECT_EQ(train::parameter_state(*created, b, 0).size(), 2u);  // first and second moments
  const torch::Tensor g = torch::randn({6});
  a.mutable_grad() = g.clone();
  b.mutable_grad() = g.clone();
  plain->step();
  created->step();
  EXPECT_TRUE(torch::equal(a, b));
}

TEST(OptimizerState, SgdWithoutMomentumKeepsNone) {
  train::OptimizerConfig config;
  config.name = "sgd";
  config.momentum = 0;
  torch::Tensor a = torch::randn({3}).requires_grad_();
  auto sgd = train::make_optimizer({a}, config);
  EXPECT_TRUE(train::parameter_state(*sgd, a, 5).empty());
}
