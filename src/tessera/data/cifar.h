// Reader for the binary versions of CIFAR-10 and CIFAR-100 (raw or .gz files).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tessera/data/dataset.h"

namespace tessera::data {

// Layout of one record: `label_bytes` label bytes, then 3 x 32 x 32 pixel bytes (CHW).
struct CifarFormat {
  int64_t label_bytes = 1;   // CIFAR-10: 1; CIFAR-100: 2 (coarse, fine)
  int64_t label_index = 0;   // which label byte to use
  int64_t num_classes = 10;  // labels must lie in [0, num_classes)
};

// Concatenates the records of `paths` into float32 [N, 3, 32, 32] in [0, 1]. Throws
// tessera::Error naming the file when it is missing, empty, not a whole number of records
// ("truncated") or holds a label outside the class range.
Dataset read_cifar_files(const std::vector<std::string>& paths, const CifarFormat& format,
                         const std::string& name);

// CIFAR-10 in `dir` (or its cifar-10-batches-bin/ subfolder): data_batch_1..5.bin, test_batch.bin.
TrainTest read_cifar10_dir(const std::string& dir);
// CIFAR-100 in `dir` (or its cifar-100-binary/ subfolder): train.bin, test.bin; 100 fine or
// 20 coarse classes.
TrainTest read_cifar100_dir(const std::string& dir, bool fine_labels);

}  // namespace tessera::data
