#include "tessera/train/model_file.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>

#include "tessera/core/error.h"
#include "tessera/train/checkpoint.h"
#include "tessera/train/safetensors.h"

namespace tessera::train {
namespace {

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot open model file " + path);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw Error("cannot read model file " + path);
  return bytes;
}

SafetensorsFile read_safetensors_file(const std::string& path) {
  const std::string bytes = read_bytes(path);
  return read_safetensors(bytes, path);
}

nlohmann::json parse_metadata_json(const std::string& text, const std::string& path,
                                   const std::string& key) {
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception&) {
    throw Error("safetensors file " + path + ": __metadata__ \"" + key + "\" is not JSON");
  }
}

nlohmann::json meta_of(const SafetensorsFile& file, const std::string& path) {
  const auto model = file.metadata.find("model");
  if (model == file.metadata.end())
    throw Error("safetensors file " + path +
                " has no tessera model description (__metadata__ \"model\"); was it written by "
                "`tessera export`?");
  nlohmann::json meta = nlohmann::json::object();
  const auto rest = file.metadata.find("tessera_meta");
  if (rest != file.metadata.end()) {
    meta = parse_metadata_json(rest->second, path, "tessera_meta");
    if (!meta.is_object())
      throw Error("safetensors file " + path + ": __metadata__ \"tessera_meta\" is not an object");
  }
  meta["model"] = parse_metadata_json(model->second, path, "model");
  return meta;
}

void load_tensors(const SafetensorsFile& file, torch::nn::Module& model, const std::string& path) {
  std::map<std::string, torch::Tensor> stored(file.tensors.begin(), file.tensors.end());
  torch::NoGradGuard no_grad;
  auto load = [&](const std::string& name, torch::Tensor& target) {
    const auto found = stored.find(name);
    if (found == stored.end())
      throw Error("safetensors file " + path + " does not match the model: it has no tensor '" +
                  name + "'");
    if (found->second.sizes() != target.sizes())
      throw Error("safetensors file " + path + " does not match the model: '" + name + "' is " +
                  c10::str(found->second.sizes()) + " in the file but " + c10::str(target.sizes()) +
                  " in the model");
    target.copy_(found->second);
    stored.erase(found);
  };
  for (auto& item : model.named_parameters()) load(item.key(), item.value());
  for (auto& item : model.named_buffers()) load(item.key(), item.value());
  if (!stored.empty())
    throw Error("safetensors file " + path + " does not match the model: the model has no '" +
                stored.begin()->first + "'");
}

}  // namespace

ModelFileFormat detect_model_file_format(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("model file " + path + " does not exist or cannot be read");
  char head[9] = {};
  in.read(head, sizeof head);
  const auto got = in.gcount();
  if (got >= 4 && std::string(head, 4) == std::string("PK\x03\x04", 4))
    return ModelFileFormat::Checkpoint;  // libtorch archives are zip files
  if (got == 9 && head[8] == '{') return ModelFileFormat::Safetensors;
  throw Error("model file " + path +
              " is neither a tessera checkpoint (checkpoint.pt) nor a safetensors file");
}

void save_safetensors_model(const std::string& path, torch::nn::Module& model,
                            const nlohmann::json& meta) {
  SafetensorsFile file;
  for (const auto& item : model.named_parameters())
    file.tensors.emplace_back(item.key(), item.value());
  for (const auto& item : model.named_buffers())
    file.tensors.emplace_back(item.key(), item.value());
  nlohmann::json rest = meta;
  rest.erase("model");
  file.metadata = {{"format", "pt"}, {"tessera_meta", rest.dump()}};
  if (meta.contains("model")) file.metadata["model"] = meta.at("model").dump();
  const std::string bytes = write_safetensors(file);

  const std::string temporary = path + ".tmp";
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.close();
    if (!out) {
      std::remove(temporary.c_str());
      throw Error("cannot write safetensors file " + path);
    }
  }
  std::error_code error;
  std::filesystem::rename(temporary, path, error);
  if (error) {
    std::filesystem::remove(temporary, error);
    throw Error("cannot move safetensors file into place at " + path + ": " + error.message());
  }
}

nlohmann::json read_model_file_meta(const std::string& path) {
  if (detect_model_file_format(path) == ModelFileFormat::Checkpoint)
    return read_checkpoint_meta(path);
  return meta_of(read_safetensors_file(path), path);
}

nlohmann::json load_model_file(const std::string& path, torch::nn::Module& model) {
  if (detect_model_file_format(path) == ModelFileFormat::Checkpoint)
    return load_checkpoint(path, model, nullptr);
  const SafetensorsFile file = read_safetensors_file(path);
  const nlohmann::json meta = meta_of(file, path);
  load_tensors(file, model, path);
  return meta;
}

namespace {
models::StagedModel build_described_model(const nlohmann::json& meta, const std::string& path) {
  try {
    return models::build_model(models::model_config_from_json(meta.at("model")),
                               meta.value("begin_stage", int64_t{0}),
                               meta.value("end_stage", int64_t{-1}));
  } catch (const nlohmann::json::exception&) {
    throw Error("model file " + path + " has no model description");
  }
}
}  // namespace

LoadedModel load_model(const std::string& path) {
  if (detect_model_file_format(path) == ModelFileFormat::Checkpoint) {
    LoadedModel loaded{nullptr, read_checkpoint_meta(path)};
    loaded.model = build_described_model(loaded.meta, path);
    load_checkpoint(path, *loaded.model, nullptr);
    return loaded;
  }
  const SafetensorsFile file = read_safetensors_file(path);  // read once, used twice
  LoadedModel loaded{nullptr, meta_of(file, path)};
  loaded.model = build_described_model(loaded.meta, path);
  load_tensors(file, *loaded.model, path);
  return loaded;
}

}  // namespace tessera::train
