// A labelled data set, decoded once into ready tensors. Every reader produces one of these.
#pragma once

#include <cstdint>
#include <string>

#include <torch/torch.h>

#include "tessera/core/shape.h"

namespace tessera::data {

struct Dataset {
  std::string name;      // e.g. "fashion-mnist/train"
  torch::Tensor inputs;  // float32 [N, C, H, W] images or [N, D] vectors, normalised
  torch::Tensor labels;  // int64 [N], each in [0, num_classes)
  int64_t num_classes = 0;

  int64_t size() const { return inputs.defined() ? inputs.size(0) : 0; }
  // Shape of one sample (inputs' shape without the leading N).
  Shape sample_shape() const;
};

struct TrainTest {
  Dataset train;
  Dataset test;
};

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
