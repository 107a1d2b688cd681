// Loads a data set by name: the entry point the trainer and the CLI use.
#pragma once

#include <cstdint>
#include <string>

#include "tessera/data/dataset.h"

namespace tessera::data {

struct DataConfig {
  // fashion-mnist | mnist | emnist | cifar10 | cifar100 | synthetic | text
  std::string name = "fashion-mnist";
  // Directory with the files; empty: the default for the data set
  // (/usr/share/datasets/fashion-mnist for fashion-mnist).
  std::string dir;
  // emnist: the split name (balanced, byclass, bymerge, digits, letters, mnist).
  std::string emnist_split = "balanced";
  // cifar100: "fine" (100 classes) or "coarse" (20 classes).
  std::string cifar100_labels = "fine";
  // synthetic: sizes, classes, sample shape and seed.
  int64_t synthetic_train = 2048;
  int64_t synthetic_test = 512;
  int64_t synthetic_classes = 10;
  Shape synthetic_shape = {1, 28, 28};
  uint64_t synthetic_seed = 0;
  // text (text_corpus.h): the corpus, a file or a directory (empty: `dir`, else the fortunes),
  // the window length in tokens and the fraction of documents held out for validation.
  std::string path;
  int64_t seq_len = 128;
  double text_validation_fraction = 0.05;
  // Keep only the first N training / test samples (0 = all); for quick runs. For text: windows.
  int64_t limit_train = 0;
  int64_t limit_test = 0;
};

// Reads and normalises both splits (training-set statistics). Throws tessera::Error naming the
// file and the problem for a missing, truncated or inconsistent file, and UsageError for an
// unknown name or option.
TrainTest load_dataset(const DataConfig& config);

}  // namespace tessera::data
