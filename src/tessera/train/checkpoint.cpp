#include "tessera/train/checkpoint.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "tessera/core/error.h"
#include "tessera/core/file_io.h"
#include "tessera/train/checkpoint_archive.h"
#include "tessera/train/nonfinite.h"

namespace tessera::train {
namespace {

// Archive keys cannot contain '.', parameter names do ("stage0.linear.weight").
std::string archive_key(std::string name) {
  std::replace(name.begin(), name.end(), '.', '/');
  return name;
}

// Every parameter and buffer by its full name, flat, so that loading can check each one.
torch::serialize::OutputArchive model_archive(torch::nn::Module& model) {
  torch::serialize::OutputArchive archive;
  for (const auto& item : model.named_parameters())
    archive.write(archive_key(item.key()), item.value());
  for (const auto& item : model.named_buffers())
    archive.write(archive_key(item.key()), item.value(), /*is_buffer=*/true);
  return archive;
}

// Copies the archive's tensors into the model, refusing a missing, extra or misshapen tensor
// (libtorch's Module::load would silently resize).
void load_model_archive(torch::serialize::InputArchive& archive, torch::nn::Module& model,
                        const std::string& path) {
  torch::NoGradGuard no_grad;
  size_t expected = 0;
  auto load = [&](const std::string& name, torch::Tensor& target, bool is_buffer) {
    torch::Tensor stored;
    if (!archive.try_read(archive_key(name), stored, is_buffer))
      throw Error("checkpoint " + path + " does not match the model: it has no tensor '" + name +
                  "'");
    if (stored.sizes() != target.sizes())
      throw Error("checkpoint " + path + " does not match the model: '" + name + "' is " +
                  c10::str(stored.sizes()) + " in the checkpoint but " + c10::str(target.sizes()) +
                  " in the model");
    target.copy_(stored);
    ++expected;
  };
  for (auto& item : model.named_parameters()) load(item.key(), item.value(), false);
  for (auto& item : model.named_buffers()) load(item.key(), item.value(), true);
  if (archive.keys().size() != expected)
    throw Error("checkpoint " + path + " does not match the model: it holds " +
                std::to_string(archive.keys().size()) + " tensors, the model " +
                std::to_string(expected));
}

// libtorch's messages carry a C++ backtrace after the first line.
std::string first_line(const std::string& text) {
  return text.substr(0, text.find('\n'));
}

}  // namespace

void save_checkpoint(const std::string& path, torch::nn::Module& model,
                     torch::optim::Optimizer* optimizer, const nlohmann::json& meta) {
  if (!state_finite(model))
    throw NonfiniteError("refusing to write checkpoint " + path +
                         ": the model holds non-finite values (NaN or inf); the previous "
                         "checkpoint, if any, is unchanged");
  AtomicFile file(path);
  try {
    torch::serialize::OutputArchive archive;
    archive.write("meta", c10::IValue(meta.dump()));
    torch::serialize::OutputArchive tensors = model_archive(model);
    archive.write("model", tensors);
    if (optimizer != nullptr) {
      torch::serialize::OutputArchive optimizer_archive;
      optimizer->save(optimizer_archive);
      archive.write("optimizer", optimizer_archive);
    }
    // Through our own writes, each checked. libtorch is told every write succeeded: when it
    // learns of a failed one it throws, and throws again from its writer's destructor, which
    // terminates the process. After a failure the AtomicFile writes nothing more, and commit()
    // throws its failure (path and reason) instead of moving the file into place.
    archive.save_to([&file](const void* data, size_t size) -> size_t {
      file.write(data, size);
      return size;
    });
    file.commit();
  } catch (const std::exception& e) {
    const std::string why = file.failure().empty() ? first_line(e.what()) : file.failure();
    throw Error("cannot write checkpoint " + path + " (kept the previous one): " + why);
  }
}

namespace {
torch::serialize::InputArchive open_archive(const std::string& path) {
  if (!std::filesystem::exists(path)) throw Error("checkpoint " + path + " does not exist");
  check_checkpoint_archive(path);  // libtorch's reader only sees structurally sound archives
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
  torch::serialize::InputArchive stored_model;
  if (!archive.try_read("model", stored_model)) throw Error("checkpoint " + path + " has no model");
  load_model_archive(stored_model, model, path);
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
