// Language-model figures from a mean cross-entropy in nats per token.
#pragma once

#include <cstdint>

#include <torch/torch.h>

namespace tessera::metrics {

// Bits per token; for byte-level tokens, bits per byte: loss / ln 2.
double bits_per_token(double loss_nats);
// e^loss: the effective number of equally likely next tokens.
double perplexity(double loss_nats);
// Entropy in bits of the tokens' frequencies (uint8 tokens): the unigram model's bits per byte
// on the same text, the baseline a language model must beat.
double unigram_bits(const torch::Tensor& tokens, int64_t vocabulary = 256);

}  // namespace tessera::metrics
