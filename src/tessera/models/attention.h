// Pre-norm multi-head self-attention, written out (rather than torch::nn::MultiheadAttention) so
// that each head owns a contiguous block of parameters and a subnetwork can hold only some heads:
// head h owns rows [h * head_dim, (h + 1) * head_dim) of q, k and v (weight and bias) and the same
// columns of the output projection.
#pragma once

#include <cstdint>

#include <torch/torch.h>

namespace tessera::models {

// Attn(LN(x)) for x of shape [batch, tokens, dim]; the caller adds the residual. `heads` is the
// number of heads this (sub)model holds, each `head_dim` wide, so q/k/v map dim -> heads *
// head_dim.
class SelfAttentionImpl : public torch::nn::Module {
 public:
  SelfAttentionImpl(int64_t dim, int64_t heads, int64_t head_dim);

  torch::Tensor forward(const torch::Tensor& x);

  int64_t heads() const { return heads_; }
  int64_t head_dim() const { return head_dim_; }

  torch::nn::LayerNorm norm;
  torch::nn::Linear q, k, v, proj;

 private:
  // [batch, tokens, heads * head_dim] -> [batch, heads, tokens, head_dim].
  torch::Tensor split_heads(const torch::Tensor& x) const;

  int64_t heads_;
  int64_t head_dim_;
};
TORCH_MODULE(SelfAttention);

}  // namespace tessera::models
