#include "tessera/models/llama.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <vector>

#include "tessera/core/error.h"
#include "tessera/kernels/linear.h"
#include "tessera/kernels/matmul.h"
#include "tessera/metrics/flops.h"
#include "tessera/models/rotary.h"
#include "tessera/models/shared_input_linear.h"
#include "tessera/models/subnet.h"

namespace tessera::models {

CausalSelfAttentionImpl::CausalSelfAttentionImpl(int64_t dim, int64_t heads, int64_t head_dim)
    : norm(register_module("norm", RmsNorm(dim))),
      q(register_module(
          "q", torch::nn::Linear(torch::nn::LinearOptions(dim, heads * head_dim).bias(false)))),
      k(register_module(
          "k", torch::nn::Linear(torch::nn::LinearOptions(dim, heads * head_dim).bias(false)))),
      v(register_module(
          "v", torch::nn::Linear(torch::nn::LinearOptions(dim, heads * head_dim).bias(false)))),
      proj(register_module(
          "proj", torch::nn::Linear(torch::nn::LinearOptions(heads * head_dim, dim).bias(false)))),
      heads_(heads),
      head_dim_(head_dim) {}

torch::Tensor CausalSelfAttentionImpl::forward(const torch::Tensor& x, LayerCache* cache) {
  const int64_t batch = x.size(0);
  const int64_t tokens = x.size(1);
  const int64_t offset = cache != nullptr ? cache->length() : 0;
  const torch::Tensor h = norm(x);
  auto split = [&](const torch::Tensor& t) {  // [B, T, H * hd] -> [B, H, T, hd]
    return t.view({batch, tokens, heads_, head_dim_}).transpose(1, 2);
  };
  // Scaling q before the product is the same as scaling the scores, on T x hd values, not T^2.
  const double scale = 1.0 / std::sqrt(static_cast<double>(head_dim_));
  const std::vector<torch::Tensor> qkv = linear_on_shared_input(h, {q, k, v});
  const torch::Tensor queries = rotary_.apply(split(qkv[0]), offset) * scale;
  torch::Tensor keys = rotary_.apply(split(qkv[1]), offset);
  torch::Tensor values = split(qkv[2]);
  if (cache != nullptr) {
    if (cache->keys.defined()) {
      keys = torch::cat({cache->keys, keys}, 2);
      values = torch::cat({cache->values, values}, 2);
    }
    cache->keys = keys;
    cache->values = values;
  }
  const torch::Tensor scores = kernels::matmul(queries, keys.transpose(-2, -1))
                                   .masked_fill(future_mask(offset, tokens, x.device()),
                                                -std::numeric_limits<float>::infinity());
  const torch::Tensor mixed = kernels::matmul(torch::softmax(scores, -1), values);  // [B, H, T, hd]
  return kernels::linear(mixed.transpose(1, 2).reshape({batch, tokens, heads_ * head_dim_}), proj);
}

torch::Tensor CausalSelfAttentionImpl::future_mask(int64_t offset, int64_t tokens,
                                                   const torch::Device& device) {
  const int64_t seen = offset + tokens;  // keys 0 .. seen - 1
  if (!future_.defined() || future_.size(0) < seen || future_.device() != device) {
    const int64_t capacity = std::max(seen, future_.defined() ? 2 * future_.size(0) : seen);
    future_ =
        torch::ones({capacity, capacity}, torch::TensorOptions().dtype(torch::kBool).device(device))
            .triu(1);
  }
  return future_.narrow(0, offset, tokens).narrow(1, 0, seen);
}

SwiGluImpl::SwiGluImpl(int64_t dim, int64_t hidden, double dropout_p)
    : norm(register_module("norm", RmsNorm(dim))),
      gate(register_module("gate",
                           torch::nn::Linear(torch::nn::LinearOptions(dim, hidden).bias(false)))),
      up(register_module("up",
                         torch::nn::Linear(torch::nn::LinearOptions(dim, hidden).bias(false)))),
      down(register_module("down",
                           torch::nn::Linear(torch::nn::LinearOptions(hidden, dim).bias(false)))) {
  if (dropout_p > 0)
    dropout = register_module("dropout", Dropout(dropout_p, /*channelwise=*/false));
}

torch::Tensor SwiGluImpl::forward(const torch::Tensor& x) {
  const torch::Tensor h = norm(x);
  const std::vector<torch::Tensor> gate_up = linear_on_shared_input(h, {gate, up});
  const torch::Tensor hidden = torch::silu(gate_up[0]) * gate_up[1];
  return kernels::linear(dropout ? dropout(hidden) : hidden, down);
}

TokenEmbeddingImpl::TokenEmbeddingImpl(int64_t vocabulary, int64_t dim)
    : embed(register_module("embed", torch::nn::Embedding(vocabulary, dim))) {}

torch::Tensor TokenEmbeddingImpl::forward(torch::Tensor x) {
  return embed(x);
}

DecoderBlockImpl::DecoderBlockImpl(int64_t dim, int64_t heads, int64_t head_dim, int64_t hidden,
                                   double dropout_p, double drop_path_p) {
  if (heads > 0) attn = register_module("attn", CausalSelfAttention(dim, heads, head_dim));
  if (hidden > 0) mlp = register_module("mlp", SwiGlu(dim, hidden, dropout_p));
  if ((attn || mlp) && drop_path_p > 0)
    drop_path = register_module("drop_path", DropPath(drop_path_p));
}

torch::Tensor DecoderBlockImpl::forward(torch::Tensor x) {
  auto residual = [this](const torch::Tensor& branch) {
    return drop_path ? drop_path(branch) : branch;
  };
  if (attn) x = x + residual(attn(x));
  if (mlp) x = x + residual(mlp(x));
  return x;
}

torch::Tensor DecoderBlockImpl::forward_cached(torch::Tensor x, LayerCache& cache) {
  if (attn) x = x + attn->forward(x, &cache);
  if (mlp) x = x + mlp(x);
  return x;
}

LmHeadImpl::LmHeadImpl(int64_t dim, int64_t vocabulary, bool tied)
    : norm(register_module("norm", RmsNorm(dim))) {
  if (!tied)
    out = register_module("out",
                          torch::nn::Linear(torch::nn::LinearOptions(dim, vocabulary).bias(false)));
}

torch::Tensor LmHeadImpl::forward(torch::Tensor x) {
  if (out) return kernels::linear(norm(x), out);
  if (!tied_weight_.defined())
    throw Error(
        "llama: the output head is tied to the token embedding, which is not in this model; a "
        "model holding the head without stage 0 cannot run it");
  return kernels::linear(norm(x), tied_weight_);
}

void LmHeadImpl::tie(const torch::Tensor& embedding_weight) {
  require(tied(), "llama: tie() on an output head that has its own weight");
  tied_weight_ = embedding_weight;
}

torch::Tensor llama_forward_cached(StagedModel& model, const torch::Tensor& tokens,
                                   LlamaCache& cache) {
  require(model->config().arch == "llama" && model->is_full(),
          "cached forward needs a whole llama model");
  torch::Tensor x = tokens;
  size_t block = 0;
  for (const auto& child : model->children()) {
    if (auto* embedding = dynamic_cast<TokenEmbeddingImpl*>(child.get())) {
      x = embedding->forward(x);
    } else if (auto* decoder = dynamic_cast<DecoderBlockImpl*>(child.get())) {
      if (cache.layers.size() <= block) cache.layers.resize(block + 1);
      x = decoder->forward_cached(x, cache.layers[block++]);
    } else if (auto* head = dynamic_cast<LmHeadImpl*>(child.get())) {
      x = head->forward(x);
    }
  }
  return x;
}

namespace {

constexpr int64_t kDefaultDepth = 4;
constexpr double kInitStd = 0.02;

std::string group_name(int64_t stage, const char* part) {
  return "stage" + std::to_string(stage) + "." + part;
}

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Linear weights and the embedding ~ N(0, 0.02), the residual branches' last maps (attention's
// proj, the MLP's down) ~ N(0, 0.02 / sqrt(2 depth)) as in GPT-2, so the residual stream's variance
// does not grow with depth; RMSNorm weights stay 1.
void init_parameters(torch::nn::Module& module, int64_t depth) {
  torch::NoGradGuard no_grad;
  for (auto& item : module.named_parameters()) {
    const std::string& name = item.key();
    if (ends_with(name, "norm.weight")) continue;
    const bool residual_out = ends_with(name, "proj.weight") || ends_with(name, "down.weight");
    const double std =
        residual_out ? kInitStd / std::sqrt(2.0 * static_cast<double>(depth)) : kInitStd;
    item.value().normal_(0.0, std);
  }
}

struct BlockWidths {
  int64_t heads = 0;
  int64_t hidden = 0;
};

class LlamaArchitecture : public Architecture {
 public:
  std::string name() const override { return "llama"; }

