// Fuzzes the IDX reader (data/idx.h): images files, labels files and an image/label pair.
//
// Input: byte 0 picks what the rest is. 0: an images file; 1: a labels file; 2: a pair, bytes
// 1-2 (big-endian) the images file's length, then the images file, then the labels file, read as
// an EMNIST-style split (byte 0's higher bits: transpose, label offset 1, 26 or 10 classes).
// Files may be gzip-compressed, as on disk.
#include <torch/torch.h>

#include "fuzz_target.h"
#include "tessera/core/error.h"
#include "tessera/data/idx.h"

namespace tessera::fuzz {
namespace {

std::string big_endian(uint32_t value) {
  std::string bytes;
  for (int shift = 24; shift >= 0; shift -= 8) bytes.push_back(static_cast<char>(value >> shift));
  return bytes;
}

std::string idx_images_file(uint32_t count, uint32_t rows, uint32_t cols) {
  std::string file = big_endian(0x803) + big_endian(count) + big_endian(rows) + big_endian(cols);
  for (uint32_t i = 0; i < count * rows * cols; ++i) file.push_back(static_cast<char>(i * 37));
  return file;
}

std::string idx_labels_file(uint32_t count, uint32_t classes, uint32_t offset) {
  std::string file = big_endian(0x801) + big_endian(count);
  for (uint32_t i = 0; i < count; ++i) file.push_back(static_cast<char>(offset + i % classes));
  return file;
}

std::string pair_input(uint8_t mode, const std::string& images, const std::string& labels) {
  const auto length = static_cast<uint16_t>(images.size());
  return std::string(1, static_cast<char>(mode)) + static_cast<char>(length >> 8) +
         static_cast<char>(length & 0xff) + images + labels;
}

Seeds idx_seeds() {
  const std::string images = idx_images_file(3, 4, 5);
  const std::string labels = idx_labels_file(3, 10, 0);
  return {{"images", '\0' + images},
          {"images-gz", '\0' + gzip(images)},
          {"labels", '\1' + labels},
          {"labels-gz", '\1' + gzip(labels)},
          {"pair", pair_input(2, images, labels)},
          // transpose + offset 1 + 26 classes: EMNIST letters
          {"pair-letters",
           pair_input(2 | 4 | 8 | 16, idx_images_file(2, 3, 2), idx_labels_file(2, 26, 1))},
          {"pair-gz", pair_input(2, gzip(images), gzip(labels))}};
}

// Touches every element, so a reader returning a view past its buffer shows under ASan.
void consume(const torch::Tensor& tensor) {
  (void)tensor.sum().item<double>();
}

bool read_idx_input(const uint8_t* data, size_t size) {
  if (size == 0) return false;
  const uint8_t mode = data[0];
  try {
    switch (mode % 3) {
      case 0:
        consume(data::read_idx_images(write_scratch_file("images", data + 1, size - 1)));
        return true;
      case 1:
        consume(data::read_idx_labels(write_scratch_file("labels", data + 1, size - 1)));
        return true;
      default: {
        if (size < 3) return false;
        const size_t images_size = std::min<size_t>((size_t{data[1]} << 8) | data[2], size - 3);
        data::IdxSplit split;
        split.images_path = write_scratch_file("images", data + 3, images_size);
        split.labels_path =
            write_scratch_file("labels", data + 3 + images_size, size - 3 - images_size);
        split.name = "fuzz";
        split.transpose = (mode & 4) != 0;
        split.label_offset = (mode & 8) != 0 ? 1 : 0;
        split.num_classes = (mode & 16) != 0 ? 26 : 10;
        const data::Dataset dataset = data::read_idx_dataset(split);
        consume(dataset.inputs);
        consume(dataset.labels);
        return true;
      }
    }
  } catch (const Error&) {
    return false;
  }
}

}  // namespace

const Registration idx_registration("idx", read_idx_input, idx_seeds);

}  // namespace tessera::fuzz
