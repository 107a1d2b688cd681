// kernels::linear against torch::linear: the oneDNN path's forward and gradients agree within
// float tolerance for every input layout the models produce, and every case it does not take
// (autocast, other dtypes, the BLAS choice) is torch::linear itself.
#include <array>
#include <functional>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "tessera/core/error.h"
#include "tessera/core/torch_compat.h"
#include "tessera/kernels/bf16_kernel.h"
#include "tessera/kernels/linear.h"
#include "tessera/kernels/matmul_backend.h"

namespace tessera::kernels {
namespace {

// Sets the process-wide kernel for one test and puts the previous one back.
class BackendScope {
 public:
  explicit BackendScope(MatmulBackend backend) : previous_(matmul_backend()) {
    set_matmul_backend(backend);
  }
  ~BackendScope() { set_matmul_backend(previous_); }

 private:
  MatmulBackend previous_;
};

struct Grads {
  torch::Tensor y, dx, dw, db;
};

using View = std::function<torch::Tensor(const torch::Tensor&)>;
const View kWhole = [](const torch::Tensor& t) { return t; };

// Output and gradients of sum(kernels::linear(view(x), w, b) * r) for a fixed random r; the input's
// gradient is that of the leaf x the view is taken from.
Grads run_linear(const torch::Tensor& x0, const torch::Tensor& w0, const torch::Tensor& b0,
                 const View& view = kWhole) {
  const torch::Tensor x = x0.detach().clone().requires_grad_(true);
  const torch::Tensor w = w0.detach().clone().requires_grad_(true);
  const torch::Tensor b = b0.defined() ? b0.detach().clone().requires_grad_(true) : b0;
  const torch::Tensor y = kernels::linear(view(x), w, b);
  torch::manual_seed(7);
  (y * torch::randn(y.sizes())).sum().backward();
  return {y.detach(), x.grad(), w.grad(), b.defined() ? b.grad() : torch::Tensor()};
}

void expect_close(const torch::Tensor& a, const torch::Tensor& b, const char* what) {
  ASSERT_EQ(a.defined(), b.defined()) << what;
  if (!a.defined()) return;
  ASSERT_EQ(a.sizes(), b.sizes()) << what;
  const double scale = std::max(1.0, b.abs().max().item<double>());
  EXPECT_LT((a - b).abs().max().item<double>(), 2e-5 * scale) << what;
}

void expect_onednn_matches_blas(const torch::Tensor& x, const torch::Tensor& w,
                                const torch::Tensor& b, const View& view = kWhole) {
  Grads onednn, blas;
  {
    BackendScope scope(MatmulBackend::Onednn);
    onednn = run_linear(x, w, b, view);
  }
  {
    BackendScope scope(MatmulBackend::Blas);
    blas = run_linear(x, w, b, view);
  }
  expect_close(onednn.y, blas.y, "output");
  expect_close(onednn.dx, blas.dx, "input gradient");
  expect_close(onednn.dw, blas.dw, "weight gradient");
  expect_close(onednn.db, blas.db, "bias gradient");
}

#define SKIP_WITHOUT_ONEDNN() \
  if (!onednn_available()) GTEST_SKIP() << "this build has no oneDNN"

TEST(Linear, OnednnAgreesWithTorchLinearForwardAndBackwardOnEveryShapeTheModelsUse) {
  SKIP_WITHOUT_ONEDNN();
  torch::manual_seed(1);
  // {rows, in, out}: a batch of the MLP, a ViT's tokens, one row, odd sizes.
  const std::vector<std::array<int64_t, 3>> shapes = {
      {128, 784, 1024}, {392, 128, 384}, {1, 17, 5}, {33, 1, 7}, {5, 64, 1}, {127, 255, 129}};
  for (const auto& [rows, in, out] : shapes) {
    SCOPED_TRACE(std::to_string(rows) + "x" + std::to_string(in) + "x" + std::to_string(out));
    const torch::Tensor x = torch::randn({rows, in});
    const torch::Tensor w = torch::randn({out, in}) / std::sqrt(static_cast<double>(in));
    expect_onednn_matches_blas(x, w, torch::randn({out}));
    expect_onednn_matches_blas(x, w, torch::Tensor());
  }
}

TEST(Linear, OnednnTakesBatchedAndNonContiguousInputs) {
  SKIP_WITHOUT_ONEDNN();
  torch::manual_seed(2);
  const torch::Tensor w = torch::randn({24, 16});
  const torch::Tensor b = torch::randn({24});
  expect_onednn_matches_blas(torch::randn({4, 7, 16}), w, b);     // [batch, tokens, dim]
  expect_onednn_matches_blas(torch::randn({2, 3, 5, 16}), w, b);  // more leading dimensions
  expect_onednn_matches_blas(torch::randn({16}), w, b);           // a single vector
  // A transposed matrix, a column slice, and a transposed [batch, tokens] view as attention's
  // heads produce before their reshape.
  expect_onednn_matches_blas(torch::randn({16, 9}), w, b, [](auto& t) { return t.t(); });
  expect_onednn_matches_blas(torch::randn({9, 32}), w, b,
                             [](auto& t) { return t.narrow(1, 3, 16); });
  expect_onednn_matches_blas(torch::randn({7, 4, 16}), w, b,
                             [](auto& t) { return t.transpose(0, 1); });
}

TEST(Linear, OnlyTheGradientsThatAreNeededAreComputed) {
  SKIP_WITHOUT_ONEDNN();
  BackendScope scope(MatmulBackend::Onednn);
  const torch::Tensor w = torch::randn({8, 4}, torch::requires_grad());
  const torch::Tensor x = torch::randn({3, 4});  // data: no gradient
  kernels::linear(x, w).sum().backward();
  ASSERT_TRUE(w.grad().defined());
  EXPECT_TRUE(torch::allclose(w.grad(), torch::ones({3, 8}).t().mm(x)));
  // Frozen weights: only the input's gradient.
  const torch::Tensor frozen = torch::randn({8, 4});
  const torch::Tensor input = torch::randn({3, 4}, torch::requires_grad());
  kernels::linear(input, frozen).sum().backward();
  EXPECT_TRUE(torch::allclose(input.grad(), torch::ones({3, 8}).mm(frozen)));
  // Under no_grad there is no graph at all.
  torch::NoGradGuard no_grad;
  EXPECT_FALSE(kernels::linear(input, w).requires_grad());
}

TEST(Linear, OnednnIsDeterministic) {
  SKIP_WITHOUT_ONEDNN();
  torch::manual_seed(3);
  const torch::Tensor x = torch::randn({256, 300}), w = torch::randn({200, 300});
  const torch::Tensor b = torch::randn({200});
  BackendScope scope(MatmulBackend::Onednn);
  const Grads first = run_linear(x, w, b);
  const Grads second = run_linear(x, w, b);
  EXPECT_TRUE(torch::equal(first.y, second.y));
  EXPECT_TRUE(torch::equal(first.dx, second.dx));
  EXPECT_TRUE(torch::equal(first.dw, second.dw));
}

TEST(Linear, EverythingElseIsTorchLinearBitForBit) {
  torch::manual_seed(4);
  const torch::Tensor x = torch::randn({16, 32}), w = torch::randn({8, 32}), b = torch::randn({8});
  {
    BackendScope scope(MatmulBackend::Blas);
    EXPECT_TRUE(torch::equal(kernels::linear(x, w, b), torch::linear(x, w, b)));
  }
  if (!onednn_available()) return;
  BackendScope scope(MatmulBackend::Onednn);
  // Other dtypes.
  const torch::Tensor xd = x.to(torch::kDouble), wd = w.to(torch::kDouble);
  EXPECT_TRUE(torch::equal(kernels::linear(xd, wd), torch::linear(xd, wd)));
  // Under autocast with --bf16-kernel native the product is autocast's (bf16 out), as with
  // torch::linear (fp32-units: Bf16ProductsTest).
  const Bf16Kernel bf16 = bf16_kernel();
  set_bf16_kernel(Bf16Kernel::Native);
  compat::set_autocast(/*cuda=*/false, true, torch::kBFloat16);
  const torch::Tensor y = kernels::linear(x, w, b);
  const torch::Tensor expected = torch::linear(x, w, b);
  compat::set_autocast(/*cuda=*/false, false, torch::kBFloat16);
  set_bf16_kernel(bf16);
  EXPECT_EQ(y.scalar_type(), torch::kBFloat16);
  EXPECT_TRUE(torch::equal(y, expected));
}

TEST(MatmulBackend, NamesParseAndAutoFollowsTheCpu) {
  EXPECT_EQ(parse_matmul_backend("blas"), MatmulBackend::Blas);
  EXPECT_EQ(parse_matmul_backend("auto"), auto_matmul_backend());
  EXPECT_STREQ(matmul_backend_name(MatmulBackend::Blas), "blas");
  EXPECT_STREQ(matmul_backend_name(MatmulBackend::Onednn), "onednn");
  EXPECT_THROW(parse_matmul_backend("mkl"), UsageError);
  if (onednn_available()) {
    EXPECT_EQ(parse_matmul_backend("onednn"), MatmulBackend::Onednn);
  } else {
    EXPECT_THROW(parse_matmul_backend("onednn"), UsageError);
    EXPECT_EQ(auto_matmul_backend(), MatmulBackend::Blas);
  }
}

}  // namespace
}  // namespace tessera::kernels
