#include "tessera/kernels/onednn_product.h"

#include "tessera/core/torch_compat.h"
#include "tessera/kernels/matmul_backend.h"
#include "tessera/kernels/onednn_matmul.h"

namespace tessera::kernels {

namespace {

// `t` in a layout oneDNN reads in place: one of the matrix's two strides must be 1.
torch::Tensor readable(const torch::Tensor& t) {
  return t.stride(-1) == 1 || t.stride(-2) == 1 ? t : t.contiguous();
}

StridedView view_of(const torch::Tensor& t) {
  StridedView view;
  view.data = t.data_ptr<float>();
  view.rank = static_cast<int>(t.dim());
  for (int d = 0; d < view.rank; ++d) {
    view.sizes[d] = t.size(d);
    view.strides[d] = t.stride(d);
  }
  return view;
}

}  // namespace

bool onednn_computes(std::initializer_list<const torch::Tensor*> operands) {
  if (matmul_backend() != MatmulBackend::Onednn || compat::autocast_enabled(/*cuda=*/false))
    return false;
  for (const torch::Tensor* t : operands)
    if (t->defined() && (!t->device().is_cpu() || t->scalar_type() != torch::kFloat ||
                         t->numel() == 0 || t->dim() > StridedView::kMaxRank))
      return false;
  return true;
}

torch::Tensor onednn_product(const torch::Tensor& a, const torch::Tensor& b,
                             const torch::Tensor& bias) {
  const torch::Tensor left = readable(a), right = readable(b);
  std::vector<int64_t> shape = a.sizes().vec();
  shape.back() = b.size(-1);
  torch::Tensor c = torch::empty(shape, a.options());
  const torch::Tensor row = bias.defined() ? bias.contiguous() : bias;
  onednn_matmul(view_of(left), view_of(right), row.defined() ? row.data_ptr<float>() : nullptr,
                c.data_ptr<float>());
  return c;
}

}  // namespace tessera::kernels