  ModelConfig resolve(ModelConfig config) const override {
    if (config.depth == 0) config.depth = kDefaultDepth;
    require(config.depth > 0, "llama: depth (number of decoder blocks) must be positive, got " +
                                  std::to_string(config.depth));
    require(config.input_shape.size() == 1 && config.input_shape[0] > 0,
            "llama: the input must be a window of tokens (--data text), got samples of shape " +
                tessera::to_string(config.input_shape));
    require_positive("embed_dim", config.embed_dim);
    require_positive("num_heads", config.num_heads);
    require_positive("mlp_dim", config.mlp_dim);
    require(config.embed_dim % config.num_heads == 0,
            "llama: embed_dim " + std::to_string(config.embed_dim) +
                " must be divisible by num_heads " + std::to_string(config.num_heads));
    require(head_dim(config) % 2 == 0,
            "llama: the head width embed_dim / num_heads = " + std::to_string(head_dim(config)) +
                " must be even (rotary embeddings rotate pairs)");
    require(config.num_classes >= 2, "model: num_classes (the vocabulary) must be at least 2");
    check_regularizers(config, /*has_branches=*/true);
    validate_subnet(config.subnet, unit_groups(config));
    return config;
  }

  int64_t num_stages(const ModelConfig& config) const override { return config.depth + 2; }

