// The stage modules of the Vision Transformer (vit.cpp): patch embedding, pre-norm transformer
// block and classification head. Each takes and returns one tensor so it can be a StagedModel
// stage.
#pragma once

#include <cstdint>

#include <torch/torch.h>

#include "tessera/models/architecture.h"
#include "tessera/models/attention.h"

namespace tessera::models {

// [batch, C, H, W] -> [batch, tokens, dim]: non-overlapping patch x patch patches projected to
// `dim` (a convolution with kernel = stride = patch), an optional learned class token in front,
// plus a learned position embedding.
class PatchEmbedImpl : public Stage {
 public:
  PatchEmbedImpl(int64_t channels, int64_t patch_size, int64_t dim, int64_t patches,
                 bool with_cls_token);

  torch::Tensor forward(torch::Tensor x) override;

  torch::nn::Conv2d patch;
  torch::Tensor cls_token;  // [1, 1, dim]; undefined without a class token
  torch::Tensor pos_embed;  // [1, tokens, dim]
};
TORCH_MODULE(PatchEmbed);

// LN -> Linear(dim, hidden) -> GELU -> Linear(hidden, dim); the caller adds the residual.
class FeedForwardImpl : public torch::nn::Module {
 public:
  FeedForwardImpl(int64_t dim, int64_t hidden);

  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::LayerNorm norm;
  torch::nn::Linear fc1, fc2;
};
TORCH_MODULE(FeedForward);

// x = x + Attn(LN1(x)); x = x + MLP(LN2(x)). Either sublayer may be absent (a subnetwork that
// dropped it): then it owns no parameters and its residual is the identity.
class TransformerBlockImpl : public Stage {
 public:
  // heads == 0 drops the attention sublayer, hidden == 0 the MLP sublayer.
  TransformerBlockImpl(int64_t dim, int64_t heads, int64_t head_dim, int64_t hidden);

  torch::Tensor forward(torch::Tensor x) override;

  SelfAttention attn{nullptr};
  FeedForward mlp{nullptr};
};
TORCH_MODULE(TransformerBlock);

// [batch, tokens, dim] -> [batch, classes]: final LayerNorm, class-token or mean pooling, linear.
class VitHeadImpl : public Stage {
 public:
  VitHeadImpl(int64_t dim, int64_t classes, bool cls_pool);

  torch::Tensor forward(torch::Tensor x) override;

  torch::nn::LayerNorm norm;
  torch::nn::Linear fc;

 private:
  bool cls_pool_;
};
TORCH_MODULE(VitHead);

}  // namespace tessera::models
