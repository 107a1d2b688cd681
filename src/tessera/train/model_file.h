// A trained model on disk, in either of the two formats tessera reads: its own checkpoint.pt
// (libtorch archive, with optimizer state for resuming) or a safetensors file written by
// `tessera export` (weights and the model description only, readable by other tools). The format
// is told by the content, not the extension.
#pragma once

#include <string>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "tessera/models/staged_model.h"

namespace tessera::train {

enum class ModelFileFormat { Checkpoint, Safetensors };

// Reads the first bytes of `path`. Throws tessera::Error naming the path if it is missing or
// neither format.
ModelFileFormat detect_model_file_format(const std::string& path);

// Writes the model's parameters and buffers under their module names ("stage0.linear.weight") to
// a safetensors file, with `meta` (a checkpoint's metadata: "model" config, epoch, ...) in its
// "__metadata__": "model" holds the config as JSON text, "tessera_meta" the rest of `meta` as JSON
// text, "format" is "pt". Written atomically (<path>.tmp, then renamed).
void save_safetensors_model(const std::string& path, torch::nn::Module& model,
                            const nlohmann::json& meta);

// The metadata of either format, as a checkpoint records it ({"model": {...}, "epoch": ...}).
nlohmann::json read_model_file_meta(const std::string& path);

// Loads the weights of either format into `model`, which must have the file's tensors (names and
// shapes; values are converted to the model's dtypes). Returns the metadata. Throws tessera::Error
// naming the path and the mismatch.
nlohmann::json load_model_file(const std::string& path, torch::nn::Module& model);

// Rebuilds the model (or partition) a file describes and loads its weights.
struct LoadedModel {
  models::StagedModel model{nullptr};
  nlohmann::json meta;
};
LoadedModel load_model(const std::string& path);

}  // namespace tessera::train
