// Small helpers that several test areas share: scratch directories, JSON files, parameter
// snapshots, resolved model configs, and the synthetic data sets and training config of the
// training tests. Test files take what they need with `using tessera::testing::<name>;` in their
// anonymous namespace: the files of a folder compile as one translation unit (unity build), where
// the same using-declaration may appear in several files but the same definition may not.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "command_output.h"
#include "tessera/data/load.h"
#include "tessera/models/architecture.h"
#include "tessera/models/staged_model.h"
#include "tessera/train/trainer.h"

namespace tessera::testing {

// An empty directory <temp>/tessera_<name>_<pid> (anything already there is removed). The pid
// keeps concurrent test processes apart (ctest -j runs every test case as its own process, and
// another checkout may run the same tests); `name` keeps apart the directories of one process (a
// test binary run by hand runs all its tests in one). Start `name` with the test area (e.g.
// "sdp_cli_block"), so that what is left in <temp> says where it came from.
inline std::string fresh_dir(const std::string& name) {
  const auto path =
      std::filesystem::temp_directory_path() / ("tessera_" + name + "_" + std::to_string(getpid()));
  std::filesystem::remove_all(path);
  std::filesystem::create_directories(path);
  return path.string();
}

// The JSON document in the file at `path`; throws nlohmann::json::parse_error if the file is
// missing or not JSON.
// The file's bytes (empty when it cannot be opened): to check that a failed run left a file as it
// was.
inline std::string file_contents(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

inline nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

// Detached copies of every parameter of `model`, in parameters() order: they keep the values of
// now however the model trains on.
inline std::vector<torch::Tensor> snapshot(models::StagedModel& model) {
  std::vector<torch::Tensor> copies;
  for (const auto& p : model->parameters()) copies.push_back(p.detach().clone());
  return copies;
}

// `config` with its architecture's defaults filled in and checked.
inline models::ModelConfig resolved(models::ModelConfig config) {
  return models::architecture(config.arch).resolve(config);
}

// A small synthetic set for the multi-rank tests: `train_samples` training and 64 test samples of
// shape 1x6x6 in 4 classes, seed 5.
inline data::TrainTest synthetic_6x6(int64_t train_samples) {
  data::DataConfig config;
  config.name = "synthetic";
  config.synthetic_train = train_samples;
  config.synthetic_test = 64;
  config.synthetic_classes = 4;
  config.synthetic_shape = {1, 6, 6};
  config.synthetic_seed = 5;
  return data::load_dataset(config);
}

// The MLP of the multi-rank tests, for synthetic_6x6's data: 1x6x6 inputs, hidden layers of 16,
// 12 and 8 neurons, 4 classes.
inline models::ModelConfig mlp_6x6() {
  models::ModelConfig config;
  config.input_shape = {1, 6, 6};
  config.num_classes = 4;
  config.hidden = {16, 12, 8};
  return resolved(config);
}

// A synthetic set a small MLP learns well in a few epochs: 2000 training and 500 test samples of
// shape 1x8x8 in 10 classes, seed 7.
inline data::TrainTest synthetic_8x8() {
  data::DataConfig config;
  config.name = "synthetic";
  config.synthetic_train = 2000;
  config.synthetic_test = 500;
  config.synthetic_classes = 10;
  config.synthetic_shape = {1, 8, 8};
  config.synthetic_seed = 7;
  return data::load_dataset(config);
}

// Two quiet epochs of SGD (lr 0.05, momentum 0.9, seed 11) for rank `rank` of `world`.
inline train::TrainConfig sgd_config(int64_t batch_size, int64_t rank, int64_t world) {
  train::TrainConfig config;
  config.epochs = 2;
  config.batch_size = batch_size;
  config.seed = 11;
  config.optimizer.name = "sgd";
  config.optimizer.lr = 0.05;
  config.optimizer.momentum = 0.9;
  config.quiet = true;
  config.rank = rank;
  config.world_size = world;
  return config;
}

// Expects `tessera eval --checkpoint checkpoint DATA_FLAGS --output output` to succeed and find
// `accuracy`: a run's checkpoint is an ordinary one that reproduces the accuracy it reported.
inline void expect_eval_reproduces(const std::string& checkpoint, const std::string& data_flags,
                                   const std::string& output, double accuracy) {
  const auto e = run_command(std::string(TESSERA_BINARY) + " eval --checkpoint " + checkpoint +
                             " " + data_flags + " --output " + output + " 2>&1");
  ASSERT_EQ(e.code, 0) << e.output;
  EXPECT_DOUBLE_EQ(read_json(output)["test_accuracy"].get<double>(), accuracy);
}

}  // namespace tessera::testing
