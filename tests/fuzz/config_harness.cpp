// Fuzzes `--config FILE.json` (cli/options.h): the JSON parse, its conversion to flags, and the
// parsing and checks `tessera train` then applies to them. The input is the file's content.
#include "fuzz_target.h"
#include "tessera/cli/options.h"
#include "tessera/core/error.h"

namespace tessera::fuzz {
namespace {

Seeds config_seeds() {
  return {{"mlp", R"({"epochs": 3, "hidden": [64, 64], "lr": 0.01, "data": "synthetic"})"},
          {"llama", R"({"arch": "llama", "seq_len": 16, "dim": 32, "heads": 2, "depth": 2,
                        "schedule": "cosine", "warmup_steps": 5, "clip_grad_norm": 1.0})"},
          {"dist", R"({"dist": "sdp", "coverage": 0.5, "sdp_sync": "params", "bucket_mb": 2.5,
                       "sdp_rescale": true, "optimizer": "sgd", "momentum": 0.9})"}};
}

// Parses the flags as `tessera train` does, up to the point where it would start training.
void parse_train_flags(const std::vector<std::string>& flags) {
  cli::CommonOptions options;
  cli::DistFlags dist;
  auto app = cli::make_app("fuzz", "tessera train");
  cli::add_data_flags(*app, options);
  cli::add_model_flags(*app, options);
  cli::add_train_flags(*app, options);
  cli::add_runtime_flags(*app, options);
  cli::add_dist_flags(*app, dist);
  if (!cli::parse(*app, flags)) return;
  cli::apply_measured_defaults(*app, dist, options.train);
  cli::apply_family_defaults(*app, options);
  cli::parse_dist_mode(dist.mode);
  options.finish();
  train::validate(options.train);
}

bool read_config_input(const uint8_t* data, size_t size) {
  const std::string path = write_scratch_file("config.json", data, size);
  try {
    parse_train_flags(cli::expand_config_files({"--config", path}));
    return true;
  } catch (const Error&) {
    return false;
  }
}

}  // namespace

const Registration config_registration("config", read_config_input, config_seeds);

}  // namespace tessera::fuzz
