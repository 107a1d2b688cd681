// Locating and reading data files, raw or gzip-compressed.
#pragma once

#include <string>

#include <torch/torch.h>

namespace tessera::data {

// Path of `base_name` in `dir`: the raw file if present, else `base_name.gz`. Throws
// tessera::Error naming both candidates when neither exists.
std::string find_data_file(const std::string& dir, const std::string& base_name);

// The whole (decompressed) content of `path` as a uint8 tensor [bytes]; gzip is detected by zlib,
// raw files pass through. Throws tessera::Error naming the file when it is missing, cannot be
// opened, or is a corrupt or cut-off gzip stream.
torch::Tensor read_file_bytes(const std::string& path);

}  // namespace tessera::data
