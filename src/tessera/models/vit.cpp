// Vision Transformer (pre-norm, ViT-style) for small images. Stages: 0 = patch embedding (with the
// class token and position embedding), 1..depth = transformer blocks, depth + 1 = head; between
// stages a sample is [tokens, embed_dim]. Maskable units of block i (stage i): its attention and
// MLP sublayers as residual branches (block-level SDP), and its attention heads and MLP hidden
// units (neuron-level SDP). The patch embedding and the head are held by every subnetwork.
#include <memory>

#include "tessera/core/error.h"
#include "tessera/metrics/flops.h"
#include "tessera/models/architecture.h"
#include "tessera/models/families.h"
#include "tessera/models/regularizers.h"
#include "tessera/models/subnet.h"
#include "tessera/models/vit_layers.h"

namespace tessera::models {
namespace {

constexpr int64_t kDefaultDepth = 6;
// ViT's truncated normal(0.02) truncates at +-2 (absolute), i.e. 100 standard deviations: it never
// bites, so a plain normal draws the same distribution.
constexpr double kInitStd = 0.02;

std::string group_name(int64_t stage, const char* part) {
  return "stage" + std::to_string(stage) + "." + part;
}

// LayerNorm parameters are "<...>norm.weight" / "<...>norm.bias" in every vit module.
bool is_layer_norm_parameter(const std::string& name) {
  const size_t last_dot = name.rfind('.');
  if (last_dot == std::string::npos) return false;
  const std::string owner = name.substr(0, last_dot);
  return owner == "norm" || (owner.size() > 5 && owner.compare(owner.size() - 5, 5, ".norm") == 0);
}

// Weights and embeddings ~ N(0, 0.02), biases 0; LayerNorm keeps its weight 1, bias 0.
void init_parameters(torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  for (auto& item : module.named_parameters()) {
    if (is_layer_norm_parameter(item.key())) continue;
    const std::string& name = item.key();
    const bool bias = name.size() >= 4 && name.compare(name.size() - 4, 4, "bias") == 0;
    if (bias)
      item.value().zero_();
    else
      item.value().normal_(0.0, kInitStd);
  }
}

template <typename Holder>
StagePtr initialised(Holder module) {
  init_parameters(*module);
  return module.ptr();
}

// What one block holds under a subnet; 0 means the sublayer is dropped.
struct BlockWidths {
  int64_t heads = 0;
  int64_t hidden = 0;
};

class VitArchitecture : public Architecture {
 public:
  std::string name() const override { return "vit"; }

  ModelConfig resolve(ModelConfig config) const override {
    if (config.depth == 0) config.depth = kDefaultDepth;
    require(config.depth > 0,
            "vit: depth (number of blocks) must be positive, got " + std::to_string(config.depth));
    require(config.input_shape.size() == 3,
            "vit: input shape must be channels x height x width, got " +
                tessera::to_string(config.input_shape));
    for (int64_t extent : config.input_shape)
      require(extent > 0, "vit: input shape " + tessera::to_string(config.input_shape) +
                              " must have positive extents");
    require_positive("patch_size", config.patch_size);
    require_positive("embed_dim", config.embed_dim);
    require_positive("num_heads", config.num_heads);
    require_positive("mlp_dim", config.mlp_dim);
    require(config.input_shape[1] % config.patch_size == 0 &&
                config.input_shape[2] % config.patch_size == 0,
            "vit: input height and width " + tessera::to_string(config.input_shape) +
                " must be divisible by patch_size " + std::to_string(config.patch_size));
    require(config.embed_dim % config.num_heads == 0,
            "vit: embed_dim " + std::to_string(config.embed_dim) +
                " must be divisible by num_heads " + std::to_string(config.num_heads));
    require(config.pool == "cls" || config.pool == "mean",
            "vit: pool must be 'cls' or 'mean', got '" + config.pool + "'");
    require(config.num_classes >= 2, "model: num_classes must be at least 2");
    check_regularizers(config, /*has_branches=*/true);
    validate_subnet(config.subnet, unit_groups(config));
    return config;
  }

  int64_t num_stages(const ModelConfig& config) const override { return config.depth + 2; }

  std::string stage_name(const ModelConfig& config, int64_t stage) const override {
    const std::string dim = std::to_string(config.embed_dim);
    if (stage == 0) {
      const std::string p = std::to_string(config.patch_size);
      return "embed " + p + "x" + p + " patches ->" + dim;
    }
    if (stage == head_stage(config))
      return "head " + dim + "->" + std::to_string(config.num_classes);
    const BlockWidths held = block_widths(config, stage);
    std::string parts = held.heads > 0 ? std::to_string(held.heads) + " heads" : "no attn";
    if (held.hidden == 0)
      parts += ", no mlp";
    else if (held.hidden != config.mlp_dim)
      parts += ", mlp " + std::to_string(held.hidden);
    return "block " + std::to_string(stage) + " (" + parts + ")";
  }

  Shape boundary_shape(const ModelConfig& config, int64_t boundary) const override {
    if (boundary == 0) return config.input_shape;
    if (boundary == num_stages(config)) return {config.num_classes};
    return {tokens(config), config.embed_dim};
  }

