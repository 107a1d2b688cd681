// kernels::matmul against torch::matmul on the layouts attention produces: heads split off a
// wider tensor, transposed keys, more than one batch dimension.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "tessera/kernels/matmul.h"
#include "tessera/kernels/matmul_backend.h"

namespace tessera::kernels {
namespace {

struct Product {
  torch::Tensor c, da, db;
};

// c = matmul(make_a(a0), make_b(b0)) and the gradients of sum(c * r) for a fixed random r.
template <class MakeA, class MakeB>
Product run_matmul(MatmulBackend backend, const torch::Tensor& a0, const torch::Tensor& b0,
                   MakeA make_a, MakeB make_b) {
  const MatmulBackend previous = matmul_backend();
  set_matmul_backend(backend);
  const torch::Tensor a = a0.clone().requires_grad_(true), b = b0.clone().requires_grad_(true);
  const torch::Tensor c = kernels::matmul(make_a(a), make_b(b));
  torch::manual_seed(5);
  (c * torch::randn(c.sizes())).sum().backward();
  set_matmul_backend(previous);
  return {c.detach(), a.grad(), b.grad()};
}

template <class MakeA, class MakeB>
void expect_onednn_matches_blas(const torch::Tensor& a0, const torch::Tensor& b0, MakeA make_a,
                                MakeB make_b) {
  const Product onednn = run_matmul(MatmulBackend::Onednn, a0, b0, make_a, make_b);
  const Product blas = run_matmul(MatmulBackend::Blas, a0, b0, make_a, make_b);
  const torch::Tensor pairs[3][2] = {
      {onednn.c, blas.c}, {onednn.da, blas.da}, {onednn.db, blas.db}};
  for (const auto& pair : pairs) {
    const torch::Tensor &x = pair[0], &y = pair[1];
    ASSERT_EQ(x.sizes(), y.sizes());
    const double scale = std::max(1.0, y.abs().max().item<double>());
    EXPECT_LT((x - y).abs().max().item<double>(), 2e-5 * scale);
  }
}

const auto kSame = [](const torch::Tensor& t) { return t; };

TEST(Matmul, OnednnAgreesWithTorchMatmulOnAttentionsLayouts) {
  if (!onednn_available()) GTEST_SKIP() << "this build has no oneDNN";
  torch::manual_seed(1);
  const int64_t batch = 3, tokens = 7, heads = 4, head_dim = 8;
  // q and k as attention makes them: [B, T, 3 H hd] split into thirds, heads split off and moved
  // forward, k transposed.
  const torch::Tensor qkv = torch::randn({batch, tokens, 3 * heads * head_dim});
  auto heads_of = [&](const torch::Tensor& t, int64_t which) {
    return t.narrow(2, which * heads * head_dim, heads * head_dim)
        .view({batch, tokens, heads, head_dim})
        .transpose(1, 2);
  };
  expect_onednn_matches_blas(
      qkv, qkv, [&](const torch::Tensor& t) { return heads_of(t, 0); },
      [&](const torch::Tensor& t) { return heads_of(t, 1).transpose(-2, -1); });
  // Softmax weights [B, H, T, T] times the values, split off the same way.
  expect_onednn_matches_blas(torch::randn({batch, heads, tokens, tokens}), qkv, kSame,
                             [&](const torch::Tensor& t) { return heads_of(t, 2); });
  // Plain 2-D and 3-D products, and odd sizes.
  expect_onednn_matches_blas(torch::randn({5, 3}), torch::randn({3, 9}), kSame, kSame);
  expect_onednn_matches_blas(torch::randn({2, 33, 17}), torch::randn({2, 17, 1}), kSame, kSame);
}

TEST(Matmul, BroadcastingAndVectorsAreTorchMatmul) {
  const MatmulBackend previous = matmul_backend();
  if (onednn_available()) set_matmul_backend(MatmulBackend::Onednn);
  const torch::Tensor a = torch::randn({2, 3, 4}), b = torch::randn({4, 5}), v = torch::randn({4});
  EXPECT_TRUE(torch::equal(kernels::matmul(a, b), torch::matmul(a, b)));
  EXPECT_TRUE(torch::equal(kernels::matmul(a, v), torch::matmul(a, v)));
  set_matmul_backend(previous);
}

}  // namespace
}  // namespace tessera::kernels
