// Tiny text corpora for the language-model tests: fortune-style files written to a scratch
// directory, and the llama config and text data set built on them.
#pragma once

#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include "tessera/data/load.h"
#include "tessera/models/model_config.h"

namespace tessera::testing {

// Writes `records` to `path` in the fortune format (a line holding only % after each record).
inline void write_fortune_file(const std::string& path, const std::vector<std::string>& records) {
  std::ofstream out(path, std::ios::binary);
  for (const auto& record : records) out << record << "\n%\n";
}

// `count` short English-like records, record i mentioning i, so that documents differ.
inline std::vector<std::string> sample_records(int64_t count) {
  static const char* const kWords[] = {"the", "cat", "sat", "on",   "a",    "mat", "and",
                                       "dog", "ran", "to",  "home", "with", "joy", "under",
                                       "sun", "of",  "old", "town", "we",   "sing"};
  std::vector<std::string> records;
  for (int64_t i = 0; i < count; ++i) {
    std::string text = "Record " + std::to_string(i) + ":";
    for (int64_t w = 0; w < 12 + i % 7; ++w)
      text += std::string(" ") + kWords[(i * 7 + w * 3) % 20];
    records.push_back(text + ".");
  }
  return records;
}

// Text data over the corpus at `path` (its cache in `cache_dir`'s sibling via the environment is
// not needed: the cache goes to the default place), windows of `seq_len`.
inline data::DataConfig text_data_config(const std::string& path, int64_t seq_len) {
  data::DataConfig config;
  config.name = "text";
  config.path = path;
  config.seq_len = seq_len;
  return config;
}

// A tiny llama for byte tokens: `depth` blocks of width 16 (4 heads of 4), SwiGLU 24 wide.
inline models::ModelConfig tiny_llama(int64_t seq_len, int64_t depth = 2) {
  models::ModelConfig config;
  config.arch = "llama";
  config.input_shape = {seq_len};
  config.num_classes = 256;
  config.depth = depth;
  config.embed_dim = 16;
  config.num_heads = 4;
  config.mlp_dim = 24;
  return config;
}

}  // namespace tessera::testing
