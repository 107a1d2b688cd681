// LLaMA-style decoder-only language model (`--model llama`): token embedding, pre-norm decoder
// blocks (RMSNorm, causal multi-head self-attention with rotary position embeddings, SwiGLU MLP;
// no biases), final RMSNorm and an output projection to the vocabulary, by its own weight or, with
// tie_embeddings, by the token embedding's.
//
// Stages: 0 = token embedding (int64 [B, T] -> [B, T, D]), 1..depth = decoder blocks
// ([B, T, D] -> [B, T, D]), depth + 1 = head ([B, T, D] -> logits [B, T, V]); PNN cuts between
// blocks. Maskable units of block i (stage i): its attention and MLP sublayers as residual
// branches (`stage<i>.attn`, `stage<i>.mlp`, block-level SDP), its attention heads
// (`stage<i>.heads`) and SwiGLU hidden units (`stage<i>.mlp_hidden`, neuron-level SDP). The
// embedding and the head are held by every subnetwork.
//
// Generation runs the same stages with a key/value cache (LlamaCache): each block keeps the
// rotated keys and the values of every position it has seen, so a new token costs one position's
// work.
#pragma once

#include <cstdint>
#include <vector>

#include <torch/torch.h>

#include "tessera/models/architecture.h"
#include "tessera/models/regularizers.h"
#include "tessera/models/rms_norm.h"
#include "tessera/models/rotary.h"
#include "tessera/models/staged_model.h"

namespace tessera::models {

// The keys (after rotation) and values one attention layer has seen: [B, heads, positions, hd].
struct LayerCache {
  torch::Tensor keys;
  torch::Tensor values;
  int64_t length() const { return keys.defined() ? keys.size(2) : 0; }
};

// Causal multi-head self-attention on RMSNorm(x), rotary embeddings on queries and keys; head h
// owns rows [h * head_dim, (h + 1) * head_dim) of q, k, v and the same columns of proj. q, k and v
// are computed as one product (linear_on_shared_input).
class CausalSelfAttentionImpl : public torch::nn::Module {
 public:
  CausalSelfAttentionImpl(int64_t dim, int64_t heads, int64_t head_dim);

  // x [B, T, D] at positions [cache.length(), cache.length() + T) when a cache is given (which then
  // grows by T), else [0, T). The caller adds the residual.
  torch::Tensor forward(const torch::Tensor& x, LayerCache* cache = nullptr);

  RmsNorm norm;
  torch::nn::Linear q, k, v, proj;

 private:
  // True where query t (at position offset + t) must not see key s: s > offset + t. Rows
  // [offset, offset + tokens) of one cached upper-triangular mask, grown when a call needs more.
  torch::Tensor future_mask(int64_t offset, int64_t tokens, const torch::Device& device);

  int64_t heads_;
  int64_t head_dim_;
  RotaryTable rotary_;
  torch::Tensor future_;  // [capacity, capacity] bool, true above the diagonal
};
TORCH_MODULE(CausalSelfAttention);

// RMSNorm -> down(silu(gate(x)) * up(x)), [dropout on the hidden units]; the caller adds the
// residual. gate and up are computed as one product (linear_on_shared_input).
class SwiGluImpl : public torch::nn::Module {
 public:
  SwiGluImpl(int64_t dim, int64_t hidden, double dropout_p = 0);
  torch::Tensor forward(const torch::Tensor& x);

  RmsNorm norm;
  torch::nn::Linear gate, up, down;
  Dropout dropout{nullptr};
};
TORCH_MODULE(SwiGlu);

// [B, T] token ids (int64) -> [B, T, D].
class TokenEmbeddingImpl : public Stage {
 public:
  TokenEmbeddingImpl(int64_t vocabulary, int64_t dim);
  torch::Tensor forward(torch::Tensor x) override;

  torch::nn::Embedding embed;
};
TORCH_MODULE(TokenEmbedding);

// x = x + Attn(x); x = x + MLP(x). heads == 0 / hidden == 0 drops that sublayer (a subnetwork).
class DecoderBlockImpl : public Stage {
 public:
  DecoderBlockImpl(int64_t dim, int64_t heads, int64_t head_dim, int64_t hidden,
                   double dropout_p = 0, double drop_path_p = 0);
  torch::Tensor forward(torch::Tensor x) override;
  // The same with a key/value cache (generation).
  torch::Tensor forward_cached(torch::Tensor x, LayerCache& cache);

  CausalSelfAttention attn{nullptr};
  SwiGlu mlp{nullptr};
  DropPath drop_path{nullptr};
};
TORCH_MODULE(DecoderBlock);

// [B, T, D] -> logits [B, T, V]: final RMSNorm and a linear map without bias. Untied, the map is
// its own `out`; tied, it has no weight of its own and multiplies by the token embedding's table,
// which tie() hands it (the embedding's parameter, so its gradient sums both uses).
class LmHeadImpl : public Stage {
 public:
  LmHeadImpl(int64_t dim, int64_t vocabulary, bool tied = false);
  // Throws Error when tied and tie() was never called (a partition without the embedding).
  torch::Tensor forward(torch::Tensor x) override;
  void tie(const torch::Tensor& embedding_weight);
  bool tied() const { return !out; }

  RmsNorm norm;
  torch::nn::Linear out{nullptr};  // null when tied

 private:
  torch::Tensor tied_weight_;  // [V, D], a parameter of stage 0
};
TORCH_MODULE(LmHead);

// One cache per decoder block of a whole llama model.
struct LlamaCache {
  std::vector<LayerCache> layers;
  int64_t length() const { return layers.empty() ? 0 : layers.front().length(); }
};

// Logits [B, T, V] of `tokens` [B, T] at positions following the cache's, which grows by T.
// `model` must be a whole llama model. Throws UsageError otherwise.
torch::Tensor llama_forward_cached(StagedModel& model, const torch::Tensor& tokens,
                                   LlamaCache& cache);

}  // namespace tessera::models
