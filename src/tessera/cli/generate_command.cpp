// `tessera generate --checkpoint C --prompt TEXT --tokens N`: continues a prompt with a language
// model (llama) checkpoint, from any run that writes an ordinary checkpoint (conventional, DDP,
// SDP's assembled model, PNN's joined model).
#include <cstdio>
#include <string>
#include <vector>

#include "tessera/cli/checked_flags.h"
#include "tessera/cli/commands.h"
#include "tessera/cli/options.h"
#include "tessera/core/error.h"
#include "tessera/models/generation.h"
#include "tessera/models/staged_model.h"
#include "tessera/train/model_file.h"
#include "tessera/train/trainer.h"

namespace tessera::cli {

int generate_command(const Args& raw_args) {
  const Args args = expand_config_files(raw_args);
  std::string checkpoint;
  std::string prompt = "\n";
  std::string device = "cpu";
  int64_t threads = 0;
  models::GenerationConfig config;
  auto app = make_app(
      "Continue a prompt with a language model (llama) checkpoint: sampled byte by byte with a "
      "key/value cache, printed to stdout (the prompt first).",
      "tessera generate");
  app->add_option("--checkpoint", checkpoint,
                  "checkpoint (or safetensors file) of a whole llama model")
      ->required();
  app->add_option("--prompt", prompt, "text to continue (default: a newline)");
  app->add_option("--tokens", config.tokens, "bytes to generate")
      ->capture_default_str()
      ->check(integer_in(0, 1 << 24));
  app->add_option("--temperature", config.temperature,
                  "sampling temperature (0: always the most likely byte)")
      ->capture_default_str()
      ->check(real_in({0.0, 1000.0, false, false}));
  app->add_option("--top-k", config.top_k, "sample among the k most likely bytes (0: all)")
      ->capture_default_str()
      ->check(integer_in(0, 1 << 20));
  app->add_option("--seed", config.seed, "seed of the sampler")
      ->capture_default_str()
      ->check(seed_value());
  app->add_option("--device", device, "cpu, cuda or cuda:N")->capture_default_str();
  app->add_option("--threads", threads, "intra-op threads (0: cores)")->check(integer_in(0, 4096));
  if (!parse(*app, args)) return 0;
  configure_threads(threads);
  const torch::Device target = train::parse_device(device);
  require(!prompt.empty(), "--prompt must not be empty");

  models::StagedModel model = train::load_model(checkpoint).model;
  require(model->config().arch == "llama",
          "checkpoint " + checkpoint + " holds a " + model->config().arch +
              " model; generate needs a language model (--model llama)");
  if (!model->is_full())
    throw UsageError("checkpoint " + checkpoint + " holds a partition, not a whole model");
  model->to(target);

  const std::vector<int64_t> prompt_tokens(
      reinterpret_cast<const unsigned char*>(prompt.data()),
      reinterpret_cast<const unsigned char*>(prompt.data()) + prompt.size());
  const std::vector<int64_t> continuation = models::generate(model, prompt_tokens, config);
  std::string text = prompt;
  for (int64_t token : continuation) text += static_cast<char>(static_cast<unsigned char>(token));
  std::fwrite(text.data(), 1, text.size(), stdout);
  if (text.empty() || text.back() != '\n') std::fputc('\n', stdout);
  return 0;
}

}  // namespace tessera::cli
