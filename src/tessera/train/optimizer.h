// Optimizers by name (sgd, adam, adamw) and the measured size of their state.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

namespace tessera::train {

struct OptimizerConfig {
  std::string name = "adam";  // sgd | adam | adamw
  double lr = 1e-3;
  double weight_decay = 0.0;
  double momentum = 0.9;  // sgd
  bool nesterov = false;  // sgd
  double beta1 = 0.9;     // adam, adamw
  double beta2 = 0.999;   // adam, adamw
  double eps = 1e-8;      // adam, adamw
};

nlohmann::json to_json(const OptimizerConfig& config);

// Throws UsageError for an unknown name or an invalid value (negative lr, nesterov without
// momentum, betas outside [0, 1)).
void validate(const OptimizerConfig& config);

std::unique_ptr<torch::optim::Optimizer> make_optimizer(std::vector<torch::Tensor> parameters,
                                                        const OptimizerConfig& config);

// Sets the learning rate of every parameter group.
void set_learning_rate(torch::optim::Optimizer& optimizer, double lr);

// Bytes held by the optimizer's per-parameter state tensors (momentum, Adam moments), read from
// the state itself. Zero before the first step, since libtorch allocates state lazily.
int64_t optimizer_state_bytes(torch::optim::Optimizer& optimizer);

}  // namespace tessera::train