  // A model holding both stage 0 and the head ties them; one holding only the head is left without
  // an output map (its forward says why), which only per-stage construction (measuring, SDP's
  // stage-by-stage initialisation) does: PNN and the pipeline refuse tied models beforehand.
  void link_stages(const ModelConfig& config, int64_t begin,
                   const std::vector<StagePtr>& stages) const override {
    const int64_t end = begin + static_cast<int64_t>(stages.size());
    if (!config.tie_embeddings || begin != 0 || end <= head_stage(config)) return;
    auto* embedding = dynamic_cast<TokenEmbeddingImpl*>(stages.front().get());
    auto* head = dynamic_cast<LmHeadImpl*>(stages.back().get());
    require(embedding != nullptr && head != nullptr, "llama: stages out of order");
    head->tie(embedding->embed->weight);
  }

  std::string stage_name(const ModelConfig& config, int64_t stage) const override {
    const std::string dim = std::to_string(config.embed_dim);
    const std::string vocabulary = std::to_string(config.num_classes);
    if (stage == 0) return "embed " + vocabulary + "->" + dim;
    if (stage == head_stage(config))
      return "head " + dim + "->" + vocabulary + (config.tie_embeddings ? " (tied)" : "");
    const BlockWidths held = block_widths(config, stage);
    std::string parts = held.heads > 0 ? std::to_string(held.heads) + " heads" : "no attn";
    parts += held.hidden > 0 ? ", mlp " + std::to_string(held.hidden) : ", no mlp";
    return "block " + std::to_string(stage) + " (" + parts + ")";
  }

  Shape boundary_shape(const ModelConfig& config, int64_t boundary) const override {
    const int64_t tokens = config.input_shape[0];
    if (boundary == 0) return config.input_shape;
    if (boundary == num_stages(config)) return {tokens, config.num_classes};
    return {tokens, config.embed_dim};
  }

  StagePtr build_stage(const ModelConfig& config, int64_t stage) const override {
    StagePtr built;
    if (stage == 0) {
      built = TokenEmbedding(config.num_classes, config.embed_dim).ptr();
    } else if (stage == head_stage(config)) {
      built = LmHead(config.embed_dim, config.num_classes, config.tie_embeddings).ptr();
    } else {
      const BlockWidths held = block_widths(config, stage);
      built = DecoderBlock(config.embed_dim, held.heads, head_dim(config), held.hidden,
                           config.dropout, config.drop_path)
                  .ptr();
    }
    init_parameters(*built, config.depth);
    return built;
  }

