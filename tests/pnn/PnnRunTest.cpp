#include "tessera/pnn/pnn_run.h"

#include <filesystem>

#include <gtest/gtest.h>

#include "../test_support.h"
#include "tessera/core/seeding.h"
#include "tessera/data/load.h"
#include "tessera/metrics/comm_counter.h"
#include "tessera/metrics/memory_tracker.h"
#include "tessera/models/architecture.h"
#include "tessera/pnn/join.h"
#include "tessera/train/batch_norm_statistics.h"
#include "tessera/train/checkpoint.h"
#include "tessera/train/run_directory.h"
#include "tessera/train/trainer.h"

namespace tessera::pnn {
namespace {

using tessera::testing::synthetic_8x8;

PnnSetup mlp_setup(const std::string& run_dir) {
  PnnSetup setup;
  setup.model.input_shape = {1, 8, 8};
  setup.model.hidden = {64, 64, 64};
  setup.model = models::architecture("mlp").resolve(setup.model);
  setup.train.epochs = 4;
  setup.train.batch_size = 64;
  setup.train.optimizer.name = "adam";
  setup.train.optimizer.lr = 1e-3;
  setup.train.quiet = true;
  setup.train.evals_per_epoch = 2;
  setup.pnn.cuts = {2};
  setup.plan = choose_plan(setup);
  setup.run_dir = run_dir;
  return setup;
}

TEST(PnnRun, SequentialPnnLearnsTheSyntheticSetAndRecordsEverything) {
  metrics::install_memory_tracker();
  const auto dir = std::filesystem::temp_directory_path() / "tessera_pnn_run_test";
  std::filesystem::remove_all(dir);
  const auto data = synthetic_8x8();
  const PnnSetup setup = mlp_setup(dir.string());
  const PnnResult result = run_pnn(setup, data);

  EXPECT_GE(result.joined.accuracy, 0.9);
  EXPECT_GE(result.recovered.accuracy, 0.9);
  ASSERT_EQ(result.partitions.size(), 2u);
  EXPECT_EQ(result.partitions[0].at("end_stage"), 2);
  // The only communication is the hand-over of the first partition's outputs (64 floats per
  // sample, training and test set).
  EXPECT_EQ(result.handover_bytes, (2000 + 500) * 64 * 4);
  EXPECT_EQ(result.partition_comm_bytes, 0);
  // Curve: 2 evaluations per epoch of the last partition, then the recovery epoch's 2.
  ASSERT_EQ(result.curve.size(), 10u);
  for (size_t i = 1; i < result.curve.size(); ++i)
    EXPECT_GT(result.curve[i].flops, result.curve[i - 1].flops);
  EXPECT_EQ(result.curve.back().flops, result.train_flops);
  EXPECT_DOUBLE_EQ(result.curve.back().accuracy, result.recovered.accuracy);
  EXPECT_DOUBLE_EQ(result.curve.back().loss, result.recovered.loss);
  // The partitions' last point is the joined model before recovery: its loss is the joined loss.
  EXPECT_NEAR(result.curve[7].loss, result.joined.loss, 1e-5);
  EXPECT_FALSE(to_json(result).contains("test_bits_per_byte"));  // images, not text
  // Each partition holds only its own stages: together, exactly the whole model's parameters.
  int64_t partition_param_bytes = 0;
  for (const auto& part : result.partitions) {
    EXPECT_GT(part.at("peak_tensor_bytes"), 0);
    partition_param_bytes += part.at("param_bytes").get<int64_t>();
  }
  EXPECT_EQ(partition_param_bytes, result.recovery.at("param_bytes").get<int64_t>());
  // The result is an ordinary checkpoint of the whole model.
  const auto meta = train::read_checkpoint_meta(result.checkpoint);
  EXPECT_EQ(meta.at("begin_stage"), 0);
  EXPECT_TRUE(std::filesystem::exists(dir / "sil.pt"));
  EXPECT_EQ(plan_from_json(train::read_json_file(plan_path(dir.string()))).cuts(),
            (std::vector<int64_t>{2}));
  EXPECT_TRUE(std::filesystem::exists(dir / "summary.json"));
  std::filesystem::remove_all(dir);
}

TEST(PnnRun, BalancedPlanCutsTheDefaultMlpAfterTheThirdLayer) {
  metrics::install_memory_tracker();
  PnnSetup setup;
  setup.model = models::architecture("mlp").resolve(setup.model);  // 784-1024x5-10
  setup.pnn.partitions = 2;
  setup.train.optimizer.name = "adam";
  EXPECT_EQ(choose_plan(setup).cuts(), (std::vector<int64_t>{3}));
}

// A small ResNet on 8x8 images, cut after its first residual stage.
PnnSetup resnet_setup(const std::string& run_dir, int64_t bn_batches) {
  PnnSetup setup = mlp_setup(run_dir);
  models::ModelConfig resnet;
  resnet.arch = "resnet";
  resnet.depth = 8;
  resnet.width = 0.25;
  resnet.input_shape = {1, 8, 8};
  setup.model = models::architecture("resnet").resolve(resnet);
  setup.train.epochs = 1;
  setup.pnn.cuts = {2};
  setup.pnn.bn_batches = bn_batches;
  setup.plan = choose_plan(setup);
  return setup;
}

TEST(PnnRun, TheJoinedModelsBatchNormStatisticsAreReEstimatedWhenAsked) {
  metrics::install_memory_tracker();
  const auto data = synthetic_8x8();
  const std::string dir = tessera::testing::fresh_dir("pnn_run_bn_batches");
  const PnnResult kept = run_pnn(resnet_setup(dir + "/kept", 0), data);
  const PnnResult measured = run_pnn(resnet_setup(dir + "/measured", 4), data);
  // The same partitions (nothing before the join depends on the flag), another joined model.
  EXPECT_EQ(kept.partitions[0].at("train_loss"), measured.partitions[0].at("train_loss"));
  EXPECT_NE(kept.joined.loss, measured.joined.loss);
  // It is the partitions' checkpoints joined, with statistics from 4 batches of the training set.
  PnnSetup setup = resnet_setup(dir + "/measured", 4);
  models::StagedModel joined = join_checkpoints(
      setup.model,
      {dir + "/measured/partition0/checkpoint.pt", dir + "/measured/partition1/checkpoint.pt"});
  train::recompute_batch_norm_statistics(joined, data.train, 4, setup.train.batch_size,
                                         mix_seed(setup.train.seed, 0xB47C), torch::kCPU);
  train::Trainer evaluator(joined, std::make_shared<train::Classification>(), setup.train, nullptr);
  EXPECT_DOUBLE_EQ(evaluator.evaluate(data.test).loss, measured.joined.loss);
  EXPECT_EQ(to_json(setup.pnn)["bn_batches"], 4);
  // A model without batch norm is left as it is.
  const PnnResult mlp_kept = run_pnn(mlp_setup(dir + "/mlp_kept"), data);
  PnnSetup mlp = mlp_setup(dir + "/mlp_measured");
  mlp.pnn.bn_batches = 4;
  EXPECT_EQ(run_pnn(mlp, data).joined.loss, mlp_kept.joined.loss);
}

}  // namespace
}  // namespace tessera::pnn
