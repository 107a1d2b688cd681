#include "tessera/data/load.h"

#include <filesystem>
#include <functional>
#include <map>

#include "tessera/core/error.h"
#include "tessera/data/cifar.h"
#include "tessera/data/idx.h"
#include "tessera/data/synthetic.h"
#include "tessera/data/text_corpus.h"

namespace tessera::data {

namespace {

constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

std::string required_dir(const DataConfig& config) {
  require(!config.dir.empty(), "data set '" + config.name + "' needs a directory (dir)");
  if (!std::filesystem::is_directory(config.dir)) {
    throw Error("data directory " + config.dir + " for '" + config.name + "' does not exist");
  }
  return config.dir;
}

TrainTest load_fashion_mnist(const DataConfig& config) {
  if (!config.dir.empty()) return read_mnist_dir(required_dir(config), "fashion-mnist");
  try {
    return read_mnist_dir(kFashionMnistDir, "fashion-mnist");
  } catch (const Error& error) {
    // The default location is the Debian package's: say how to get it.
    throw Error(std::string(error.what()) +
                "; install the Debian package dataset-fashion-mnist (apt-get install "
                "dataset-fashion-mnist) or set the data directory");
  }
}

TrainTest load_cifar100(const DataConfig& config) {
  require(config.cifar100_labels == "fine" || config.cifar100_labels == "coarse",
          "cifar100 labels must be 'fine' or 'coarse', got '" + config.cifar100_labels + "'");
  return read_cifar100_dir(required_dir(config), config.cifar100_labels == "fine");
}

TrainTest load_synthetic(const DataConfig& config) {
  SyntheticConfig synthetic;
  synthetic.train_size = config.synthetic_train;
  synthetic.test_size = config.synthetic_test;
  synthetic.num_classes = config.synthetic_classes;
  synthetic.sample_shape = config.synthetic_shape;
  synthetic.seed = config.synthetic_seed;
  return make_synthetic(synthetic);
}

TrainTest load_text(const DataConfig& config) {
  TextConfig text;
  text.path = !config.path.empty()  ? config.path
              : !config.dir.empty() ? config.dir
                                    : kDefaultTextCorpus;
  text.seq_len = config.seq_len;
  text.validation_fraction = config.text_validation_fraction;
  try {
    return load_text_corpus(text);
  } catch (const UsageError&) {
    throw;
  } catch (const Error& error) {
    if (text.path != kDefaultTextCorpus || std::filesystem::exists(text.path)) throw;
    throw Error(std::string(error.what()) +
                "; install the Debian package fortunes (apt-get install fortunes) or give "
                "--data-path FILE|DIR");
  }
}

using Loader = std::function<TrainTest(const DataConfig&)>;

const std::map<std::string, Loader>& loaders() {
  static const std::map<std::string, Loader> kLoaders = {
      {"fashion-mnist", load_fashion_mnist},
      {"mnist", [](const DataConfig& c) { return read_mnist_dir(required_dir(c), "mnist"); }},
      {"emnist",
       [](const DataConfig& c) { return read_emnist_dir(required_dir(c), c.emnist_split); }},
      {"cifar10", [](const DataConfig& c) { return read_cifar10_dir(required_dir(c)); }},
      {"cifar100", load_cifar100},
      {"synthetic", load_synthetic},
      {"text", load_text},
  };
  return kLoaders;
}

// Keeps the first `limit` samples (0: all).
void keep_first(Dataset& dataset, int64_t limit) {
  if (limit == 0 || limit >= dataset.size()) return;
  if (dataset.windows) {  // fewer windows per epoch over the same tokens
    auto windows = std::make_shared<TokenWindows>(*dataset.windows);
    windows->count = limit;
    dataset.windows = std::move(windows);
    return;
  }
  // Contiguous copies, so the full tensors are freed.
  dataset.inputs = dataset.inputs.slice(0, 0, limit).clone();
  dataset.labels = dataset.labels.slice(0, 0, limit).clone();
}

}  // namespace

TrainTest load_dataset(const DataConfig& config) {
  const auto found = loaders().find(config.name);
  if (found == loaders().end()) {
    std::string names;
    for (const auto& entry : loaders()) names += (names.empty() ? "" : ", ") + entry.first;
    throw UsageError("unknown data set '" + config.name + "' (expected one of: " + names + ")");
  }
  require(config.limit_train >= 0,
          "limit_train must be >= 0, got " + std::to_string(config.limit_train));
  require(config.limit_test >= 0,
          "limit_test must be >= 0, got " + std::to_string(config.limit_test));
  TrainTest data = found->second(config);
  keep_first(data.train, config.limit_train);
  keep_first(data.test, config.limit_test);
  if (data.train.windows) return data;  // tokens are not normalised
  // Statistics of the (possibly limited) training split, applied to both splits.
  const Normalization stats = channel_statistics(data.train.inputs);
  normalize_in_place(data.train.inputs, stats);
  normalize_in_place(data.test.inputs, stats);
  return data;
}

}  // namespace tessera::data
