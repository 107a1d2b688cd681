#include "tessera/train/optimizer.h"

#include "tessera/core/error.h"
#include "tessera/metrics/memory_tracker.h"
#include "tessera/train/chunked_adam.h"
#include "tessera/train/fused_sgd.h"

namespace tessera::train {

nlohmann::json to_json(const OptimizerConfig& config) {
  return {{"name", config.name},
          {"lr", config.lr},
          {"weight_decay", config.weight_decay},
          {"momentum", config.momentum},
          {"nesterov", config.nesterov},
          {"beta1", config.beta1},
          {"beta2", config.beta2},
          {"eps", config.eps}};
}

void validate(const OptimizerConfig& config) {
  require(config.name == "sgd" || config.name == "adam" || config.name == "adamw",
          "unknown optimizer '" + config.name + "' (known: sgd, adam, adamw)");
  require(config.lr > 0, "--lr must be positive");
  require(config.weight_decay >= 0, "--weight-decay must be non-negative");
  require(config.momentum >= 0 && config.momentum < 1, "--momentum must be in [0, 1)");
  require(!config.nesterov || config.momentum > 0, "--nesterov needs a positive --momentum");
  require(config.beta1 >= 0 && config.beta1 < 1 && config.beta2 >= 0 && config.beta2 < 1,
          "--beta1 and --beta2 must be in [0, 1)");
  require(config.eps > 0, "--eps must be positive");
}

std::unique_ptr<torch::optim::Optimizer> make_optimizer(std::vector<torch::Tensor> parameters,
                                                        const OptimizerConfig& config) {
  validate(config);
  if (config.name == "sgd") {
    return std::make_unique<FusedSGD>(parameters, torch::optim::SGDOptions(config.lr)
                                                      .momentum(config.momentum)
                                                      .nesterov(config.nesterov)
                                                      .weight_decay(config.weight_decay));
  }
  const auto betas = std::make_tuple(config.beta1, config.beta2);
  if (config.name == "adam") {
    return std::make_unique<ChunkedAdam>(parameters, torch::optim::AdamOptions(config.lr)
                                                         .betas(betas)
                                                         .eps(config.eps)
                                                         .weight_decay(config.weight_decay));
  }
  return std::make_unique<ChunkedAdamW>(parameters, torch::optim::AdamWOptions(config.lr)
                                                        .betas(betas)
                                                        .eps(config.eps)
                                                        .weight_decay(config.weight_decay));
}

void set_learning_rate(torch::optim::Optimizer& optimizer, double lr) {
  for (auto& group : optimizer.param_groups()) group.options().set_lr(lr);
}

int64_t optimizer_state_bytes(torch::optim::Optimizer& optimizer) {
  int64_t total = 0;
  for (const auto& entry : optimizer.state()) {
    const torch::optim::OptimizerParamState* state = entry.second.get();
    if (auto* sgd = dynamic_cast<const torch::optim::SGDParamState*>(state)) {
      total += metrics::tensor_bytes(sgd->momentum_buffer());
    } else if (auto* adam = dynamic_cast<const torch::optim::AdamParamState*>(state)) {
      total += metrics::tensor_bytes(adam->exp_avg()) + metrics::tensor_bytes(adam->exp_avg_sq()) +
               metrics::tensor_bytes(adam->max_exp_avg_sq());
    } else if (auto* adamw = dynamic_cast<const torch::optim::AdamWParamState*>(state)) {
      total += metrics::tensor_bytes(adamw->exp_avg()) +
               metrics::tensor_bytes(adamw->exp_avg_sq()) +
               metrics::tensor_bytes(adamw->max_exp_avg_sq());
    }
  }
  return total;
}

}  // namespace tessera::train
