// Text for language models (`--data text`): byte-level tokens (vocabulary 256, no tokenizer) of
// UTF-8 text, split into documents, a deterministic train / validation split by document, and
// windows of seq_len tokens over each split (see TokenWindows in dataset.h).
//
// Documents: every regular file of the corpus (a file, or a directory searched recursively, in
// path order; symbolic links and the fortune index files `*.dat` / `*.u8` are skipped) is one
// document, or several when it holds record separators, lines holding only `%` (the fortune
// format). A document's text is its lines without the separators; documents are joined with one
// blank line between them.
//
// Split: document d is held out for validation when a hash of (d, split seed) falls below the
// validation fraction; the split depends on the corpus alone, not on the training seed.
//
// Windows: training has floor((train tokens - 1) / seq_len) windows per epoch (one pass over the
// tokens on average), at offsets drawn from (seed, epoch); validation has the same number of fixed,
// non-overlapping windows at multiples of seq_len over the validation tokens.
//
// Memory: both splits' tokens are written once to a cache file (named by a hash of the files'
// paths, sizes and times and the split settings; in $TESSERA_CACHE_DIR, else <temp>/tessera-cache)
// and memory-mapped read-only, so the workers of a host share one copy in the page cache.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tessera/data/dataset.h"

namespace tessera::data {

constexpr int64_t kByteVocabulary = 256;
constexpr const char* kDefaultTextCorpus = "/usr/share/games/fortunes";

struct TextConfig {
  std::string path = kDefaultTextCorpus;  // a file or a directory
  int64_t seq_len = 128;
  double validation_fraction = 0.05;
  uint64_t split_seed = 0;
  std::string cache_dir;  // empty: $TESSERA_CACHE_DIR, else <temp>/tessera-cache
};

// The corpus' text files, in path order. Throws tessera::Error for a missing path or one without
// any file.
std::vector<std::string> text_files(const std::string& path);

// The documents of one file's text (see above). Throws tessera::Error naming `origin` and the byte
// offset if the text has a NUL byte or is not valid UTF-8.
std::vector<std::string> split_documents(const std::string& text, const std::string& origin);

// Whether document `index` is held out for validation.
bool is_validation_document(int64_t index, double fraction, uint64_t split_seed);

// Reads, splits and maps the corpus. Throws tessera::Error for a missing or empty path, a binary
// file, a training split shorter than one window plus its target, and a validation split without
// one whole window; UsageError for seq_len < 1 or a fraction outside (0, 1).
TrainTest load_text_corpus(const TextConfig& config);

}  // namespace tessera::data
