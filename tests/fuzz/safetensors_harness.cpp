// Fuzzes the safetensors reader (train/safetensors.h) and what `tessera eval`, `generate` and
// `train --init-from` do with its result (train/model_file.h): the format told by the content,
// the "__metadata__" model description, and the weights loaded into a small MLP. The input is a
// whole .safetensors file.
//
// The model is fixed here rather than built from the file's description (as load_model does): a
// description may name a model of any size, which is a real model to build, not a hostile header.
#include <fstream>
#include <iterator>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "fuzz_target.h"
#include "tessera/core/error.h"
#include "tessera/models/model_config.h"
#include "tessera/models/staged_model.h"
#include "tessera/train/model_file.h"
#include "tessera/train/safetensors.h"

namespace tessera::fuzz {
namespace {

models::ModelConfig safetensors_model_config() {
  models::ModelConfig config;
  config.input_shape = {1, 2, 2};
  config.num_classes = 2;
  config.hidden = {3};
  return config;
}

models::StagedModel safetensors_model() {
  torch::manual_seed(1);
  return models::build_model(safetensors_model_config());
}

// The bytes `tessera export` writes for the fuzzed MLP (through the real writer and its file).
std::string exported_model() {
  models::StagedModel model = safetensors_model();
  const std::string path = scratch_dir() + "/seed.safetensors";
  train::save_safetensors_model(
      path, *model,
      {{"model", models::to_json(safetensors_model_config())}, {"epoch", 2}, {"step", 9}});
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// A file of one tensor per dtype, each of a different shape: scalar, empty, 1-d and 3-d.
std::string every_dtype() {
  train::SafetensorsFile file;
  const torch::ScalarType types[] = {
      torch::kFloat64, torch::kFloat32, torch::kFloat16, torch::kBFloat16, torch::kInt64,
      torch::kInt32,   torch::kInt16,   torch::kInt8,    torch::kUInt8,    torch::kBool};
  const std::vector<int64_t> shapes[] = {{}, {0}, {3}, {2, 1, 2}, {0, 5}};
  int i = 0;
  for (const auto type : types) {
    const auto& shape = shapes[i % 5];
    file.tensors.emplace_back(train::safetensors_dtype(type) + std::to_string(i),
                              torch::arange(c10::multiply_integers(shape)).reshape(shape).to(type));
    ++i;
  }
  file.metadata = {{"note", "every dtype"}};
  return train::write_safetensors(file);
}

Seeds safetensors_seeds() {
  train::SafetensorsFile empty;  // no tensors, no metadata: the smallest valid file
  train::SafetensorsFile metadata_only;
  metadata_only.metadata = {{"model", "{}"}, {"format", "pt"}};
  return {{"exported-mlp", exported_model()},
          {"every-dtype", every_dtype()},
          {"empty", train::write_safetensors(empty)},
          {"metadata-only", train::write_safetensors(metadata_only)}};
}

// Accepted: the reader parses the bytes. Then, as the CLI reads a model file: its metadata, the
// model description in it, and the weights into the fixed MLP (each may be a clear error).
bool read_safetensors_input(const uint8_t* data, size_t size) {
  try {
    (void)train::read_safetensors(std::string_view(reinterpret_cast<const char*>(data), size),
                                  "fuzz input");
  } catch (const Error&) {
    return false;
  }
  const std::string path = write_scratch_file("model.safetensors", data, size);
  try {
    const nlohmann::json meta = train::read_model_file_meta(path);
    try {
      (void)models::model_config_from_json(meta.at("model"));
    } catch (const nlohmann::json::exception&) {  // load_model reports these as tessera::Error
    }
    models::StagedModel model = safetensors_model();
    train::load_model_file(path, *model);
  } catch (const Error&) {
  }
  return true;
}

}  // namespace

const Registration safetensors_registration("safetensors", read_safetensors_input,
                                            safetensors_seeds);

}  // namespace tessera::fuzz
