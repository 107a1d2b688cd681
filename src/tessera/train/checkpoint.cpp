#include "tessera/train/checkpoint.h"

#include <cstdio>
#include <filesystem>

#include "tessera/core/error.h"

namespace tessera::train {

void save_checkpoint(const std::string& path, torch::nn::Module& model,
                     torch::optim::Optimizer* optimizer, const nlohmann::json& meta) {
  const std::string temporary = path + ".tmp";
  try {
    torch::serialize::OutputArchive archive;
    archive.write("meta", c10::IValue(meta.dump()));
    torch::serialize::OutputArchive model_archive;
    model.save(model_archive);
    archive.write("model", model_archive);
    if (optimizer != nullptr) {
      torch::serialize::OutputArchive optimizer_archive;
      optimizer->save(optimizer_archive);
      archive.write("optimizer", optimizer_archive);
    }
    archive.save_to(temporary);
  } catch (const std::exception& e) {
    std::error_code ignored;
    std::filesystem::remove(temporary, ignored);
    throw Error("cannot write checkpoint " + path + " (kept the previous one): " + e.what());
  }
  std::error_code error;
  std::filesystem::rename(temporary, path, error);
  if (error) {
    std::filesystem::remove(temporary, error);
    throw Error("cannot move checkpoint into place at " + path + ": " + error.message());
  }
}

namespace {
torch::serialize::InputArchive open_archive(const std::string& path) {
  if (!std::filesystem::exists(path)) throw Error("checkpoint " + path + " does not exist");
  torch::serialize::InputArchive archive;
  try {
    archive.load_from(path);
  } catch (const std::exception& e) {
    throw Error("checkpoint " + path + " is corrupt or not a tessera checkpoint");
  }
  return archive;
}

nlohmann::json read_meta(torch::serialize::InputArchive& archive, const std::string& path) {
  c10::IValue meta;
  if (!archive.try_read("meta", meta) || !meta.isString())
    throw Error("checkpoint " + path + " has no tessera metadata");
  try {
    return nlohmann::json::parse(meta.toStringRef());
  } catch (const nlohmann::json::exception&) {
    throw Error("checkpoint " + path + " has corrupt metadata");
  }
}
}  // namespace

nlohmann::json read_checkpoint_meta(const std::string& path) {
  auto archive = open_archive(path);
  return read_meta(archive, path);
}

nlohmann::json load_checkpoint(const std::string& path, torch::nn::Module& model,
                               torch::optim::Optimizer* optimizer) {
  auto archive = open_archive(path);
  nlohmann::json meta = read_meta(archive, path);
  try {
    torch::serialize::InputArchive model_archive;
    archive.read("model", model_archive);
    model.load(model_archive);
  } catch (const c10::Error& e) {
    throw Error("checkpoint " + path + " does not match the model: " + e.what_without_backtrace());
  }
  if (optimizer != nullptr) {
    torch::serialize::InputArchive optimizer_archive;
    if (!archive.try_read("optimizer", optimizer_archive))
      throw Error("checkpoint " + path + " has no optimizer state to resume from");
    try {
      optimizer->load(optimizer_archive);
    } catch (const c10::Error& e) {
      throw Error("checkpoint " + path +
                  " optimizer state does not match: " + e.what_without_backtrace());
    }
  }
  return meta;
}

}  // namespace tessera::train
