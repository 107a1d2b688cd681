#include "tessera/models/model_config.h"

#include "tessera/core/error.h"

namespace tessera::models {

nlohmann::json to_json(const ModelConfig& config) {
  return {{"arch", config.arch},
          {"input_shape", config.input_shape},
          {"num_classes", config.num_classes},
          {"hidden", config.hidden},
          {"activation", config.activation},
          {"depth", config.depth},
          {"width", config.width},
          {"patch_size", config.patch_size},
          {"embed_dim", config.embed_dim},
          {"num_heads", config.num_heads},
          {"mlp_dim", config.mlp_dim},
          {"pool", config.pool},
          {"dropout", config.dropout},
          {"drop_path", config.drop_path},
          {"tie_embeddings", config.tie_embeddings},
          {"subnet", config.subnet}};
}

namespace {
template <typename T>
void read_field(const nlohmann::json& json, const char* key, T& out) {
  if (!json.contains(key)) return;  // keep the default
  try {
    json.at(key).get_to(out);
  } catch (const nlohmann::json::exception&) {
    throw UsageError(std::string("model config: field '") + key +
                     "' has the wrong type: " + json.at(key).dump());
  }
}
}  // namespace

ModelConfig model_config_from_json(const nlohmann::json& json) {
  if (!json.is_object()) throw UsageError("model config: expected a JSON object");
  ModelConfig config;
  read_field(json, "arch", config.arch);
  read_field(json, "input_shape", config.input_shape);
  read_field(json, "num_classes", config.num_classes);
  read_field(json, "hidden", config.hidden);
  read_field(json, "activation", config.activation);
  read_field(json, "depth", config.depth);
  read_field(json, "width", config.width);
  read_field(json, "patch_size", config.patch_size);
  read_field(json, "embed_dim", config.embed_dim);
  read_field(json, "num_heads", config.num_heads);
  read_field(json, "mlp_dim", config.mlp_dim);
  read_field(json, "pool", config.pool);
  // Absent from checkpoints written before the regularisers existed: they stay 0.
  read_field(json, "dropout", config.dropout);
  read_field(json, "drop_path", config.drop_path);
  read_field(json, "tie_embeddings", config.tie_embeddings);  // absent before it existed: false
  read_field(json, "subnet", config.subnet);
  return config;
}

}  // namespace tessera::models