  std::vector<UnitGroup> unit_groups(const ModelConfig& config) const override {
    std::vector<UnitGroup> groups;
    const int64_t hd = head_dim(config);
    for (int64_t stage = 1; stage < head_stage(config); ++stage) {
      const std::string attn = group_name(stage, "attn.");
      const std::string mlp = group_name(stage, "mlp.");
      groups.push_back({group_name(stage, "attn"),
                        UnitKind::Branch,
                        stage,
                        1,
                        {{attn + "norm.weight", -1, 1, false},
                         {attn + "q.weight", -1, 1, false},
                         {attn + "k.weight", -1, 1, false},
                         {attn + "v.weight", -1, 1, false},
                         {attn + "proj.weight", -1, 1, true}}});
      groups.push_back({group_name(stage, "mlp"),
                        UnitKind::Branch,
                        stage,
                        1,
                        {{mlp + "norm.weight", -1, 1, false},
                         {mlp + "gate.weight", -1, 1, false},
                         {mlp + "up.weight", -1, 1, false},
                         {mlp + "down.weight", -1, 1, true}}});
      groups.push_back({group_name(stage, "heads"),
                        UnitKind::Head,
                        stage,
                        config.num_heads,
                        {{attn + "q.weight", 0, hd},
                         {attn + "k.weight", 0, hd},
                         {attn + "v.weight", 0, hd},
                         {attn + "proj.weight", 1, hd, true}}});
      groups.push_back({group_name(stage, "mlp_hidden"),
                        UnitKind::Neuron,
                        stage,
                        config.mlp_dim,
                        {{mlp + "gate.weight", 0, 1},
                         {mlp + "up.weight", 0, 1},
                         {mlp + "down.weight", 1, 1, true}}});
    }
    return groups;
  }

  // Per sample of T tokens. Attention counts the whole T x T score matrix (as computed, masked),
  // the sequence-length term of a decoder's cost; rotary embeddings ~3 FLOPs per rotated value.
  int64_t stage_forward_flops(const ModelConfig& config, int64_t stage) const override {
    using namespace metrics;
    const int64_t t = config.input_shape[0];
    const int64_t d = config.embed_dim;
    if (stage == 0) return 0;  // a table look-up
    if (stage == head_stage(config))
      return norm_flops(t * d) + linear_flops(t, d, config.num_classes, /*bias=*/false);
    const BlockWidths held = block_widths(config, stage);
    int64_t flops = 0;
    if (held.heads > 0) {
      const int64_t inner = held.heads * head_dim(config);
      flops += norm_flops(t * d) + 3 * linear_flops(t, d, inner, false) +
               elementwise_flops(3 * 2 * t * inner) + attention_flops(t, inner, held.heads) +
               linear_flops(t, inner, d, false) + elementwise_flops(t * d);
    }
    if (held.hidden > 0) {
      // gate and up, silu (~4 per value) and the product, down, the residual.
      flops += norm_flops(t * d) + 2 * linear_flops(t, d, held.hidden, false) +
               elementwise_flops(5 * t * held.hidden) + linear_flops(t, held.hidden, d, false) +
               elementwise_flops(t * d);
    }
    return flops;
  }

 private:
  static void require_positive(const char* field, int64_t value) {
    require(value > 0,
            std::string("llama: ") + field + " must be positive, got " + std::to_string(value));
  }

  int64_t head_stage(const ModelConfig& config) const { return config.depth + 1; }
  int64_t head_dim(const ModelConfig& config) const { return config.embed_dim / config.num_heads; }

  BlockWidths block_widths(const ModelConfig& config, int64_t stage) const {
    BlockWidths held;
    if (holds_branch(config.subnet, group_name(stage, "attn")))
      held.heads = held_units(config.subnet, group_name(stage, "heads"), config.num_heads);
    if (holds_branch(config.subnet, group_name(stage, "mlp")))
      held.hidden = held_units(config.subnet, group_name(stage, "mlp_hidden"), config.mlp_dim);
    return held;
  }
};

}  // namespace

std::unique_ptr<Architecture> make_llama_architecture() {
  return std::make_unique<LlamaArchitecture>();
}

}  // namespace tessera::models
