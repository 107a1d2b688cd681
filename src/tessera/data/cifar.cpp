#include "tessera/data/cifar.h"

#include <filesystem>

#include "tessera/core/error.h"
#include "tessera/data/data_file.h"
#include "tessera/data/large_tensor.h"

namespace tessera::data {

namespace {

constexpr int64_t kImageBytes = 3 * 32 * 32;

// uint8 [R, record size] with every record of `path`, after checking the size and labels.
torch::Tensor read_records(const std::string& path, const CifarFormat& format) {
  const torch::Tensor bytes = read_file_bytes(path);
  const int64_t record = format.label_bytes + kImageBytes;
  const int64_t size = bytes.numel();
  if (size == 0) throw Error("CIFAR file " + path + " is empty");
  if (size % record != 0) {
    throw Error("CIFAR file " + path + " is truncated: " + std::to_string(size) +
                " bytes is not a multiple of the " + std::to_string(record) + "-byte record");
  }
  const torch::Tensor records = bytes.view({size / record, record});
  const torch::Tensor bad = records.select(1, format.label_index).ge(format.num_classes);
  if (bad.any().item<bool>()) {
    const int64_t index = bad.nonzero()[0][0].item<int64_t>();
    throw Error("CIFAR file " + path + ": label " +
                std::to_string(records[index][format.label_index].item<int64_t>()) + " of record " +
                std::to_string(index) + " is out of range for " +
                std::to_string(format.num_classes) + " classes");
  }
  return records;
}

// `dir`, or its `subfolder` when the archive was unpacked into `dir` as distributed.
std::string data_dir(const std::string& dir, const std::string& subfolder) {
  const std::filesystem::path nested = std::filesystem::path(dir) / subfolder;
  return std::filesystem::is_directory(nested) ? nested.string() : dir;
}

}  // namespace

Dataset read_cifar_files(const std::vector<std::string>& paths, const CifarFormat& format,
                         const std::string& name) {
  require(!paths.empty(), "CIFAR data set " + name + ": no files given");
  std::vector<torch::Tensor> parts;
  int64_t total = 0;
  for (const std::string& path : paths) {
    parts.push_back(read_records(path, format));
    total += parts.back().size(0);
  }
  Dataset dataset;
  dataset.name = name;
  dataset.inputs = empty_large({total, 3, 32, 32}, torch::kFloat);
  dataset.labels = torch::empty({total}, torch::kLong);
  // Each file is decoded straight into its rows: no concatenated byte copy.
  int64_t row = 0;
  for (const torch::Tensor& records : parts) {
    const int64_t count = records.size(0);
    dataset.inputs.slice(0, row, row + count)
        .copy_(records.slice(1, format.label_bytes).view({count, 3, 32, 32}));
    dataset.labels.slice(0, row, row + count).copy_(records.select(1, format.label_index));
    row += count;
  }
  dataset.inputs.div_(255.0);
  dataset.num_classes = format.num_classes;
  return dataset;
}

TrainTest read_cifar10_dir(const std::string& dir) {
  const std::string folder = data_dir(dir, "cifar-10-batches-bin");
  std::vector<std::string> train_files;
  for (int i = 1; i <= 5; ++i) {
    train_files.push_back(find_data_file(folder, "data_batch_" + std::to_string(i) + ".bin"));
  }
  const CifarFormat format{1, 0, 10};
  return {read_cifar_files(train_files, format, "cifar10/train"),
          read_cifar_files({find_data_file(folder, "test_batch.bin")}, format, "cifar10/test")};
}

TrainTest read_cifar100_dir(const std::string& dir, bool fine_labels) {
  const std::string folder = data_dir(dir, "cifar-100-binary");
  const CifarFormat format = fine_labels ? CifarFormat{2, 1, 100} : CifarFormat{2, 0, 20};
  return {read_cifar_files({find_data_file(folder, "train.bin")}, format, "cifar100/train"),
          read_cifar_files({find_data_file(folder, "test.bin")}, format, "cifar100/test")};
}

}  // namespace tessera::data
