// The stage modules of the Vision Transformer (vit.cpp): patch embedding, pre-norm transformer
// block and classification head. Each takes and returns one tensor so it can be a StagedModel
// stage.
#pragma once

#include <cstdint>

#include <torch/torch.h>

#include "tessera/models/architecture.h"
#include "tessera/models/attention.h"
#include "tessera/models/regularizers.h"

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

// LN -> Linear(dim, hidden) -> GELU -> [dropout] -> Linear(hidden, dim); the caller adds the
// residual. Dropout (when `dropout_p` > 0) acts on the hidden units neuron-level SDP masks.
class FeedForwardImpl : public torch::nn::Module {
 public:
  FeedForwardImpl(int64_t dim, int64_t hidden, double dropout_p = 0);

  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::LayerNorm norm;
  torch::nn::Linear fc1, fc2;
  Dropout dropout{nullptr};
};
TORCH_MODULE(FeedForward);

// x = x + Attn(LN1(x)); x = x + MLP(LN2(x)). Either sublayer may be absent (a subnetwork that
// dropped it): then it owns no parameters and its residual is the identity. With drop_path_p > 0
// each sublayer's output is dropped per sample (stochastic depth), independently of the other.
class TransformerBlockImpl : public Stage {
 public:
  // heads == 0 drops the attention sublayer, hidden == 0 the MLP sublayer.
  TransformerBlockImpl(int64_t dim, int64_t heads, int64_t head_dim, int64_t hidden,
                       double dropout_p = 0, double drop_path_p = 0);

  torch::Tensor forward(torch::Tensor x) override;

  SelfAttention attn{nullptr};
  FeedForward mlp{nullptr};
  DropPath drop_path{nullptr};
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
