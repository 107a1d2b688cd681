// Checkpoints: a model's parameters and buffers, optionally the optimizer's state, and a JSON
// metadata record (model config, epoch, step, ...). Written atomically: the file is written to
// "<path>.tmp" and renamed over <path>, so a failed write (full disk, killed process) leaves the
// last good checkpoint in place.
#pragma once

#include <string>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

namespace tessera::train {

// Throws tessera::Error naming the path if the checkpoint cannot be written; <path> is untouched.
// A model with a non-finite parameter or buffer is refused (NonfiniteError), never written.
void save_checkpoint(const std::string& path, torch::nn::Module& model,
                     torch::optim::Optimizer* optimizer, const nlohmann::json& meta);

// Reads only the metadata (e.g. to rebuild the model before loading its weights).
nlohmann::json read_checkpoint_meta(const std::string& path);

// Loads parameters/buffers into `model` (which must have the checkpoint's structure) and, if
// given, the optimizer state. Returns the metadata. Throws tessera::Error naming the path for a
// missing, corrupt or mismatching checkpoint.
nlohmann::json load_checkpoint(const std::string& path, torch::nn::Module& model,
                               torch::optim::Optimizer* optimizer);

}  // namespace tessera::train
