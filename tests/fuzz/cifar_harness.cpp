// Fuzzes the CIFAR reader (data/cifar.h). Input: byte 0 picks the record format (0: CIFAR-10;
// 1: CIFAR-100 fine labels; 2: CIFAR-100 coarse labels), the rest is one data file (raw or gzip).
#include <torch/torch.h>

#include "fuzz_target.h"
#include "tessera/core/error.h"
#include "tessera/data/cifar.h"

namespace tessera::fuzz {
namespace {

const data::CifarFormat kCifarFormats[] = {{1, 0, 10}, {2, 1, 100}, {2, 0, 20}};

std::string cifar_records(int64_t count, int64_t label_bytes) {
  std::string file;
  for (int64_t r = 0; r < count; ++r) {
    for (int64_t b = 0; b < label_bytes; ++b) file.push_back(static_cast<char>((r + b) % 10));
    for (int64_t i = 0; i < 3 * 32 * 32; ++i) file.push_back(static_cast<char>((i * 7 + r) & 0xff));
  }
  return file;
}

Seeds cifar_seeds() {
  return {{"cifar10-one", '\0' + cifar_records(1, 1)},
          {"cifar10-gz", '\0' + gzip(cifar_records(3, 1))},
          {"cifar100-fine", '\1' + cifar_records(1, 2)},
          {"cifar100-coarse-gz", '\2' + gzip(cifar_records(2, 2))}};
}

bool read_cifar_input(const uint8_t* data, size_t size) {
  if (size == 0) return false;
  const data::CifarFormat& format = kCifarFormats[data[0] % 3];
  try {
    const data::Dataset dataset = data::read_cifar_files(
        {write_scratch_file("cifar.bin", data + 1, size - 1)}, format, "fuzz");
    (void)dataset.inputs.sum().item<double>();
    (void)dataset.labels.sum().item<int64_t>();
    return true;
  } catch (const Error&) {
    return false;
  }
}

}  // namespace

const Registration cifar_registration("cifar", read_cifar_input, cifar_seeds);

}  // namespace tessera::fuzz
