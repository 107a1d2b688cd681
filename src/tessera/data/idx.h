// Reader for the IDX format of MNIST, Fashion-MNIST and EMNIST (raw or .gz files).
#pragma once

#include <cstdint>
#include <string>

#include <torch/torch.h>

#include "tessera/data/dataset.h"

namespace tessera::data {

// uint8 [N, H, W] from an images file (magic 0x00000803). Throws tessera::Error naming the file
// for a wrong magic number, zero sizes, or a byte count other than the header declares.
torch::Tensor read_idx_images(const std::string& path);
// int64 [N] from a labels file (magic 0x00000801), with the same checks.
torch::Tensor read_idx_labels(const std::string& path);

// One split: a pair of IDX files and how to interpret them.
struct IdxSplit {
  std::string images_path;
  std::string labels_path;
  std::string name;          // Dataset::name, e.g. "mnist/train"
  int64_t num_classes = 10;  // stored label - label_offset must lie in [0, num_classes)
  int64_t label_offset = 0;  // subtracted from every stored label (EMNIST letters: 1)
  bool transpose = false;    // EMNIST stores images column-major: swap H and W
};

// float32 [N, 1, H, W] in [0, 1] with int64 labels. Throws tessera::Error naming the file for any
// problem above, an image/label count mismatch or a label outside the class range.
Dataset read_idx_dataset(const IdxSplit& split);

// MNIST / Fashion-MNIST in `dir`: train-images-idx3-ubyte, train-labels-idx1-ubyte,
// t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (each raw or .gz); 10 classes.
TrainTest read_mnist_dir(const std::string& dir, const std::string& name);

// Classes of an EMNIST split (balanced 47, byclass 62, bymerge 47, digits 10, letters 26,
// mnist 10); UsageError listing the splits for any other name.
int64_t emnist_num_classes(const std::string& split);
// EMNIST split in `dir`: emnist-<split>-{train,test}-{images-idx3,labels-idx1}-ubyte[.gz].
// Images are transposed to the usual orientation and letters labels 1..26 shifted to 0..25.
TrainTest read_emnist_dir(const std::string& dir, const std::string& split);

}  // namespace tessera::data
