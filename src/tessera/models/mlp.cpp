// Fully connected network. Every linear layer is a stage, so the PNN paper's 6-layer network
// (784-1024x5-classes) has 6 stages and its default cut is after stage 3. The neurons of each
// hidden layer form one unit group (neuron-level SDP): a neuron owns its row of the layer's weight
// and bias, and its column of the next layer's weight.
#include <memory>

#include "tessera/core/error.h"
#include "tessera/kernels/linear.h"
#include "tessera/metrics/flops.h"
#include "tessera/models/activation.h"
#include "tessera/models/architecture.h"
#include "tessera/models/families.h"
#include "tessera/models/regularizers.h"
#include "tessera/models/subnet.h"

namespace tessera::models {
namespace {

// One linear layer, preceded by a flatten in the first stage and followed by the activation in
// every stage but the last (which produces logits), then by dropout when `dropout` > 0: the
// dropped units are the neurons neuron-level SDP masks.
class MlpLayerImpl : public Stage {
 public:
  MlpLayerImpl(int64_t in, int64_t out, bool flatten, std::string activation, double dropout)
      : linear(register_module("linear", torch::nn::Linear(in, out))),
        flatten_(flatten),
        activation_(std::move(activation)) {
    // Only registered when on, so a model without dropout keeps its exact module tree.
    if (!activation_.empty() && dropout > 0)
      dropout_ = register_module("dropout", Dropout(dropout, /*channelwise=*/false));
  }

  torch::Tensor forward(torch::Tensor x) override {
    if (flatten_) x = x.flatten(1);
    x = kernels::linear(x, linear);
    if (activation_.empty()) return x;
    x = activate(activation_, x);
    return dropout_ ? dropout_(x) : x;
  }

  torch::nn::Linear linear;

 private:
  bool flatten_;
  std::string activation_;
  Dropout dropout_{nullptr};
};
TORCH_MODULE(MlpLayer);

std::string neurons_group(int64_t layer) {
  return "stage" + std::to_string(layer) + ".neurons";
}

class MlpArchitecture : public Architecture {
 public:
  std::string name() const override { return "mlp"; }

  ModelConfig resolve(ModelConfig config) const override {
    require(!config.hidden.empty(), "mlp: needs at least one hidden layer (--hidden)");
    for (int64_t width : config.hidden) require(width > 0, "mlp: hidden widths must be positive");
    require(config.num_classes >= 2, "model: num_classes must be at least 2");
    require(numel(config.input_shape) > 0, "model: input shape must be non-empty");
    check_activation(config.activation);
    check_regularizers(config, /*has_branches=*/false);
    validate_subnet(config.subnet, unit_groups(config));
    return config;
  }

  int64_t num_stages(const ModelConfig& config) const override {
    return static_cast<int64_t>(config.hidden.size()) + 1;
  }

  std::string stage_name(const ModelConfig& config, int64_t stage) const override {
    const bool last = stage + 1 == num_stages(config);
    return "fc " + std::to_string(in_width(config, stage)) + "->" +
           std::to_string(out_width(config, stage)) + (last ? "" : " " + config.activation);
  }

  Shape boundary_shape(const ModelConfig& config, int64_t boundary) const override {
    if (boundary == 0) return config.input_shape;
    return {out_width(config, boundary - 1)};
  }

  StagePtr build_stage(const ModelConfig& config, int64_t stage) const override {
    const bool last = stage + 1 == num_stages(config);
    return MlpLayer(in_width(config, stage), out_width(config, stage), stage == 0,
                    last ? "" : config.activation, config.dropout)
        .ptr();
  }

  std::vector<UnitGroup> unit_groups(const ModelConfig& config) const override {
    std::vector<UnitGroup> groups;
    for (int64_t layer = 0; layer < static_cast<int64_t>(config.hidden.size()); ++layer) {
      const std::string here = "stage" + std::to_string(layer) + ".linear.";
      const std::string next = "stage" + std::to_string(layer + 1) + ".linear.";
      groups.push_back({neurons_group(layer),
                        UnitKind::Neuron,
                        layer,
                        config.hidden[layer],
                        {{here + "weight", 0}, {here + "bias", 0}, {next + "weight", 1, 1, true}}});
    }
    return groups;
  }

  int64_t stage_forward_flops(const ModelConfig& config, int64_t stage) const override {
    const bool last = stage + 1 == num_stages(config);
    const int64_t out = out_width(config, stage);
    return metrics::linear_flops(1, in_width(config, stage), out) +
           (last ? 0 : metrics::elementwise_flops(out));
  }

 private:
  // Widths honour the subnet: a layer holding k of its neurons is k wide.
  int64_t out_width(const ModelConfig& config, int64_t stage) const {
    if (stage == static_cast<int64_t>(config.hidden.size())) return config.num_classes;
    return held_units(config.subnet, neurons_group(stage), config.hidden[stage]);
  }
  int64_t in_width(const ModelConfig& config, int64_t stage) const {
    return stage == 0 ? numel(config.input_shape) : out_width(config, stage - 1);
  }
};

}  // namespace

std::unique_ptr<Architecture> make_mlp_architecture() {
  return std::make_unique<MlpArchitecture>();
}

}  // namespace tessera::models
