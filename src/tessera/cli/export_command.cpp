// `tessera export --checkpoint C --out model.safetensors`: the model of a checkpoint as a
// safetensors file that other tools read (Python with numpy, PyTorch, Hugging Face), and that
// `tessera eval` and `tessera generate` load like the checkpoint.
#include <cstdio>
#include <filesystem>

#include "tessera/cli/commands.h"
#include "tessera/cli/options.h"
#include "tessera/core/error.h"
#include "tessera/models/staged_model.h"
#include "tessera/train/model_file.h"

namespace tessera::cli {

int export_command(const Args& raw_args) {
  const Args args = expand_config_files(raw_args);
  std::string checkpoint;
  std::string out;
  auto app = make_app(
      "Write a checkpoint's model as a safetensors file: parameters and buffers under their "
      "module names (stage0.linear.weight), the model config in __metadata__.",
      "tessera export");
  app->add_option("--checkpoint", checkpoint, "checkpoint file written by train, pnn or sdp")
      ->required();
  app->add_option("--out", out, "safetensors file to write (e.g. model.safetensors)")->required();
  if (!parse(*app, args)) return 0;
  const auto parent = std::filesystem::path(out).parent_path();
  require(parent.empty() || std::filesystem::is_directory(parent),
          "--out " + out + ": directory " + parent.string() + " does not exist");

  train::LoadedModel loaded = train::load_model(checkpoint);
  train::save_safetensors_model(out, *loaded.model, loaded.meta);
  const auto tensors =
      loaded.model->named_parameters().size() + loaded.model->named_buffers().size();
  std::printf("wrote %zu tensors (%lld parameters, %lld bytes) to %s\n", tensors,
              static_cast<long long>(models::parameter_count(*loaded.model)),
              static_cast<long long>(std::filesystem::file_size(out)), out.c_str());
  return 0;
}

}  // namespace tessera::cli
