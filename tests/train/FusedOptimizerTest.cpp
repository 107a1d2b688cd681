// The one-pass optimizer steps (fused_kernels.h) against libtorch's own optimizers, on the fused
// path (contiguous float CPU tensors) and on the fallback (a transposed view, doubles).
#include <gtest/gtest.h>

#include <ATen/Parallel.h>

#include "tessera/train/chunked_adam.h"
#include "tessera/train/fused_sgd.h"
#include "tessera/train/fused_step.h"

using namespace tessera;

namespace {

// A parameter split among threads, one smaller than a thread's share, a transposed view (the
// fallback) and a double one (also the fallback).
std::vector<torch::Tensor> fused_test_parameters() {
  torch::manual_seed(2);
  std::vector<torch::Tensor> params = {torch::randn({300, 700}), torch::randn({1000}),
                                       torch::randn({40, 60}).t(),
                                       torch::randn({50}, torch::kDouble)};
  for (auto& p : params) p.set_requires_grad(true);
  return params;
}

// Runs `steps` steps of `a` and `b` on the same gradients; returns the largest difference
// between their parameters relative to the parameter's magnitude.
template <typename A, typename B>
double steps_apart(A& a, B& b, std::vector<torch::Tensor>& pa, std::vector<torch::Tensor>& pb,
                   int steps) {
  for (int step = 0; step < steps; ++step) {
    for (size_t i = 0; i < pa.size(); ++i) {
      const torch::Tensor grad = torch::randn_like(pa[i]);
      pa[i].mutable_grad() = grad.clone();
      pb[i].mutable_grad() = grad.clone();
    }
    a.step();
    b.step();
  }
  double worst = 0.0;
  for (size_t i = 0; i < pa.size(); ++i) {
    const double scale = std::max(1.0, pa[i].abs().max().item<double>());
    worst = std::max(worst, (pa[i] - pb[i]).abs().max().item<double>() / scale);
  }
  return worst;
}

template <typename Reference, typename Fused, typename Options>
double worst_difference(const Options& options, int steps = 5) {
  auto a = fused_test_parameters();
  auto b = fused_test_parameters();
  Reference reference(a, options);
  Fused fused(b, options);
  return steps_apart(reference, fused, a, b, steps);
}

}  // namespace

TEST(FusedOptimizer, FusabilityFollowsTheTensors) {
  EXPECT_TRUE(train::fusable({torch::zeros({4, 4}), torch::Tensor()}));
  EXPECT_FALSE(train::fusable({torch::zeros({4, 4}).t()}));
  EXPECT_FALSE(train::fusable({torch::zeros({4}, torch::kDouble)}));
  EXPECT_FALSE(train::fusable({torch::zeros({4}, torch::kBFloat16)}));
}

TEST(FusedOptimizer, SgdStepsLikeLibtorchsSgd) {
  using torch::optim::SGDOptions;
  for (const auto& options : {SGDOptions(0.1), SGDOptions(0.1).momentum(0.9),
                              SGDOptions(0.05).momentum(0.9).nesterov(true),
                              SGDOptions(0.05).momentum(0.8).dampening(0.1).weight_decay(1e-2),
                              SGDOptions(0.05).weight_decay(1e-3)}) {
    const double apart = worst_difference<torch::optim::SGD, train::FusedSGD>(options);
    EXPECT_LT(apart, 1e-6) << "momentum " << options.momentum() << " nesterov "
                           << options.nesterov();
  }
}

TEST(FusedOptimizer, AdamAndAdamWStepLikeLibtorchs) {
  using torch::optim::AdamOptions;
  using torch::optim::AdamWOptions;
  EXPECT_LT((worst_difference<torch::optim::Adam, train::ChunkedAdam>(AdamOptions(1e-2))), 1e-6);
  EXPECT_LT((worst_difference<torch::optim::Adam, train::ChunkedAdam>(
                AdamOptions(1e-2).weight_decay(0.1).amsgrad(true))),
            1e-6);
  EXPECT_LT((worst_difference<torch::optim::AdamW, train::ChunkedAdamW>(
                AdamWOptions(1e-2).weight_decay(0.05).betas({0.8, 0.95}))),
            1e-6);
}

TEST(FusedOptimizer, ResultsDoNotDependOnTheThreadCount) {
  const int threads = at::get_num_threads();
  auto run = [](int count) {
    at::set_num_threads(count);
    auto params = fused_test_parameters();
    train::ChunkedAdamW adam(params, torch::optim::AdamWOptions(1e-2).weight_decay(0.01));
    train::FusedSGD sgd(params, torch::optim::SGDOptions(0.01).momentum(0.9));
    torch::manual_seed(9);
    for (int step = 0; step < 3; ++step) {
      for (auto& p : params) p.mutable_grad() = torch::randn_like(p);
      adam.step();
      sgd.step();
    }
    return params;
  };
  const auto one = run(1);
  const auto two = run(2);
  at::set_num_threads(threads);
  for (size_t i = 0; i < one.size(); ++i) EXPECT_TRUE(one[i].equal(two[i])) << "parameter " << i;
}

TEST(FusedOptimizer, SgdStateRoundTripsThroughLibtorchsSerialization) {
  auto a = fused_test_parameters();
  train::FusedSGD fused(a, torch::optim::SGDOptions(0.1).momentum(0.9));
  for (auto& p : a) p.mutable_grad() = torch::ones_like(p);
  fused.step();
  std::stringstream stream;
  {
    torch::serialize::OutputArchive archive;
    fused.save(archive);
    archive.save_to(stream);
  }
  auto b = fused_test_parameters();
  torch::optim::SGD plain(b, torch::optim::SGDOptions(0.1).momentum(0.9));
  torch::serialize::InputArchive archive;
  archive.load_from(stream);
  plain.load(archive);
  ASSERT_EQ(plain.state().size(), a.size());
}
