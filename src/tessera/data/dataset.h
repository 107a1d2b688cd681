// A labelled data set, decoded once into ready tensors. Every reader produces one of these.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <torch/torch.h>

#include "tessera/core/shape.h"

namespace tessera::data {

// Language-model data (text_corpus.h): a sample is a window of `seq_len` tokens of one shared,
// read-only token array, and its labels are the same window shifted by one token (the next token
// at every position). Windows are cut when a batch is drawn, never stored.
struct TokenWindows {
  torch::Tensor tokens;  // uint8 [length]; usually a view of a memory-mapped file (never written)
  int64_t seq_len = 0;
  int64_t count = 0;  // windows (samples) per epoch
  // true: the offsets of epoch e are drawn uniformly from (seed, e) (training); false: window k
  // starts at k * seq_len (evaluation: the same fixed windows every time).
  bool random_offsets = false;

  // int64 [count], each in [0, length - seq_len - 1]: where the epoch's windows start.
  torch::Tensor offsets(uint64_t seed, int64_t epoch) const;
  // Inputs int64 [B, seq_len] and labels int64 [B, seq_len] of the windows starting at `starts`.
  void cut(const torch::Tensor& starts, torch::Tensor& inputs, torch::Tensor& labels) const;
};

struct Dataset {
  std::string name;      // e.g. "fashion-mnist/train"
  torch::Tensor inputs;  // float32 [N, C, H, W] images or [N, D] vectors, normalised
  torch::Tensor labels;  // int64 [N], each in [0, num_classes)
  int64_t num_classes = 0;
  // Set for text: samples are token windows (inputs and labels stay undefined).
  std::shared_ptr<const TokenWindows> windows{};

  int64_t size() const {
    if (windows) return windows->count;
    return inputs.defined() ? inputs.size(0) : 0;
  }
  // Shape of one sample (inputs' shape without the leading N; {seq_len} for token windows).
  Shape sample_shape() const;
};

struct TrainTest {
  Dataset train;
  Dataset test;
};

// The windows of `windows` at multiples of seq_len (evaluation's), cut once: inputs and labels
// int64 [count, seq_len]. For what needs stored samples (PNN's hand-over).
Dataset fixed_windows(const Dataset& windows);

// Per-channel standardisation statistics computed on a training set and applied to both splits.
// Images [N, C, ...] have one (mean, std) per channel; vectors [N, D] count as one channel. A
// constant channel gets std 1 (no division by zero).
struct Normalization {
  torch::Tensor mean;  // [C]
  torch::Tensor std;   // [C]
};
Normalization channel_statistics(const torch::Tensor& images);  // images: [N, C, H, W] or [N, D]
void normalize_in_place(torch::Tensor& images, const Normalization& stats);

}  // namespace tessera::data
