// Everything needed to build a model of the zoo, as plain data (saved in config.json and in
// checkpoints so that `tessera eval` can rebuild the network).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tessera/core/shape.h"

namespace tessera::models {

// Which units a (sub)model holds: for each unit-group name (see UnitGroup), the sorted indices of
// the units it keeps. Groups that are not listed are held whole. A branch group that keeps no unit
// is dropped: its block is reduced to the skip path. An empty Subnet is the full model.
using Subnet = std::map<std::string, std::vector<int64_t>>;

struct ModelConfig {
  std::string arch = "mlp";         // mlp | resnet | wrn | vit | llama
  Shape input_shape = {1, 28, 28};  // one sample: channels, height, width; llama: {seq_len}
  int64_t num_classes = 10;         // llama: the vocabulary (256 byte tokens)

  // mlp: hidden layer widths and their activation (relu | gelu | tanh).
  std::vector<int64_t> hidden = {1024, 1024, 1024, 1024, 1024};
  std::string activation = "relu";

  // resnet: depth in {8, 10, 14, 18, 20, 26, 34}, base width 64 * width.
  // wrn: depth = 6n + 4, widen factor = width. vit: depth = number of transformer blocks.
  // 0 means the architecture's default.
  int64_t depth = 0;
  double width = 0;

  // vit and llama (width, heads, MLP hidden width; llama's MLP is SwiGLU).
  int64_t patch_size = 4;
  int64_t embed_dim = 128;
  int64_t num_heads = 4;
  int64_t mlp_dim = 256;
  std::string pool = "cls";  // cls | mean

  // Stochastic regularisers (see regularizers.h), both in [0, 1); 0 is off. dropout: drop
  // probability of the units neuron-level SDP masks (mlp hidden neurons, conv blocks' inner
  // channels, vit MLP hidden units). drop_path: stochastic depth on every residual branch (not
  // mlp).
  double dropout = 0;
  double drop_path = 0;

  // llama: the output head multiplies by the token embedding's weight (one [V, D] tensor) instead
  // of holding its own. The embedding and the head must then be on one worker: no PNN cut or
  // pipeline split between them.
  bool tie_embeddings = false;

  Subnet subnet;
};

nlohmann::json to_json(const ModelConfig& config);
// Throws UsageError naming the field on a missing or ill-typed value.
ModelConfig model_config_from_json(const nlohmann::json& json);

}  // namespace tessera::models
