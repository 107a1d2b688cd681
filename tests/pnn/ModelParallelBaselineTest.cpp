// The model-parallel baseline of `tessera pnn --compare`: a real pipeline at PNN's cuts, whose
// bytes per step are one batch's activations forward and their gradients back at every cut.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "../test_support.h"
#include "tessera/pnn/model_parallel_baseline.h"

using namespace tessera;

namespace {

using tessera::testing::mlp_6x6;
using tessera::testing::synthetic_6x6;

int64_t measured(const std::vector<int64_t>& cuts) {
  train::TrainConfig train;
  train.batch_size = 32;
  const auto scratch = std::filesystem::temp_directory_path() /
                       ("tessera_model_parallel_" + std::to_string(getpid()));
  const auto bytes =
      pnn::measure_model_parallel_bytes(mlp_6x6(), pnn::plan_from_cuts(mlp_6x6(), cuts), train,
                                        synthetic_6x6(256).train, 3, scratch.string());
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
