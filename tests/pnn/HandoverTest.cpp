#include "tessera/pnn/handover.h"

#include <filesystem>

#include <gtest/gtest.h>

#include "tessera/core/error.h"
#include "tessera/metrics/comm_counter.h"
#include "tessera/metrics/measurement_scope.h"
#include "tessera/models/architecture.h"

namespace tessera::pnn {
namespace {

TEST(Handover, MemoryAndFileGiveThePartitionsOutputsAndCountTheirBytes) {
  models::ModelConfig config;
  config.input_shape = {1, 4, 4};
  config.hidden = {24, 24};
  config = models::architecture("mlp").resolve(config);
  models::StagedModel left(config, 0, 1);
  data::Dataset input;
  input.name = "toy";
  input.inputs = torch::randn({50, 1, 4, 4});
  input.labels = torch::randint(0, 10, {50}, torch::kLong);
  input.num_classes = 10;
  torch::Tensor expected;
  {
    torch::NoGradGuard no_grad;
    left->eval();
    expected = left->forward(input.inputs);
    left->train();
  }
  HandoverOptions options;
  options.batch_size = 16;  // several batches, the last one partial
  options.file = (std::filesystem::temp_directory_path() / "tessera_handover_test.bin").string();
  for (const std::string store : {"memory", "file"}) {
    options.store = store;
    const metrics::MeasurementScope measured;
    const data::Dataset output = hand_over(left, input, options);
    EXPECT_TRUE(torch::allclose(output.inputs, expected, 1e-6, 1e-6)) << store;
    EXPECT_TRUE(output.labels.equal(input.labels));
    EXPECT_EQ(output.num_classes, 10);
    EXPECT_EQ(measured.comm_bytes_by_op().at("handover"), 50 * 24 * 4) << store;
    EXPECT_TRUE(left->is_training()) << "the partition's mode is restored";
  }
  EXPECT_FALSE(std::filesystem::exists(options.file)) << "the mapped file is unlinked";
  options.store = "floppy";
  EXPECT_THROW(hand_over(left, input, options), UsageError);
  options.store = "file";
  options.file = "/nonexistent-dir/handover.bin";
  EXPECT_THROW(hand_over(left, input, options), Error);
}

}  // namespace
}  // namespace tessera::pnn
