#include "tessera/models/rms_norm.h"

#include <gtest/gtest.h>

#include "tessera/metrics/memory_tracker.h"

namespace tessera::models {
namespace rms_norm_test {

torch::Tensor plain_rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps) {
  return x * torch::rsqrt(x.pow(2).mean(-1, /*keepdim=*/true) + eps) * weight;
}

TEST(RmsNormTest, ForwardIsBitIdenticalToThePlainExpression) {
  torch::manual_seed(1);
  const torch::Tensor x = torch::randn({3, 5, 8});
  const torch::Tensor weight = torch::randn({8});
  EXPECT_TRUE(torch::equal(rms_norm(x, weight, 1e-5), plain_rms_norm(x, weight, 1e-5)));
}

TEST(RmsNormTest, GradientsEqualAutogradOfThePlainExpression) {
  torch::manual_seed(2);
  const auto options = torch::TensorOptions().dtype(torch::kDouble);
  const torch::Tensor x0 = torch::randn({3, 5, 8}, options);
  const torch::Tensor w0 = torch::randn({8}, options);
  const torch::Tensor dy = torch::randn({3, 5, 8}, options);
  auto gradients = [&](bool own_backward) {
    torch::Tensor x = x0.clone().requires_grad_();
    torch::Tensor w = w0.clone().requires_grad_();
    const torch::Tensor y = own_backward ? rms_norm(x, w, 1e-3) : plain_rms_norm(x, w, 1e-3);
    y.backward(dy);
    return std::make_pair(x.grad(), w.grad());
  };
  const auto [dx, dw] = gradients(true);
  const auto [dx_plain, dw_plain] = gradients(false);
  EXPECT_TRUE(torch::allclose(dx, dx_plain, 1e-12, 1e-12));
  EXPECT_TRUE(torch::allclose(dw, dw_plain, 1e-12, 1e-12));
}

// What the autograd graph holds after the forward: one float per row (the input is the caller's),
// where the plain expression also holds the normalised input, a tensor as large as x.
TEST(RmsNormTest, KeepsOneInverseRootPerRowForBackward) {
  metrics::install_memory_tracker();
  const torch::Tensor x = torch::randn({64, 256}).requires_grad_();
  RmsNorm norm(256);
  auto retained = [&](bool own_backward) {
    const int64_t before = metrics::live_tensor_bytes();
    const torch::Tensor y = own_backward ? norm(x) : plain_rms_norm(x, norm->weight, 1e-5);
    return metrics::live_tensor_bytes() - before - metrics::tensor_bytes(y);
  };
  EXPECT_LE(retained(true), 64 * 4);
  EXPECT_GE(retained(false), metrics::tensor_bytes(x));  // the measurement can tell them apart
}

}  // namespace rms_norm_test
}  // namespace tessera::models
