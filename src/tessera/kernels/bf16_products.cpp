#include "tessera/kernels/bf16_products.h"

#include "tessera/core/torch_compat.h"
#include "tessera/kernels/bf16_kernel.h"
#include "tessera/kernels/matmul_backend.h"
#include "tessera/kernels/onednn_matmul.h"
#include "tessera/kernels/onednn_product.h"

namespace tessera::kernels {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

// Keeps autocast from turning the fp32 operations below back into bf16 ones.
struct NoCpuAutocast {
  c10::impl::ExcludeDispatchKeyGuard guard{c10::DispatchKey::AutocastCPU};
};

torch::Tensor to_bf16(const torch::Tensor& t) {
  return t.to(torch::kBFloat16);
}
// The fp32 tensor holding t's bf16 rounding: the values a bf16 kernel would multiply.
torch::Tensor rounded(const torch::Tensor& t) {
  return to_bf16(t).to(torch::kFloat);
}
// An input's gradient in the input's dtype (saved as "<name>_fp32").
torch::Tensor in_dtype_of(const torch::Tensor& grad, AutogradContext* ctx, const char* name) {
  return ctx->saved_data[name].toBool() ? grad : to_bf16(grad);
}

// a . b (+ bias) of fp32 tensors on the fp32 kernel the process chose.
torch::Tensor fp32_product(const torch::Tensor& a, const torch::Tensor& b,
                           const torch::Tensor& bias = {}) {
  if (matmul_backend() == MatmulBackend::Onednn && a.dim() <= StridedView::kMaxRank)
    return onednn_product(a, b, bias);
  NoCpuAutocast fp32;
  torch::Tensor c = torch::matmul(a, b);
  return bias.defined() ? c.add_(bias) : c;
}

struct Bf16Linear : torch::autograd::Function<Bf16Linear> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& weight, const torch::Tensor& bias) {
    // bf16 copies are what backward keeps, as autocast does (a weight stacked from several
    // layers is not a parameter that is kept anyway).
    const torch::Tensor x16 = to_bf16(x), w16 = to_bf16(weight);
    ctx->save_for_backward({x16, w16});
    ctx->saved_data["x_fp32"] = x.scalar_type() == torch::kFloat;
    const torch::Tensor b = bias.numel() > 0 ? rounded(bias) : torch::Tensor();
    return to_bf16(fp32_product(x16.to(torch::kFloat), w16.to(torch::kFloat).t(), b));
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor dy = grads[0].to(torch::kFloat);
    torch::Tensor dx, dweight, dbias;
    if (ctx->needs_input_grad(0))
      dx = in_dtype_of(fp32_product(dy, saved[1].to(torch::kFloat)), ctx, "x_fp32");
    if (ctx->needs_input_grad(1)) dweight = fp32_product(dy.t(), saved[0].to(torch::kFloat));
    if (ctx->needs_input_grad(2)) dbias = dy.sum(0);
    return {dx, dweight, dbias};
  }
};

struct Bf16Matmul : torch::autograd::Function<Bf16Matmul> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& a,
                               const torch::Tensor& b) {
    const torch::Tensor a16 = to_bf16(a), b16 = to_bf16(b);
    ctx->save_for_backward({a16, b16});
    ctx->saved_data["a_fp32"] = a.scalar_type() == torch::kFloat;
    ctx->saved_data["b_fp32"] = b.scalar_type() == torch::kFloat;
    return to_bf16(fp32_product(a16.to(torch::kFloat), b16.to(torch::kFloat)));
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor dc = grads[0].to(torch::kFloat);
    torch::Tensor da, db;
    if (ctx->needs_input_grad(0))
      da = in_dtype_of(fp32_product(dc, saved[1].to(torch::kFloat).transpose(-2, -1)), ctx,
                       "a_fp32");
    if (ctx->needs_input_grad(1))
      db = in_dtype_of(fp32_product(saved[0].to(torch::kFloat).transpose(-2, -1), dc), ctx,
                       "b_fp32");
    return {da, db};
  }
};

struct Bf16Conv2d : torch::autograd::Function<Bf16Conv2d> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& weight, const torch::Tensor& bias,
                               const Conv2dGeometry& g) {
    const torch::Tensor x16 = to_bf16(x), w16 = to_bf16(weight);
    ctx->save_for_backward({x16, w16});
    ctx->saved_data["x_fp32"] = x.scalar_type() == torch::kFloat;
    ctx->saved_data["has_bias"] = bias.numel() > 0;
    ctx->saved_data["stride"] = g.stride;
    ctx->saved_data["padding"] = g.padding;
    ctx->saved_data["dilation"] = g.dilation;
    ctx->saved_data["groups"] = g.groups;
    NoCpuAutocast fp32;
    const torch::Tensor b = bias.numel() > 0 ? rounded(bias) : torch::Tensor();
    return to_bf16(torch::conv2d(x16.to(torch::kFloat), w16.to(torch::kFloat), b, g.stride,
                                 g.padding, g.dilation, g.groups));
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor weight = saved[1].to(torch::kFloat);
    const bool has_bias = ctx->saved_data["has_bias"].toBool();
    const std::vector<int64_t> bias_sizes{weight.size(0)};
    NoCpuAutocast fp32;
    auto [dx, dweight, dbias] = at::convolution_backward(
        grads[0].to(torch::kFloat), saved[0].to(torch::kFloat), weight,
        has_bias ? at::OptionalIntArrayRef(bias_sizes) : c10::nullopt,
        ctx->saved_data["stride"].toIntVector(), ctx->saved_data["padding"].toIntVector(),
        ctx->saved_data["dilation"].toIntVector(), /*transposed=*/false, {0, 0},
        ctx->saved_data["groups"].toInt(),
        {ctx->needs_input_grad(0), ctx->needs_input_grad(1), has_bias && ctx->needs_input_grad(2)});
    if (dx.defined()) dx = in_dtype_of(dx, ctx, "x_fp32");
    return {dx, dweight, dbias, torch::Tensor()};
  }
};

}  // namespace

bool bf16_on_fp32_units(std::initializer_list<const torch::Tensor*> operands) {
  if (bf16_kernel() != Bf16Kernel::Fp32Units || !compat::autocast_enabled(/*cuda=*/false) ||
      compat::autocast_dtype(/*cuda=*/false) != torch::kBFloat16)
    return false;
  for (const torch::Tensor* t : operands)
    if (t->defined() &&
        (!t->device().is_cpu() || t->numel() == 0 ||
         (t->scalar_type() != torch::kFloat && t->scalar_type() != torch::kBFloat16)))
      return false;
  return true;
}

torch::Tensor bf16_linear(const torch::Tensor& x, const torch::Tensor& weight,
                          const torch::Tensor& bias) {
  return Bf16Linear::apply(x, weight, bias);
}

torch::Tensor bf16_matmul(const torch::Tensor& a, const torch::Tensor& b) {
  return Bf16Matmul::apply(a, b);
}

torch::Tensor bf16_conv2d(const torch::Tensor& x, const torch::Tensor& weight,
                          const torch::Tensor& bias, const Conv2dGeometry& geometry) {
  return Bf16Conv2d::apply(x, weight, bias, geometry);
}

}  // namespace tessera::kernels
