// Models saved as safetensors: loaded back into the same network exactly (buffers included), told
// apart from checkpoints by content, and refused with the mismatch named when they do not fit.
#include <gtest/gtest.h>

#include <fstream>
#include <functional>

#include "../test_support.h"
#include "tessera/core/error.h"
#include "tessera/train/checkpoint.h"
#include "tessera/train/model_file.h"

namespace model_file_test {

using tessera::models::ModelConfig;
using tessera::testing::fresh_dir;
using tessera::train::ModelFileFormat;

ModelConfig small_resnet() {  // batch norm: running statistics and an int64 counter as buffers
  ModelConfig config;
  config.arch = "resnet";
  config.depth = 8;
  config.width = 0.125;
  config.input_shape = {3, 8, 8};
  config.num_classes = 4;
  return config;
}

// Fills every parameter and buffer with values a fresh model would not have.
void scramble(torch::nn::Module& model) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(5);
  for (auto& p : model.parameters()) p.copy_(torch::randn_like(p));
  for (auto& b : model.buffers()) b.fill_(7);
}

void expect_error_containing(const std::function<void()>& action, const std::string& expected) {
  try {
    action();
    ADD_FAILURE() << "no error; expected one containing '" << expected << "'";
  } catch (const tessera::Error& e) {
    EXPECT_NE(std::string(e.what()).find(expected), std::string::npos) << e.what();
  }
}

TEST(ModelFile, SafetensorsRoundTripsAModelWithBuffersAndItsMeta) {
  const std::string dir = fresh_dir("train_model_file_round_trip");
  auto model = tessera::models::build_model(small_resnet());
  scramble(*model);
  const nlohmann::json meta = {{"model", tessera::models::to_json(model->config())},
                               {"begin_stage", 0},
                               {"end_stage", model->end_stage()},
                               {"epoch", 3}};
  tessera::train::save_safetensors_model(dir + "/m.safetensors", *model, meta);
  EXPECT_EQ(tessera::train::detect_model_file_format(dir + "/m.safetensors"),
            ModelFileFormat::Safetensors);
  EXPECT_EQ(tessera::train::read_model_file_meta(dir + "/m.safetensors"), meta);

  auto loaded = tessera::train::load_model(dir + "/m.safetensors");
  EXPECT_EQ(loaded.meta, meta);
  const auto expected = model->named_buffers();
  for (const auto& item : loaded.model->named_buffers())
    EXPECT_TRUE(torch::equal(item.value(), expected[item.key()])) << item.key();
  const auto parameters = model->named_parameters();
  for (const auto& item : loaded.model->named_parameters())
    EXPECT_TRUE(torch::equal(item.value(), parameters[item.key()])) << item.key();
  model->eval();
  loaded.model->eval();
  const torch::Tensor x = torch::randn({2, 3, 8, 8});
  EXPECT_TRUE(torch::equal(model->forward(x), loaded.model->forward(x)));
}

TEST(ModelFile, APartitionExportsAsItself) {
  const std::string dir = fresh_dir("train_model_file_partition");
  auto partition = tessera::models::build_model(small_resnet(), 1, 3);
  tessera::train::save_safetensors_model(dir + "/p.safetensors", *partition,
                                         {{"model", tessera::models::to_json(partition->config())},
                                          {"begin_stage", 1},
                                          {"end_stage", 3}});
  auto loaded = tessera::train::load_model(dir + "/p.safetensors");
  EXPECT_EQ(loaded.model->begin_stage(), 1);
  EXPECT_EQ(loaded.model->end_stage(), 3);
  EXPECT_FALSE(loaded.model->is_full());
}

TEST(ModelFile, TellsTheFormatsApartAndRefusesOtherFiles) {
  const std::string dir = fresh_dir("train_model_file_formats");
  auto model = tessera::models::build_model(small_resnet());
  tessera::train::save_checkpoint(dir + "/c.pt", *model, nullptr,
                                  {{"model", tessera::models::to_json(model->config())}});
  EXPECT_EQ(tessera::train::detect_model_file_format(dir + "/c.pt"), ModelFileFormat::Checkpoint);
  std::ofstream(dir + "/text.txt") << "hello, world";
  std::ofstream(dir + "/empty");
  for (const char* name : {"/text.txt", "/empty"})
    expect_error_containing([&] { tessera::train::detect_model_file_format(dir + name); },
                            "is neither a tessera checkpoint");
  expect_error_containing([&] { tessera::train::load_model(dir + "/missing"); }, dir + "/missing");
}

TEST(ModelFile, RefusesAFileThatDoesNotFitTheModel) {
  const std::string dir = fresh_dir("train_model_file_mismatch");
  ModelConfig config;
  config.input_shape = {4};
  config.hidden = {6};
  config.num_classes = 3;
  auto model = tessera::models::build_model(config);
  const std::string path = dir + "/m.safetensors";
  tessera::train::save_safetensors_model(path, *model,
                                         {{"model", tessera::models::to_json(config)}});

  config.hidden = {5};  // a narrower network
  auto narrower = tessera::models::build_model(config);
  expect_error_containing([&] { tessera::train::load_model_file(path, *narrower); },
                          "'stage0.linear.weight' is [6, 4] in the file but [5, 4] in the model");
  config.hidden = {6, 3};  // a deeper one: the file lacks its last layer
  auto deeper = tessera::models::build_model(config);
  expect_error_containing([&] { tessera::train::load_model_file(path, *deeper); },
                          "it has no tensor 'stage2.linear.weight'");
  config.hidden = {6};
  auto first_stage = tessera::models::build_model(config, 0, 1);  // fewer tensors than the file
  expect_error_containing([&] { tessera::train::load_model_file(path, *first_stage); },
                          "the model has no 'stage1.linear.bias'");
}

}  // namespace model_file_test
