// The model-parallel baseline of `tessera pnn --compare`: a real pipeline at PNN's cuts, whose
// bytes per step are one batch's activations forward and their gradients back at every cut.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "tessera/data/load.h"
#include "tessera/pnn/model_parallel_baseline.h"

using namespace tessera;

namespace {

models::ModelConfig mlp() {
  models::ModelConfig config;
  config.input_shape = {1, 6, 6};
  config.num_classes = 4;
  config.hidden = {16, 12, 8};
  return models::architecture(config.arch).resolve(config);
}

data::Dataset train_set() {
  data::DataConfig config;
  config.name = "synthetic";
  config.synthetic_train = 256;
  config.synthetic_test = 16;
  config.synthetic_classes = 4;
  config.synthetic_shape = {1, 6, 6};
  return data::load_dataset(config).train;
}

int64_t measured(const std::vector<int64_t>& cuts) {
  train::TrainConfig train;
  train.batch_size = 32;
  const auto scratch = std::filesystem::temp_directory_path() /
                       ("tessera_model_parallel_" + std::to_string(getpid()));
  const auto bytes = pnn::measure_model_parallel_bytes(mlp(), pnn::plan_from_cuts(mlp(), cuts),
                                                       train, train_set(), 3, scratch.string());
  EXPECT_EQ(bytes.steps, 3);
  EXPECT_FALSE(std::filesystem::exists(scratch));
  return bytes.bytes_per_step;
}

}  // namespace

TEST(ModelParallelBaseline, SendsEachCutsActivationsAndGradientsForEveryBatch) {
  // float32: 4 bytes; a batch of 32; forward and backward.
  EXPECT_EQ(measured({1}), 2 * 32 * 16 * 4);
  EXPECT_EQ(measured({1, 2}), 2 * 32 * (16 + 12) * 4);
}
