#include "tessera/kernels/matmul.h"

#include "tessera/kernels/bf16_products.h"
#include "tessera/kernels/onednn_product.h"

namespace tessera::kernels {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

// c = a b on oneDNN; backward da = dc b^T, db = a^T dc (transposes as views, read in place).
struct OnednnMatmul : torch::autograd::Function<OnednnMatmul> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& a,
                               const torch::Tensor& b) {
    ctx->save_for_backward({a, b});
    return onednn_product(a, b);
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor& dc = grads[0];
    torch::Tensor da, db;
    if (ctx->needs_input_grad(0)) da = onednn_product(dc, saved[1].transpose(-2, -1));
    if (ctx->needs_input_grad(1)) db = onednn_product(saved[0].transpose(-2, -1), dc);
    return {da, db};
  }
};

bool same_batches(const torch::Tensor& a, const torch::Tensor& b) {
  if (a.dim() < 2 || a.dim() != b.dim() || a.size(-1) != b.size(-2)) return false;
  for (int64_t d = 0; d + 2 < a.dim(); ++d)
    if (a.size(d) != b.size(d)) return false;
  return true;
}

}  // namespace

torch::Tensor matmul(const torch::Tensor& a, const torch::Tensor& b) {
  if (!same_batches(a, b)) return torch::matmul(a, b);
  if (onednn_computes({&a, &b})) return OnednnMatmul::apply(a, b);
  if (bf16_on_fp32_units({&a, &b})) return bf16_matmul(a, b);
  return torch::matmul(a, b);
}

}  // namespace tessera::kernels
