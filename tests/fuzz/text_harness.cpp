// Fuzzes the text corpus reader (data/text_corpus.h): the UTF-8 / NUL checks and the document
// splitting, a whole corpus file through load_text_corpus, and the token cache file it maps.
//
// Input: byte 0 picks what the rest is. 0: one file's text for split_documents; 1: bytes 1-2 set
// --seq-len (1..16) and the split seed, the rest is a corpus file; 2: the rest replaces the cache
// file of a fixed corpus (as a damaged or hostile cache file would).
#include <filesystem>

#include <torch/torch.h>

#include "fuzz_target.h"
#include "tessera/core/error.h"
#include "tessera/data/text_corpus.h"

namespace tessera::fuzz {
namespace {

const char kFortunes[] =
    "Ein Käfer\n%\nA fortune\nof two lines\n%\n%\n  \n%\nna\xc3\xafve caf\xc3\xa9 \xe2\x82\xac "
    "\xf0\x9f\x98\x80\n%\r\nlast, no newline";

// Reads every window of both splits, as training and evaluation would.
void consume_windows(const data::TrainTest& corpus) {
  for (const data::Dataset* split : {&corpus.train, &corpus.test}) {
    torch::Tensor inputs, labels;
    split->windows->cut(split->windows->offsets(1, 0), inputs, labels);
    (void)inputs.sum().item<int64_t>();
    (void)labels.sum().item<int64_t>();
  }
}

data::TextConfig corpus_config(const std::string& path, const std::string& cache_dir) {
  data::TextConfig config;
  config.path = path;
  config.cache_dir = cache_dir;
  config.seq_len = 4;
  config.validation_fraction = 0.5;
  return config;
}

// The cache file of a fixed corpus, written by the reader itself on first use.
const data::TextConfig& fixed_corpus() {
  static const data::TextConfig config = [] {
    const std::string corpus = write_scratch_file("fixed-corpus.txt", kFortunes);
    data::TextConfig fixed = corpus_config(corpus, scratch_dir() + "/fixed-cache");
    fixed.seq_len = 2;
    data::load_text_corpus(fixed);
    return fixed;
  }();
  return config;
}

std::string cache_file_path() {
  for (const auto& entry : std::filesystem::directory_iterator(fixed_corpus().cache_dir))
    return entry.path().string();
  throw std::logic_error("the text reader wrote no cache file");
}

std::string little_endian(int64_t value) {
  std::string bytes;
  for (int i = 0; i < 8; ++i) bytes.push_back(static_cast<char>(value >> (8 * i)));
  return bytes;
}

Seeds text_seeds() {
  const std::string train = "train text\n", validation = "held out\n";
  const std::string cache = std::string("TSRTXT01") + little_endian(11) + little_endian(9) +
                            little_endian(1) + little_endian(1) + train + validation;
  return {{"split-fortunes", std::string("\0", 1) + kFortunes},
          {"split-crlf", std::string("\0", 1) + "a\r\n%\r\nb\r\n%"},
          {"corpus-fortunes", std::string("\1\3\0", 3) + kFortunes},
          {"cache", std::string("\2", 1) + cache}};
}

bool read_text_input(const uint8_t* data, size_t size) {
  if (size == 0) return false;
  try {
    switch (data[0] % 3) {
      case 0:
        data::split_documents(std::string(reinterpret_cast<const char*>(data + 1), size - 1),
                              "fuzz");
        return true;
      case 1: {
        if (size < 3) return false;
        // Each input is a new corpus: keep one cache file at a time.
        const std::string cache = scratch_dir() + "/cache";
        std::filesystem::remove_all(cache);
        data::TextConfig config =
            corpus_config(write_scratch_file("corpus.txt", data + 3, size - 3), cache);
        config.seq_len = 1 + data[1] % 16;
        config.split_seed = data[2];
        consume_windows(data::load_text_corpus(config));
        return true;
      }
      default: {
        const data::TextConfig& config = fixed_corpus();
        // Written next to it, then renamed over it, as the reader writes its cache files.
        const std::string replacement = write_scratch_file("replacement-cache", data + 1, size - 1);
        std::filesystem::rename(replacement, cache_file_path());
        consume_windows(data::load_text_corpus(config));
        return true;
      }
    }
  } catch (const Error&) {
    return false;
  }
}

}  // namespace

const Registration text_registration("text", read_text_input, text_seeds);

}  // namespace tessera::fuzz
