// kernels::batch_norm_relu against libtorch's batch norm, add and ReLU: the same output, input,
// weight, bias and residual gradients within float rounding, the same running statistics and
// batch count, NaNs kept, and libtorch's own ops wherever the fused path does not apply.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>
#include <vector>

#include "tessera/kernels/batch_norm_relu.h"

namespace tessera::kernels {
namespace batch_norm_relu_test {

struct Result {
  torch::Tensor y, dx, dweight, dbias, dresidual, running_mean, running_var, batches;
};

// Two forwards in training mode (the running statistics move twice), and the gradients of the
// second against a fixed random upstream gradient.
Result run(bool fused, const torch::Tensor& x0, const torch::Tensor& residual0,
           c10::optional<double> momentum) {
  torch::manual_seed(11);
  torch::nn::BatchNorm2d bn(torch::nn::BatchNorm2dOptions(x0.size(1)).momentum(momentum));
  {
    torch::NoGradGuard no_grad;
    bn->weight.uniform_(0.5, 1.5);
    bn->bias.uniform_(-0.5, 0.5);
  }
  const torch::Tensor x = x0.clone().requires_grad_(true);
  const torch::Tensor residual =
      residual0.defined() ? residual0.clone().requires_grad_(true) : torch::Tensor();
  const auto reference = [&] {
    const torch::Tensor normalized = bn(x);
    return torch::relu(residual.defined() ? normalized + residual : normalized);
  };
  torch::Tensor y;
  for (int step = 0; step < 2; ++step) y = fused ? batch_norm_relu(x, bn, residual) : reference();
  (y * torch::randn(y.sizes())).sum().backward();
  return {y.detach(),
          x.grad(),
          bn->weight.grad(),
          bn->bias.grad(),
          residual.defined() ? residual.grad() : torch::Tensor(),
          bn->running_mean.clone(),
          bn->running_var.clone(),
          bn->num_batches_tracked.clone()};
}

void expect_close(const torch::Tensor& a, const torch::Tensor& b, const char* what) {
  ASSERT_EQ(a.defined(), b.defined()) << what;
  if (!a.defined()) return;
  const double scale = std::max(1.0, b.abs().max().item<double>());
  EXPECT_LT((a - b).abs().max().item<double>(), 5e-5 * scale) << what;
}

void expect_same_as_libtorch(const torch::Tensor& x, const torch::Tensor& residual,
                             c10::optional<double> momentum = 0.1) {
  const Result fused = run(true, x, residual, momentum);
  const Result reference = run(false, x, residual, momentum);
  expect_close(fused.y, reference.y, "output");
  expect_close(fused.dx, reference.dx, "input gradient");
  expect_close(fused.dweight, reference.dweight, "weight gradient");
  expect_close(fused.dbias, reference.dbias, "bias gradient");
  expect_close(fused.dresidual, reference.dresidual, "residual gradient");
  expect_close(fused.running_mean, reference.running_mean, "running mean");
  expect_close(fused.running_var, reference.running_var, "running variance");
  EXPECT_TRUE(torch::equal(fused.batches, reference.batches));
}

TEST(BatchNormRelu, MatchesLibtorchOnResnetShapesWithAndWithoutResidual) {
  torch::manual_seed(1);
  // resnet-20's three levels at a small batch, a plane shorter than the 16 lanes, an odd one.
  for (const auto& shape : std::vector<std::vector<int64_t>>{
           {8, 8, 32, 32}, {8, 16, 16, 16}, {8, 32, 8, 8}, {5, 3, 3, 3}, {2, 7, 5, 7}}) {
    SCOPED_TRACE(torch::IntArrayRef(shape));
    const torch::Tensor x = torch::randn(shape) * 3 + 1;
    expect_same_as_libtorch(x, torch::Tensor());
    expect_same_as_libtorch(x, torch::randn(shape));
  }
}

TEST(BatchNormRelu, CumulativeAveragingAndALargeMeanAgainstTheSpread) {
  torch::manual_seed(2);
  // momentum unset: the running statistics are the cumulative average (1 / batches).
  expect_same_as_libtorch(torch::randn({4, 6, 9, 9}), torch::Tensor(), c10::nullopt);
  // A mean 10^4 times the standard deviation: the shifted sums keep the variance.
  const torch::Tensor offset = torch::randn({4, 6, 9, 9}) * 0.01 + 100;
  const Result fused = run(true, offset, torch::Tensor(), 0.1);
  const Result reference = run(false, offset, torch::Tensor(), 0.1);
  EXPECT_LT((fused.running_var - reference.running_var).abs().max().item<double>(), 1e-6);
  // float cannot resolve these inputs finely (100 +- 6e-6 against a spread of 0.01), so both
  // outputs are measured against the normalization computed in double.
  torch::nn::BatchNorm2d exact(torch::nn::BatchNorm2dOptions(6).momentum(0.1));
  torch::manual_seed(11);  // the weights run() draws, drawn in float, then widened
  {
    torch::NoGradGuard no_grad;
    exact->weight.uniform_(0.5, 1.5);
    exact->bias.uniform_(-0.5, 0.5);
  }
  exact->to(torch::kDouble);
  const torch::Tensor truth = torch::relu(exact(offset.to(torch::kDouble))).to(torch::kFloat);
  const double fused_error = (fused.y - truth).abs().max().item<double>();
  const double libtorch_error = (reference.y - truth).abs().max().item<double>();
  EXPECT_LE(fused_error, libtorch_error + 1e-5);
  EXPECT_LT(fused_error, 1e-3);
}

TEST(BatchNormRelu, ANanStaysANan) {
  torch::nn::BatchNorm2d bn(4);
  torch::Tensor x = torch::randn({2, 4, 3, 3});
  x[1][2][0][0] = std::numeric_limits<float>::quiet_NaN();
  const torch::Tensor y = batch_norm_relu(x, bn);
  EXPECT_TRUE(y.select(1, 2).isnan().all().item<bool>());  // the channel's statistics are NaN
  EXPECT_FALSE(y.select(1, 1).isnan().any().item<bool>());
}

TEST(BatchNormRelu, EverythingElseIsLibtorchBitForBit) {
  torch::manual_seed(3);
  const torch::Tensor x = torch::randn({4, 3, 5, 5}), r = torch::randn({4, 3, 5, 5});
  torch::nn::BatchNorm2d fused(3), reference(3);
  const auto libtorch = [&](const torch::Tensor& input, const torch::Tensor& residual) {
    return torch::relu(reference(input) + residual);
  };
  // Evaluation mode (running statistics), a bf16 input, a non-contiguous one.
  fused->eval();
  reference->eval();
  EXPECT_TRUE(torch::equal(batch_norm_relu(x, fused, r), libtorch(x, r)));
  fused->train();
  reference->train();
  const torch::Tensor half = x.to(torch::kBFloat16);
  EXPECT_TRUE(torch::equal(batch_norm_relu(half, fused, r), libtorch(half, r)));
  const torch::Tensor strided = x.transpose(2, 3);
  EXPECT_TRUE(torch::equal(batch_norm_relu(strided, fused, r), libtorch(strided, r)));
  EXPECT_TRUE(torch::equal(fused->running_mean, reference->running_mean));
  EXPECT_TRUE(torch::equal(fused->num_batches_tracked, reference->num_batches_tracked));
}

}  // namespace batch_norm_relu_test
}  // namespace tessera::kernels
