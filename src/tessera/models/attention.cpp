#include "tessera/models/attention.h"

#include <cmath>
#include <vector>

#include "tessera/kernels/linear.h"
#include "tessera/kernels/matmul.h"
#include "tessera/models/shared_input_linear.h"

namespace tessera::models {

SelfAttentionImpl::SelfAttentionImpl(int64_t dim, int64_t heads, int64_t head_dim)
    : norm(register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim})))),
      q(register_module("q", torch::nn::Linear(dim, heads * head_dim))),
      k(register_module("k", torch::nn::Linear(dim, heads * head_dim))),
      v(register_module("v", torch::nn::Linear(dim, heads * head_dim))),
      proj(register_module("proj", torch::nn::Linear(heads * head_dim, dim))),
      heads_(heads),
      head_dim_(head_dim) {}

torch::Tensor SelfAttentionImpl::split_heads(const torch::Tensor& x) const {
  return x.view({x.size(0), x.size(1), heads_, head_dim_}).transpose(1, 2);
}

torch::Tensor SelfAttentionImpl::forward(const torch::Tensor& x) {
  const torch::Tensor h = norm(x);
  // Scaling q before the product is the same as scaling the scores, on T x d values instead of T^2.
  const double scale = 1.0 / std::sqrt(static_cast<double>(head_dim_));
  const std::vector<torch::Tensor> qkv = linear_on_shared_input(h, {q, k, v});
  const torch::Tensor queries = split_heads(qkv[0]) * scale;
  const torch::Tensor keys = split_heads(qkv[1]);
  const torch::Tensor values = split_heads(qkv[2]);
  const torch::Tensor weights =
      torch::softmax(kernels::matmul(queries, keys.transpose(-2, -1)), -1);
  const torch::Tensor mixed = kernels::matmul(weights, values);  // [batch, heads, tokens, head_dim]
  return kernels::linear(mixed.transpose(1, 2).reshape({x.size(0), x.size(1), heads_ * head_dim_}),
                         proj);
}

}  // namespace tessera::models
