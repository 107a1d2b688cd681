// A seeded synthetic classification set: one random prototype per class, each sample a randomly
// scaled prototype plus Gaussian noise. Learnable by a small MLP in a few epochs (>= 95% test
// accuracy), yet noisy enough that an untrained model is at chance level.
#pragma once

#include <cstdint>

#include "tessera/core/shape.h"
#include "tessera/data/dataset.h"

namespace tessera::data {

struct SyntheticConfig {
  int64_t train_size = 2048;
  int64_t test_size = 512;
  int64_t num_classes = 10;
  Shape sample_shape = {1, 28, 28};  // any shape, e.g. {16} or {3, 32, 32}
  uint64_t seed = 0;
};

// Train and test splits from the same distribution (same prototypes, different samples); classes
// are balanced up to one sample. Identical for the same config; the test split does not depend
// on train_size. Throws UsageError for sizes < 1, fewer than 2 classes or a bad shape.
TrainTest make_synthetic(const SyntheticConfig& config);

}  // namespace tessera::data
