#include "tessera/data/idx.h"

#include <algorithm>
#include <cstdio>
#include <utility>
#include <vector>

#include "tessera/core/error.h"
#include "tessera/data/data_file.h"
#include "tessera/data/large_tensor.h"

namespace tessera::data {

namespace {

constexpr uint32_t kImagesMagic = 0x00000803;  // unsigned bytes, 3 dimensions
constexpr uint32_t kLabelsMagic = 0x00000801;  // unsigned bytes, 1 dimension
constexpr uint64_t kMaxBytes = uint64_t{1} << 62;

uint32_t read_big_endian(const uint8_t* bytes, size_t offset) {
  return (uint32_t{bytes[offset]} << 24) | (uint32_t{bytes[offset + 1]} << 16) |
         (uint32_t{bytes[offset + 2]} << 8) | uint32_t{bytes[offset + 3]};
}

std::string hex(uint32_t value) {
  char text[16];
  std::snprintf(text, sizeof(text), "0x%08x", value);
  return text;
}

// Validates the header of an IDX file with `rank` dimensions and that the payload holds exactly
// the bytes the dimensions declare; returns the dimensions.
std::vector<int64_t> parse_header(const torch::Tensor& file, const std::string& path,
                                  uint32_t magic, size_t rank) {
  const uint8_t* bytes = file.data_ptr<uint8_t>();
  const auto size = static_cast<size_t>(file.numel());
  // The magic number first: a file of the wrong kind is reported as such, even when short.
  const size_t header_size = 4 * (1 + rank);
  if (size >= 4 && read_big_endian(bytes, 0) != magic) {
    throw Error("IDX file " + path + " has wrong magic number " + hex(read_big_endian(bytes, 0)) +
                " (expected " + hex(magic) + ")");
  }
  if (size < header_size) {
    throw Error("IDX file " + path + " is truncated: " + std::to_string(size) +
                " bytes, shorter than its " + std::to_string(header_size) + "-byte header");
  }
  std::vector<int64_t> dims;
  uint64_t payload = 1;
  for (size_t d = 0; d < rank; ++d) {
    dims.push_back(read_big_endian(bytes, 4 * (1 + d)));
    if (dims.back() == 0) {
      throw Error("IDX file " + path + " declares a zero size in dimension " + std::to_string(d));
    }
    // Saturate instead of overflowing: absurd sizes then read as "truncated".
    const auto dim = static_cast<uint64_t>(dims.back());
    payload = payload > kMaxBytes / dim ? kMaxBytes : payload * dim;
  }
  const uint64_t expected = std::min(kMaxBytes, header_size + payload);
  if (size != expected) {
    const std::string problem = size < expected ? " is truncated: " : " has trailing data: ";
    throw Error("IDX file " + path + problem + std::to_string(size) + " bytes, header " +
                "declares " + std::to_string(expected));
  }
  return dims;
}

// Throws unless every label lies in [0, num_classes); `offset` is added back for the message.
void check_label_range(const torch::Tensor& labels, const IdxSplit& split) {
  const torch::Tensor bad = labels.lt(0).logical_or(labels.ge(split.num_classes));
  if (!bad.any().item<bool>()) return;
  const int64_t index = bad.nonzero()[0][0].item<int64_t>();
  const int64_t stored = labels[index].item<int64_t>() + split.label_offset;
  throw Error("IDX labels file " + split.labels_path + ": label " + std::to_string(stored) +
              " at index " + std::to_string(index) + " is out of range for " +
              std::to_string(split.num_classes) + " classes (stored labels must lie in [" +
              std::to_string(split.label_offset) + ", " +
              std::to_string(split.num_classes + split.label_offset) + "))");
}

// Reads `<prefix><part>-{images-idx3,labels-idx1}-ubyte[.gz]` from `dir` as `split`.
Dataset read_part(const std::string& dir, const std::string& prefix, const std::string& part,
                  const std::string& name_suffix, IdxSplit split) {
  split.images_path = find_data_file(dir, prefix + part + "-images-idx3-ubyte");
  split.labels_path = find_data_file(dir, prefix + part + "-labels-idx1-ubyte");
  split.name += name_suffix;
  return read_idx_dataset(split);
}

}  // namespace

torch::Tensor read_idx_images(const std::string& path) {
  const torch::Tensor bytes = read_file_bytes(path);
  const std::vector<int64_t> dims = parse_header(bytes, path, kImagesMagic, 3);
  return bytes.slice(0, 16).view(dims);  // a view of the file buffer: no copy
}

torch::Tensor read_idx_labels(const std::string& path) {
  const torch::Tensor bytes = read_file_bytes(path);
  parse_header(bytes, path, kLabelsMagic, 1);
  return bytes.slice(0, 8).to(torch::kLong);
}

Dataset read_idx_dataset(const IdxSplit& split) {
  torch::Tensor images = read_idx_images(split.images_path);
  torch::Tensor labels = read_idx_labels(split.labels_path);
  if (images.size(0) != labels.size(0)) {
    throw Error("IDX images file " + split.images_path + " holds " +
                std::to_string(images.size(0)) + " images but labels file " + split.labels_path +
                " holds " + std::to_string(labels.size(0)) + " labels");
  }
  if (split.label_offset != 0) labels.sub_(split.label_offset);
  check_label_range(labels, split);
  // EMNIST stores images column-major; copy_ handles the transposed view in its single pass.
  if (split.transpose) images = images.transpose(1, 2);
  Dataset dataset;
  dataset.name = split.name;
  dataset.inputs = empty_large({images.size(0), 1, images.size(1), images.size(2)}, torch::kFloat);
  dataset.inputs.copy_(images.unsqueeze(1)).div_(255.0);
  dataset.labels = labels;
  dataset.num_classes = split.num_classes;
  return dataset;
}

TrainTest read_mnist_dir(const std::string& dir, const std::string& name) {
  IdxSplit split;
  split.name = name;
  split.num_classes = 10;
  return {read_part(dir, "", "train", "/train", split), read_part(dir, "", "t10k", "/test", split)};
}

int64_t emnist_num_classes(const std::string& split) {
  static const std::vector<std::pair<std::string, int64_t>> kSplits = {
      {"balanced", 47}, {"byclass", 62}, {"bymerge", 47},
      {"digits", 10},   {"letters", 26}, {"mnist", 10}};
  std::string names;
  for (const auto& [name, classes] : kSplits) {
    if (name == split) return classes;
    names += (names.empty() ? "" : ", ") + name;
  }
  throw UsageError("unknown EMNIST split '" + split + "' (expected one of: " + names + ")");
}

TrainTest read_emnist_dir(const std::string& dir, const std::string& split_name) {
  IdxSplit split;
  split.name = "emnist-" + split_name;
  split.num_classes = emnist_num_classes(split_name);
  // The letters split numbers its classes 1..26 (0 is unused).
  split.label_offset = split_name == "letters" ? 1 : 0;
  split.transpose = true;
  const std::string prefix = "emnist-" + split_name + "-";
  return {read_part(dir, prefix, "train", "/train", split),
          read_part(dir, prefix, "test", "/test", split)};
}

}  // namespace tessera::data