  StagePtr build_stage(const ModelConfig& config, int64_t stage) const override {
    if (stage == 0)
      return initialised(PatchEmbed(config.input_shape[0], config.patch_size, config.embed_dim,
                                    patches(config), config.pool == "cls"));
    if (stage == head_stage(config))
      return initialised(VitHead(config.embed_dim, config.num_classes, config.pool == "cls"));
    const BlockWidths held = block_widths(config, stage);
    return initialised(TransformerBlock(config.embed_dim, held.heads, head_dim(config), held.hidden,
                                        config.dropout, config.drop_path));
  }

  std::vector<UnitGroup> unit_groups(const ModelConfig& config) const override {
    std::vector<UnitGroup> groups;
    const int64_t hd = head_dim(config);
    for (int64_t stage = 1; stage < head_stage(config); ++stage) {
      const std::string attn = group_name(stage, "attn.");
      const std::string mlp = group_name(stage, "mlp.");
      groups.push_back({group_name(stage, "attn"), UnitKind::Branch, stage, 1,
                        whole({attn + "norm", attn + "q", attn + "k", attn + "v", attn + "proj"},
                              attn + "proj")});
      groups.push_back({group_name(stage, "mlp"), UnitKind::Branch, stage, 1,
                        whole({mlp + "norm", mlp + "fc1", mlp + "fc2"}, mlp + "fc2")});
      groups.push_back({group_name(stage, "heads"),
                        UnitKind::Head,
                        stage,
                        config.num_heads,
                        {{attn + "q.weight", 0, hd},
                         {attn + "q.bias", 0, hd},
                         {attn + "k.weight", 0, hd},
                         {attn + "k.bias", 0, hd},
                         {attn + "v.weight", 0, hd},
                         {attn + "v.bias", 0, hd},
                         {attn + "proj.weight", 1, hd, true}}});
      groups.push_back({group_name(stage, "mlp_hidden"),
                        UnitKind::Neuron,
                        stage,
                        config.mlp_dim,
                        {{mlp + "fc1.weight", 0, 1},
                         {mlp + "fc1.bias", 0, 1},
                         {mlp + "fc2.weight", 1, 1, true}}});
    }
    return groups;
  }

  int64_t stage_forward_flops(const ModelConfig& config, int64_t stage) const override {
    using namespace metrics;
    const int64_t t = tokens(config);
    const int64_t d = config.embed_dim;
    if (stage == 0) {
      const int64_t patch_in = config.input_shape[0] * config.patch_size * config.patch_size;
      return linear_flops(patches(config), patch_in, d) + elementwise_flops(t * d);
    }
    if (stage == head_stage(config)) {
      // Class-token pooling normalises one token; mean pooling normalises all and averages them.
      const int64_t pool =
          config.pool == "cls" ? norm_flops(d) : norm_flops(t * d) + elementwise_flops(t * d);
      return pool + linear_flops(1, d, config.num_classes);
    }
    const BlockWidths held = block_widths(config, stage);
    int64_t flops = 0;
    if (held.heads > 0) {
      const int64_t inner = held.heads * head_dim(config);
      flops += norm_flops(t * d) + 3 * linear_flops(t, d, inner) +
               attention_flops(t, inner, held.heads) + linear_flops(t, inner, d) +
               elementwise_flops(t * d);
    }
    if (held.hidden > 0) {
      flops += norm_flops(t * d) + linear_flops(t, d, held.hidden) +
               elementwise_flops(t * held.hidden) + linear_flops(t, held.hidden, d) +
               elementwise_flops(t * d);
    }
    return flops;
  }

 private:
  static void require_positive(const char* field, int64_t value) {
    require(value > 0,
            std::string("vit: ") + field + " must be positive, got " + std::to_string(value));
  }

  // Every parameter of the listed layers, whole (dim -1): a branch owns its sublayer entirely.
  // `output` is the sublayer's last linear map, which scales its output.
  static std::vector<TensorSlice> whole(const std::vector<std::string>& layers,
                                        const std::string& output) {
    std::vector<TensorSlice> slices;
    for (const auto& layer : layers) {
      slices.push_back({layer + ".weight", -1, 1, layer == output});
      slices.push_back({layer + ".bias", -1, 1, layer == output});
    }
    return slices;
  }

  int64_t head_stage(const ModelConfig& config) const { return config.depth + 1; }
  int64_t head_dim(const ModelConfig& config) const { return config.embed_dim / config.num_heads; }
  int64_t patches(const ModelConfig& config) const {
    return (config.input_shape[1] / config.patch_size) *
           (config.input_shape[2] / config.patch_size);
  }
  int64_t tokens(const ModelConfig& config) const {
    return patches(config) + (config.pool == "cls" ? 1 : 0);
  }

  // Heads and hidden units that block `stage` holds; a dropped sublayer holds none.
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

std::unique_ptr<Architecture> make_vit_architecture() {
  return std::make_unique<VitArchitecture>();
}

}  // namespace tessera::models
