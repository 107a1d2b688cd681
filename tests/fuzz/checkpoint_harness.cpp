// Fuzzes checkpoint loading (train/checkpoint.h): the metadata read, then the weights and the
// Adam state into a small MLP, as `tessera eval` and `tessera train --resume` load them. The
// input is a whole checkpoint file (a libtorch zip archive).
#include <fstream>
#include <sstream>

#include <torch/torch.h>

#include "fuzz_target.h"
#include "tessera/core/error.h"
#include "tessera/models/staged_model.h"
#include "tessera/train/checkpoint.h"
#include "tessera/train/optimizer.h"

namespace tessera::fuzz {
namespace {

models::StagedModel checkpoint_model() {
  models::ModelConfig config;
  config.input_shape = {1, 2, 2};
  config.num_classes = 2;
  config.hidden = {3};
  torch::manual_seed(1);
  return models::build_model(config);
}

std::unique_ptr<torch::optim::Optimizer> checkpoint_optimizer(models::StagedModel& model) {
  train::OptimizerConfig config;
  config.name = "adam";
  return train::make_optimizer(model->parameters(), config);
}

std::string saved_checkpoint(bool with_optimizer) {
  models::StagedModel model = checkpoint_model();
  auto optimizer = checkpoint_optimizer(model);
  if (with_optimizer) {  // one step, so that Adam has state to save
    model->forward(torch::ones({2, 1, 2, 2})).sum().backward();
    optimizer->step();
  }
  const std::string path = scratch_dir() + "/seed-checkpoint";
  train::save_checkpoint(path, *model, with_optimizer ? optimizer.get() : nullptr,
                         {{"epoch", 1}, {"step", 7}, {"model", {{"arch", "mlp"}}}});
  std::ifstream in(path, std::ios::binary);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

Seeds checkpoint_seeds() {
  return {{"weights", saved_checkpoint(false)}, {"weights-adam", saved_checkpoint(true)}};
}

bool read_checkpoint_input(const uint8_t* data, size_t size) {
  const std::string path = write_scratch_file("checkpoint", data, size);
  try {
    (void)train::read_checkpoint_meta(path);
    models::StagedModel model = checkpoint_model();
    auto optimizer = checkpoint_optimizer(model);
    train::load_checkpoint(path, *model, optimizer.get());
    return true;
  } catch (const Error&) {
    return false;
  }
}

}  // namespace

const Registration checkpoint_registration("checkpoint", read_checkpoint_input, checkpoint_seeds);

}  // namespace tessera::fuzz
