#include "tessera/metrics/language_model.h"

#include <cmath>

namespace tessera::metrics {

double bits_per_token(double loss_nats) {
  return loss_nats / std::log(2.0);
}

double perplexity(double loss_nats) {
  return std::exp(loss_nats);
}

double unigram_bits(const torch::Tensor& tokens, int64_t vocabulary) {
  if (tokens.numel() == 0) return 0.0;
  const torch::Tensor counts = tokens.to(torch::kLong).bincount({}, vocabulary).to(torch::kDouble);
  const torch::Tensor p = counts / counts.sum();
  const torch::Tensor seen = p.masked_select(p > 0);
  return -(seen * seen.log2()).sum().item<double>();
}

}  // namespace tessera::metrics
