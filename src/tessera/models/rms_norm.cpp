#include "tessera/models/rms_norm.h"

namespace tessera::models {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// y = x r w with r = (mean(x^2) + eps)^-1/2 per row. Backward, with gw = dy * w:
//   dx = r gw - x r^3 mean(gw x),   dw = sum over rows of dy x r.
struct RmsNormFunction : public torch::autograd::Function<RmsNormFunction> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& weight, double eps) {
    const torch::Tensor inverse_rms = torch::rsqrt(x.pow(2).mean(-1, /*keepdim=*/true) + eps);
    ctx->save_for_backward({x, weight, inverse_rms});
    return x * inverse_rms * weight;  // the order of the plain expression: the same bits
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const variable_list saved = ctx->get_saved_variables();
    const torch::Tensor& x = saved[0];
    const torch::Tensor& weight = saved[1];
    const torch::Tensor& inverse_rms = saved[2];
    const torch::Tensor& dy = grads[0];
    const torch::Tensor normalised = x * inverse_rms;  // recomputed rather than kept
    const torch::Tensor gw = dy * weight;
    const torch::Tensor dx =
        inverse_rms * (gw - normalised * (gw * normalised).mean(-1, /*keepdim=*/true));
    const torch::Tensor dweight = (dy * normalised).reshape({-1, x.size(-1)}).sum(0);
    return {dx, dweight, torch::Tensor()};
  }
};

}  // namespace

torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps) {
  return RmsNormFunction::apply(x, weight, eps);
}

RmsNormImpl::RmsNormImpl(int64_t dim, double eps)
    : weight(register_parameter("weight", torch::ones({dim}))), eps_(eps) {}

torch::Tensor RmsNormImpl::forward(const torch::Tensor& x) {
  return rms_norm(x, weight, eps_);
}

}  // namespace tessera::models
