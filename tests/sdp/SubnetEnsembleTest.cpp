// The workers' subnetworks evaluated as an ensemble (sdp/subnet_ensemble): the combination of
// their predicted distributions across ranks (threads meeting through a FileStore).
#include "tessera/sdp/subnet_ensemble.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "../dist/rank_threads.h"

using namespace tessera;

namespace {

// Rank r's logits for 3 samples of 4 classes; the last sample's are extreme (a gap of 2000 between
// classes), so that one rank's probability of a class underflows to 0 where another's does not.
torch::Tensor logits_of(int64_t rank) {
  torch::Tensor logits = torch::arange(12, torch::kFloat32).reshape({3, 4}) * (rank + 1) * 0.3;
  logits[1] = torch::tensor({1.0f, 0.0f, -1.0f, 2.0f}) * static_cast<float>(rank - 1);
  logits[2] = torch::tensor({0.0f, 2000.0f, -2000.0f, 0.0f}) * (rank == 1 ? -1.0f : 1.0f);
  return logits;
}

TEST(SubnetEnsemble, CombinesTheWorkersDistributionsIntoTheLogOfTheirMean) {
  constexpr int64_t kWorld = 3;
  std::vector<torch::Tensor> combined(kWorld);
  ASSERT_TRUE(test::run_ranks(kWorld, "subnet_ensemble_mean", [&](dist::ProcessGroup& group) {
    combined[static_cast<size_t>(group.rank())] =
        sdp::log_mean_probabilities(group, logits_of(group.rank()));
  }));
  // The reference in double: log of the mean of the three softmaxes (as a log-sum-exp, since
  // some of sample 2's probabilities underflow to 0 even in double).
  std::vector<torch::Tensor> log_p;
  for (int64_t r = 0; r < kWorld; ++r)
    log_p.push_back(torch::log_softmax(logits_of(r).to(torch::kFloat64), -1));
  const torch::Tensor reference = torch::logsumexp(torch::stack(log_p), 0) - std::log(3.0);
  for (const auto& mine : combined) {
    EXPECT_TRUE(torch::equal(mine, combined[0]));  // every worker gets the same
    EXPECT_TRUE(torch::isfinite(mine).all().item<bool>()) << mine;
    // A distribution: its probabilities sum to 1, so as logits it is its own log-softmax.
    EXPECT_TRUE(torch::allclose(mine.exp().sum(-1), torch::ones({3}), 1e-5, 1e-6));
    EXPECT_TRUE(torch::allclose(mine.to(torch::kFloat64), reference, 1e-5, 1e-5)) << mine;
  }
  // Sample 2: class 1 has probability 1 on ranks 0 and 2 and underflows on rank 1, class 2 the
  // other way round: the mean gives them 2/3 and 1/3, not a log of 0.
  EXPECT_NEAR(combined[0][2][1].item<float>(), std::log(2.0 / 3.0), 1e-6);
  EXPECT_NEAR(combined[0][2][2].item<float>(), std::log(1.0 / 3.0), 1e-6);
}

TEST(SubnetEnsemble, OfEqualWorkersIsTheirOwnDistribution) {
  std::vector<torch::Tensor> combined(2);
  ASSERT_TRUE(test::run_ranks(2, "subnet_ensemble_equal", [&](dist::ProcessGroup& group) {
    combined[static_cast<size_t>(group.rank())] = sdp::log_mean_probabilities(group, logits_of(0));
  }));
  EXPECT_TRUE(torch::allclose(combined[0], torch::log_softmax(logits_of(0), -1), 1e-6, 1e-6));
}

// On one process (tessera eval of several checkpoints): the same as across workers.
TEST(SubnetEnsemble, OfOneProcesssMembersIsTheSameAsAcrossWorkers) {
  std::vector<torch::Tensor> combined(3);
  ASSERT_TRUE(test::run_ranks(3, "subnet_ensemble_local", [&](dist::ProcessGroup& group) {
    combined[static_cast<size_t>(group.rank())] =
        sdp::log_mean_probabilities(group, logits_of(group.rank()));
  }));
  const torch::Tensor local =
      sdp::log_mean_probabilities({logits_of(0), logits_of(1), logits_of(2)});
  EXPECT_TRUE(torch::allclose(local, combined[0], 1e-6, 1e-6)) << local << combined[0];
}

}  // namespace
