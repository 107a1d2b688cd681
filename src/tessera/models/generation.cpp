#include "tessera/models/generation.h"

#include <algorithm>
#include <limits>

#include "tessera/core/error.h"
#include "tessera/core/seeding.h"
#include "tessera/models/llama.h"

namespace tessera::models {

namespace {

// One token id drawn from the logits [V] of the last position.
int64_t draw_token(const torch::Tensor& logits, const GenerationConfig& config,
                   at::Generator& generator) {
  if (config.temperature == 0.0) return logits.argmax().item<int64_t>();
  torch::Tensor scaled = logits.to(torch::kFloat64) / config.temperature;
  if (config.top_k > 0 && config.top_k < scaled.size(0)) {
    const double threshold = std::get<0>(scaled.topk(config.top_k)).min().item<double>();
    scaled = scaled.masked_fill(scaled < threshold, -std::numeric_limits<double>::infinity());
  }
  const torch::Tensor probabilities = torch::softmax(scaled, 0);
  return torch::multinomial(probabilities, 1, /*replacement=*/false, generator).item<int64_t>();
}

}  // namespace

std::vector<int64_t> generate(StagedModel& model, const std::vector<int64_t>& prompt,
                              const GenerationConfig& config) {
  const ModelConfig& model_config = model->config();
  require(model_config.arch == "llama" && model->is_full(),
          "generation needs a whole llama model, got " + model_config.arch +
              (model->is_full() ? "" : " (a partition)"));
  require(!prompt.empty(), "generation needs a prompt of at least one token");
  require(config.tokens >= 0, "--tokens must be non-negative");
  require(config.temperature >= 0, "--temperature must be non-negative");
  require(config.top_k >= 0, "--top-k must be non-negative");
  const int64_t vocabulary = model_config.num_classes;
  for (int64_t token : prompt)
    require(token >= 0 && token < vocabulary,
            "prompt token " + std::to_string(token) + " is outside the vocabulary");
  const int64_t window = model_config.input_shape.at(0);

  torch::NoGradGuard no_grad;
  model->eval();
  const torch::Device device = model->parameters().front().device();
  at::Generator generator = make_generator(config.seed);
  std::vector<int64_t> text = prompt;
  LlamaCache cache;
  // Feeds `tokens` (ids) and returns the logits of the last one.
  auto feed = [&](const std::vector<int64_t>& tokens) {
    const torch::Tensor ids = torch::tensor(tokens, torch::kLong).unsqueeze(0).to(device);
    return llama_forward_cached(model, ids, cache)[0][-1].to(torch::kCPU);
  };
  const auto last = [&](int64_t count) {
    return std::vector<int64_t>(text.end() - count, text.end());
  };
  torch::Tensor logits = feed(last(std::min<int64_t>(window, static_cast<int64_t>(text.size()))));
  for (int64_t i = 0; i < config.tokens; ++i) {
    const int64_t next = draw_token(logits, config, generator);
    text.push_back(next);
    if (i + 1 == config.tokens) break;
    if (cache.length() >= window) {
      cache = LlamaCache{};
      logits = feed(last(std::max<int64_t>(1, window / 2)));
    } else {
      logits = feed({next});
    }
  }
  return std::vector<int64_t>(text.begin() + static_cast<int64_t>(prompt.size()), text.end());
}

}  // namespace tessera::models
