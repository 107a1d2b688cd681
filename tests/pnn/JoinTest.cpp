#include "tessera/pnn/join.h"

#include <filesystem>

#include <gtest/gtest.h>

#include "../test_support.h"
#include "tessera/core/error.h"
#include "tessera/models/architecture.h"
#include "tessera/train/checkpoint.h"

namespace tessera::pnn {
namespace {

using tessera::testing::resolved;

std::vector<models::ModelConfig> one_of_each_family() {
  models::ModelConfig mlp;
  mlp.input_shape = {1, 8, 8};
  mlp.hidden = {32, 32, 32};
  models::ModelConfig resnet;
  resnet.arch = "resnet";
  resnet.input_shape = {3, 16, 16};
  resnet.depth = 8;
  resnet.width = 0.5;
  models::ModelConfig vit;
  vit.arch = "vit";
  vit.input_shape = {1, 16, 16};
  vit.depth = 2;
  vit.embed_dim = 32;
  vit.num_heads = 2;
  vit.mlp_dim = 64;
  return {resolved(mlp), resolved(resnet), resolved(vit)};
}

// Two partitions cut in the middle, trained (here: freshly initialised) separately.
std::vector<models::StagedModel> two_partitions(const models::ModelConfig& config) {
  const int64_t stages = models::architecture(config.arch).num_stages(config);
  torch::manual_seed(11);
  models::StagedModel left(config, 0, stages / 2);
  torch::manual_seed(12);
  models::StagedModel right(config, stages / 2, stages);
  return {left, right};
}

TEST(Join, JoinedForwardEqualsThePartitionsOneAfterAnother) {
  for (const auto& config : one_of_each_family()) {
    auto parts = two_partitions(config);
    torch::manual_seed(13);
    models::StagedModel full = models::build_model(config);
    for (auto& part : parts) copy_partition_into(full, part);
    full->eval();
    for (auto& part : parts) part->eval();
    const torch::Tensor x = torch::randn(with_batch(4, config.input_shape));
    torch::NoGradGuard no_grad;
    const torch::Tensor expected = parts[1]->forward(parts[0]->forward(x));
    EXPECT_TRUE(torch::allclose(full->forward(x), expected, 1e-5, 1e-6)) << config.arch;
  }
}

TEST(Join, JoinsCheckpointsAndRejectsGapsAndOverlaps) {
  const auto dir = std::filesystem::temp_directory_path() / "tessera_join_test";
  std::filesystem::create_directories(dir);
  const auto config = one_of_each_family()[0];
  auto parts = two_partitions(config);
  std::vector<std::string> paths;
  for (size_t i = 0; i < parts.size(); ++i) {
    paths.push_back((dir / ("part" + std::to_string(i) + ".pt")).string());
    train::save_checkpoint(paths.back(), *parts[i], nullptr,
                           {{"model", models::to_json(config)},
                            {"begin_stage", parts[i]->begin_stage()},
                            {"end_stage", parts[i]->end_stage()}});
  }
  models::StagedModel joined = join_checkpoints(config, paths);
  const torch::Tensor x = torch::randn(with_batch(3, config.input_shape));
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::allclose(joined->forward(x), parts[1]->forward(parts[0]->forward(x))));
  EXPECT_THROW(join_checkpoints(config, {paths[0]}), Error);            // stages missing
  EXPECT_THROW(join_checkpoints(config, {paths[1], paths[0]}), Error);  // out of order
  EXPECT_THROW(join_checkpoints(config, {paths[0], paths[0]}), Error);  // overlap
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace tessera::pnn
