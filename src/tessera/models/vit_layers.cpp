#include "tessera/models/vit_layers.h"

#include "tessera/kernels/conv2d.h"
#include "tessera/kernels/linear.h"

namespace tessera::models {

namespace {
torch::nn::LayerNorm layer_norm(int64_t dim) {
  return torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim}));
}
}  // namespace

PatchEmbedImpl::PatchEmbedImpl(int64_t channels, int64_t patch_size, int64_t dim, int64_t patches,
                               bool with_cls_token)
    : patch(register_module(
          "patch",
          torch::nn::Conv2d(
              torch::nn::Conv2dOptions(channels, dim, patch_size).stride(patch_size).bias(true)))) {
  const int64_t tokens = patches + (with_cls_token ? 1 : 0);
  if (with_cls_token) cls_token = register_parameter("cls_token", torch::zeros({1, 1, dim}));
  pos_embed = register_parameter("pos_embed", torch::zeros({1, tokens, dim}));
}

torch::Tensor PatchEmbedImpl::forward(torch::Tensor x) {
  // [B, dim, H/p, W/p] -> [B, patches, dim], patches in row-major order.
  torch::Tensor tokens = kernels::conv2d(x, patch).flatten(2).transpose(1, 2);
  if (cls_token.defined())
    tokens = torch::cat({cls_token.expand({tokens.size(0), 1, tokens.size(2)}), tokens}, 1);
  return tokens + pos_embed;
}

FeedForwardImpl::FeedForwardImpl(int64_t dim, int64_t hidden, double dropout_p)
    : norm(register_module("norm", layer_norm(dim))),
      fc1(register_module("fc1", torch::nn::Linear(dim, hidden))),
      fc2(register_module("fc2", torch::nn::Linear(hidden, dim))) {
  if (dropout_p > 0)
    dropout = register_module("dropout", Dropout(dropout_p, /*channelwise=*/false));
}

torch::Tensor FeedForwardImpl::forward(const torch::Tensor& x) {
  const torch::Tensor hidden = torch::gelu(kernels::linear(norm(x), fc1));
  return kernels::linear(dropout ? dropout(hidden) : hidden, fc2);
}

TransformerBlockImpl::TransformerBlockImpl(int64_t dim, int64_t heads, int64_t head_dim,
                                           int64_t hidden, double dropout_p, double drop_path_p) {
  if (heads > 0) attn = register_module("attn", SelfAttention(dim, heads, head_dim));
  if (hidden > 0) mlp = register_module("mlp", FeedForward(dim, hidden, dropout_p));
  // One layer for both sublayers: each call draws its own per-sample mask.
  if ((attn || mlp) && drop_path_p > 0)
    drop_path = register_module("drop_path", DropPath(drop_path_p));
}

torch::Tensor TransformerBlockImpl::forward(torch::Tensor x) {
  auto residual = [this](const torch::Tensor& branch) {
    return drop_path ? drop_path(branch) : branch;
  };
  if (attn) x = x + residual(attn(x));
  if (mlp) x = x + residual(mlp(x));
  return x;
}

VitHeadImpl::VitHeadImpl(int64_t dim, int64_t classes, bool cls_pool)
    : norm(register_module("norm", layer_norm(dim))),
      fc(register_module("fc", torch::nn::Linear(dim, classes))),
      cls_pool_(cls_pool) {}

torch::Tensor VitHeadImpl::forward(torch::Tensor x) {
  // LayerNorm acts on each token alone, so with class-token pooling only that token is normalised.
  const torch::Tensor pooled = cls_pool_ ? norm(x.select(1, 0)) : norm(x).mean(1);
  return kernels::linear(pooled, fc);
}

}  // namespace tessera::models
