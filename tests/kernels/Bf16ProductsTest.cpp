// --bf16-kernel fp32-units: kernels::linear, kernels::matmul and kernels::conv2d under bf16
// autocast compute what a bf16 kernel computes -- the product of the bf16-rounded operands,
// summed in fp32, rounded to bf16 -- on either fp32 kernel; their gradients are the fp32
// gradients of that product; --bf16-kernel native leaves everything to autocast.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "tessera/core/cpu_flags.h"
#include "tessera/core/error.h"
#include "tessera/core/torch_compat.h"
#include "tessera/kernels/bf16_kernel.h"
#include "tessera/kernels/conv2d.h"
#include "tessera/kernels/linear.h"
#include "tessera/kernels/matmul.h"
#include "tessera/kernels/matmul_backend.h"

namespace tessera::kernels {
namespace {

// bf16 autocast on the CPU with the given kernels for one test; everything is put back after.
class Bf16Scope {
 public:
  Bf16Scope(Bf16Kernel kernel, MatmulBackend backend)
      : kernel_(bf16_kernel()), backend_(matmul_backend()) {
    set_bf16_kernel(kernel);
    set_matmul_backend(backend);
    compat::set_autocast(/*cuda=*/false, true, torch::kBFloat16);
  }
  ~Bf16Scope() {
    compat::set_autocast(/*cuda=*/false, false, torch::kBFloat16);
    set_bf16_kernel(kernel_);
    set_matmul_backend(backend_);
  }

