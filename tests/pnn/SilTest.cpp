#include "tessera/pnn/sil.h"

#include <gtest/gtest.h>

#include "tessera/core/error.h"

namespace tessera::pnn {
namespace {

SilConfig sil(const std::string& generator, double kappa = 1.0, uint64_t seed = 3) {
  SilConfig config;
  config.generator = generator;
  config.kappa = kappa;
  config.seed = seed;
  return config;
}

TEST(Sil, IsDeterministicForASeedAndCut) {
  for (const auto& generator : sil_generator_names()) {
    const torch::Tensor a = make_sil(sil(generator), 10, {64}, 0);
    EXPECT_TRUE(a.equal(make_sil(sil(generator), 10, {64}, 0))) << generator;
    EXPECT_FALSE(a.equal(make_sil(sil(generator, 1.0, 4), 10, {64}, 0))) << generator;
    EXPECT_FALSE(a.equal(make_sil(sil(generator), 10, {64}, 1))) << generator;
  }
}

TEST(Sil, IsShapedLikeTheActivationAtTheCut) {
  EXPECT_EQ(make_sil(sil("uniform"), 10, {1024}, 0).sizes().vec(), (Shape{10, 1024}));
  EXPECT_EQ(make_sil(sil("gaussian"), 7, {16, 8, 8}, 0).sizes().vec(), (Shape{7, 16, 8, 8}));
  EXPECT_EQ(make_sil(sil("orthogonal"), 10, {17, 32}, 0).sizes().vec(), (Shape{10, 17, 32}));
  EXPECT_EQ(make_sil(sil("uniform"), 10, {1024}, 0).scalar_type(), torch::kFloat32);
}

TEST(Sil, UniformEntriesLieInZeroToKappa) {
  const torch::Tensor s = make_sil(sil("uniform", 2.5), 10, {4096}, 0);
  EXPECT_GE(s.min().item<float>(), 0.0f);
  EXPECT_LE(s.max().item<float>(), 2.5f);
  EXPECT_NEAR(s.mean().item<float>(), 1.25f, 0.05f);
}

TEST(Sil, GaussianEntriesHaveStandardDeviationKappa) {
  const torch::Tensor s = make_sil(sil("gaussian", 0.5), 10, {4096}, 0);
  EXPECT_NEAR(s.std().item<float>(), 0.5f, 0.02f);
  EXPECT_NEAR(s.mean().item<float>(), 0.0f, 0.02f);
}

TEST(Sil, OrthogonalRowsAreOrthogonalWithEntriesOfRmsKappa) {
  // Rows of norm kappa * sqrt(64): entries of root mean square kappa, as gaussian's.
  const torch::Tensor s = make_sil(sil("orthogonal", 3.0), 10, {8, 8}, 0).reshape({10, 64});
  const torch::Tensor gram = torch::matmul(s, s.t()) / (9.0 * 64.0);
  EXPECT_TRUE(torch::allclose(gram, torch::eye(10), 1e-5, 1e-5)) << gram;
  EXPECT_NEAR(s.pow(2).mean().sqrt().item<float>(), 3.0f, 1e-4f);
}

TEST(Sil, BadSettingsAreUsageErrors) {
  EXPECT_THROW(make_sil(sil("orthogonal"), 100, {64}, 0), UsageError);  // more classes than dims
  EXPECT_THROW(make_sil(sil("binary"), 10, {64}, 0), UsageError);
  EXPECT_THROW(make_sil(sil("uniform", 0.0), 10, {64}, 0), UsageError);
  EXPECT_THROW(make_sil(sil("uniform"), 0, {64}, 0), UsageError);
}

}  // namespace
}  // namespace tessera::pnn
