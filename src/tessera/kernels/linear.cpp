#include "tessera/kernels/linear.h"

#include "tessera/core/torch_compat.h"
#include "tessera/kernels/bf16_products.h"
#include "tessera/kernels/onednn_product.h"

namespace tessera::kernels {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

// y = x W^T + b with x [M, K] on oneDNN; backward dx = dy W, dW = dy^T x, db = sum_rows dy, each
// computed only when its input needs it. A layer without bias passes
// compat::absent_tensor_argument() as b.
struct OnednnLinear : torch::autograd::Function<OnednnLinear> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& weight, const torch::Tensor& bias) {
    ctx->save_for_backward({x, weight});
    return onednn_product(x, weight.t(), bias.numel() > 0 ? bias : torch::Tensor());
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor& x = saved[0];
    const torch::Tensor& weight = saved[1];
    const torch::Tensor& dy = grads[0];
    torch::Tensor dx, dweight, dbias;
    if (ctx->needs_input_grad(0)) dx = onednn_product(dy, weight);
    if (ctx->needs_input_grad(1)) dweight = onednn_product(dy.t(), x);
    if (ctx->needs_input_grad(2)) dbias = dy.sum(0);
    return {dx, dweight, dbias};
  }
};

}  // namespace

torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& weight,
                     const torch::Tensor& bias) {
  const bool fp32_on_onednn = onednn_computes({&x, &weight, &bias});
  const bool bf16_on_fp32 = !fp32_on_onednn && bf16_on_fp32_units({&x, &weight, &bias});
  if ((!fp32_on_onednn && !bf16_on_fp32) || x.dim() == 0 || weight.dim() != 2)
    return torch::linear(x, weight, bias);
  TORCH_CHECK(x.size(-1) == weight.size(1), "linear: input width ", x.size(-1),
              " does not match the weight's ", weight.size(1));
  const torch::Tensor rows = x.reshape({-1, x.size(-1)});
  const torch::Tensor& b = bias.defined() ? bias : compat::absent_tensor_argument();
  const torch::Tensor y =
      fp32_on_onednn ? OnednnLinear::apply(rows, weight, b) : bf16_linear(rows, weight, b);
  std::vector<int64_t> shape = x.sizes().vec();
  shape.back() = weight.size(0);
  return y.view(shape);
}

}  // namespace tessera::kernels