 private:
  Bf16Kernel kernel_;
  MatmulBackend backend_;
};

std::vector<MatmulBackend> fp32_kernels() {
  if (onednn_available()) return {MatmulBackend::Blas, MatmulBackend::Onednn};
  return {MatmulBackend::Blas};
}

// The fp32 tensor holding t's bf16 rounding, as a fresh leaf that wants a gradient.
torch::Tensor rounded_leaf(const torch::Tensor& t) {
  return t.to(torch::kBFloat16).to(torch::kFloat).detach().requires_grad_(true);
}

// A bf16 result: within one bf16 rounding (relative 2^-8) of the fp32 reference, plus slack for
// the order of the fp32 sums.
void expect_bf16_of(const torch::Tensor& got, const torch::Tensor& reference, const char* what) {
  ASSERT_EQ(got.scalar_type(), torch::kBFloat16) << what;
  ASSERT_EQ(got.sizes(), reference.sizes()) << what;
  const torch::Tensor error = (got.to(torch::kFloat) - reference).abs();
  const torch::Tensor bound = reference.abs() * (1.0 / 128) + 1e-5 * reference.abs().max();
  EXPECT_TRUE((error <= bound).all().item<bool>())
      << what << ": worst error " << (error - bound).max().item<double>() << " over the bound";
}

void expect_fp32_close(const torch::Tensor& got, const torch::Tensor& reference,
                       torch::ScalarType dtype, const char* what) {
  ASSERT_TRUE(got.defined()) << what;
  ASSERT_EQ(got.scalar_type(), dtype) << what;
  const double scale = std::max(1.0, reference.abs().max().item<double>());
  const double tolerance = dtype == torch::kFloat ? 2e-5 : 1.0 / 64;
  EXPECT_LT((got.to(torch::kFloat) - reference).abs().max().item<double>(), tolerance * scale)
      << what;
}

TEST(Bf16Products, LinearIsTheProductOfRoundedOperandsWithFp32Gradients) {
  torch::manual_seed(1);
  const torch::Tensor x0 = torch::randn({96, 48}), w0 = torch::randn({40, 48}) / 7;
  const torch::Tensor b0 = torch::randn({40});
  // The upstream gradient reaches the bf16 output rounded to bf16.
  const torch::Tensor r = torch::randn({96, 40}).to(torch::kBFloat16).to(torch::kFloat);
  const torch::Tensor xr = rounded_leaf(x0), wr = rounded_leaf(w0), br = rounded_leaf(b0);
  const torch::Tensor reference = torch::linear(xr, wr, br);
  (reference * r).sum().backward();
  for (const MatmulBackend backend : fp32_kernels()) {
    SCOPED_TRACE(matmul_backend_name(backend));
    for (const torch::ScalarType input : {torch::kFloat, torch::kBFloat16}) {
      const torch::Tensor x = x0.to(input).detach().clone().requires_grad_(true);
      const torch::Tensor w = w0.clone().requires_grad_(true), b = b0.clone().requires_grad_(true);
      torch::Tensor y;
      {
        Bf16Scope bf16(Bf16Kernel::Fp32Units, backend);
        y = kernels::linear(x, w, b);
      }
      expect_bf16_of(y, reference.detach(), "output");
      (y.to(torch::kFloat) * r).sum().backward();
      expect_fp32_close(x.grad(), xr.grad(), input, "input gradient");
      expect_fp32_close(w.grad(), wr.grad(), torch::kFloat, "weight gradient");
      expect_fp32_close(b.grad(), br.grad(), torch::kFloat, "bias gradient");
    }
  }
}

TEST(Bf16Products, BatchedMatmulOnAttentionsLayouts) {
  torch::manual_seed(2);
  // Heads split off [batch, tokens, dim] and keys transposed, as attention multiplies them.
  const torch::Tensor q0 = torch::randn({3, 10, 32}), k0 = torch::randn({3, 12, 32});
  const auto heads = [](const torch::Tensor& t) {
    return t.view({t.size(0), t.size(1), 4, 8}).transpose(1, 2);
  };
  const torch::Tensor r = torch::randn({3, 4, 10, 12}).to(torch::kBFloat16).to(torch::kFloat);
  const torch::Tensor qr = rounded_leaf(q0), kr = rounded_leaf(k0);
  const torch::Tensor reference = torch::matmul(heads(qr), heads(kr).transpose(-2, -1));
  (reference * r).sum().backward();
  for (const MatmulBackend backend : fp32_kernels()) {
    SCOPED_TRACE(matmul_backend_name(backend));
    const torch::Tensor q = q0.to(torch::kBFloat16).detach().requires_grad_(true);
    const torch::Tensor k = k0.clone().requires_grad_(true);
    torch::Tensor c;
    {
      Bf16Scope bf16(Bf16Kernel::Fp32Units, backend);
      c = kernels::matmul(heads(q), heads(k).transpose(-2, -1));
    }
    expect_bf16_of(c, reference.detach(), "scores");
    (c.to(torch::kFloat) * r).sum().backward();
    expect_fp32_close(q.grad(), qr.grad(), torch::kBFloat16, "left gradient");
    expect_fp32_close(k.grad(), kr.grad(), torch::kFloat, "right gradient");
  }
}

TEST(Bf16Products, ConvolutionWithAndWithoutBiasStridedAndPadded) {
  torch::manual_seed(3);
  for (const bool bias : {false, true}) {
    SCOPED_TRACE(bias ? "bias" : "no bias");
    torch::nn::Conv2d conv(torch::nn::Conv2dOptions(3, 8, 3).stride(2).padding(1).bias(bias));
    const torch::Tensor x0 = torch::randn({4, 3, 9, 9});
    const torch::Tensor r = torch::randn({4, 8, 5, 5}).to(torch::kBFloat16).to(torch::kFloat);
    const torch::Tensor xr = rounded_leaf(x0), wr = rounded_leaf(conv->weight);
    const torch::Tensor br = bias ? rounded_leaf(conv->bias) : torch::Tensor();
    const torch::Tensor reference = torch::conv2d(xr, wr, br, 2, 1);
    (reference * r).sum().backward();
    const torch::Tensor x = x0.clone().requires_grad_(true);
    torch::Tensor y;
    {
      Bf16Scope bf16(Bf16Kernel::Fp32Units, auto_matmul_backend());
      y = kernels::conv2d(x, conv);
    }
    expect_bf16_of(y, reference.detach(), "output");
    (y.to(torch::kFloat) * r).sum().backward();
    expect_fp32_close(x.grad(), xr.grad(), torch::kFloat, "input gradient");
    expect_fp32_close(conv->weight.grad(), wr.grad(), torch::kFloat, "weight gradient");
    if (bias) expect_fp32_close(conv->bias.grad(), br.grad(), torch::kFloat, "bias gradient");
  }
}

TEST(Bf16Products, AgreesWithTheNativeKernelsWithinBf16Rounding) {
  torch::manual_seed(4);
  const torch::Tensor x = torch::randn({64, 32}), w = torch::randn({16, 32}) / 5;
  torch::nn::Conv2d conv(torch::nn::Conv2dOptions(2, 4, 3).padding(1));
  const torch::Tensor image = torch::randn({2, 2, 6, 6});
  torch::Tensor linear[2], convolved[2];
  for (const Bf16Kernel kernel : {Bf16Kernel::Native, Bf16Kernel::Fp32Units}) {
    Bf16Scope bf16(kernel, auto_matmul_backend());
    linear[kernel == Bf16Kernel::Fp32Units] = kernels::linear(x, w).to(torch::kFloat);
    convolved[kernel == Bf16Kernel::Fp32Units] = kernels::conv2d(image, conv).to(torch::kFloat);
  }
  EXPECT_TRUE(torch::allclose(linear[1], linear[0], 1.0 / 64, 1e-2));
  EXPECT_TRUE(torch::allclose(convolved[1], convolved[0], 1.0 / 64, 1e-2));
}

TEST(Bf16Products, NativeIsAutocastBitForBitAndFp32IsUntouched) {
  torch::manual_seed(5);
  const torch::Tensor x = torch::randn({8, 12}), w = torch::randn({6, 12});
  torch::nn::Conv2d conv(torch::nn::Conv2dOptions(2, 3, 3));
  const torch::Tensor image = torch::randn({1, 2, 5, 5});
  {
    Bf16Scope bf16(Bf16Kernel::Native, auto_matmul_backend());
    EXPECT_TRUE(torch::equal(kernels::linear(x, w), torch::linear(x, w)));
    EXPECT_TRUE(torch::equal(kernels::matmul(x, w.t()), torch::matmul(x, w.t())));
    EXPECT_TRUE(torch::equal(kernels::conv2d(image, conv), conv(image)));
  }
  // Outside autocast the fp32-units choice changes nothing: fp32 products stay fp32.
  const Bf16Kernel previous = bf16_kernel();
  set_bf16_kernel(Bf16Kernel::Fp32Units);
  EXPECT_EQ(kernels::linear(x, w).scalar_type(), torch::kFloat);
  EXPECT_TRUE(torch::equal(kernels::conv2d(image, conv), conv(image)));
  set_bf16_kernel(previous);
}

TEST(Bf16Products, MoreBatchDimensionsThanOnednnTakesRunOnTorchMatmul) {
  torch::manual_seed(7);
  const torch::Tensor a = torch::randn({2, 1, 2, 1, 2, 1, 3, 4}),
                      b = torch::randn({2, 1, 2, 1, 2, 1, 4, 5});
  const torch::Tensor reference = torch::matmul(a.to(torch::kBFloat16).to(torch::kFloat),
                                                b.to(torch::kBFloat16).to(torch::kFloat));
  Bf16Scope bf16(Bf16Kernel::Fp32Units, auto_matmul_backend());
  expect_bf16_of(kernels::matmul(a, b), reference, "8-dimensional product");
}

TEST(Bf16Products, SameInputsSameBits) {
  torch::manual_seed(6);
  const torch::Tensor x = torch::randn({50, 30}), w = torch::randn({20, 30});
  Bf16Scope bf16(Bf16Kernel::Fp32Units, auto_matmul_backend());
  EXPECT_TRUE(torch::equal(kernels::linear(x, w), kernels::linear(x, w)));
}

TEST(Bf16Kernel, NamesParseAndAutoFollowsTheCpusAmx) {
  EXPECT_EQ(parse_bf16_kernel("native"), Bf16Kernel::Native);
  EXPECT_EQ(parse_bf16_kernel("fp32-units"), Bf16Kernel::Fp32Units);
  EXPECT_EQ(parse_bf16_kernel("auto"), auto_bf16_kernel());
  EXPECT_EQ(auto_bf16_kernel(),
            cpu_lists_flag("amx_bf16") ? Bf16Kernel::Native : Bf16Kernel::Fp32Units);
  EXPECT_STREQ(bf16_kernel_name(Bf16Kernel::Fp32Units), "fp32-units");
  EXPECT_STREQ(bf16_kernel_name(Bf16Kernel::Native), "native");
  EXPECT_THROW(parse_bf16_kernel("amx"), UsageError);
}

}  // namespace
}  // namespace tessera::kernels
