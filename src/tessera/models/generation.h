// Text generation from a whole llama model: sampling with temperature and top-k, one token at a
// time, with a key/value cache (see LlamaCache) so each new token costs one position's work.
#pragma once

#include <cstdint>
#include <vector>

#include "tessera/models/staged_model.h"

namespace tessera::models {

struct GenerationConfig {
  int64_t tokens = 200;      // new tokens to generate
  double temperature = 0.8;  // 0: greedy (the most likely token every time)
  int64_t top_k = 0;         // sample among the k most likely tokens only (0: all)
  uint64_t seed = 0;         // the sampler's own generator; the same seed, the same text
};

// Continues `prompt` (token ids, at least one) by config.tokens tokens. The model sees at most
// its training window (input_shape[0] tokens): when the cache is full it restarts from the last
// half window, re-encoded from position 0. Runs in eval mode without gradients. Throws
// UsageError for a model that is not a whole llama model, an empty prompt, a token outside the
// vocabulary, temperature < 0 or top_k < 0.
std::vector<int64_t> generate(StagedModel& model, const std::vector<int64_t>& prompt,
                              const GenerationConfig& config);

}  // namespace tessera::models
