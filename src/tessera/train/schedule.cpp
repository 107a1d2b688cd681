#include "tessera/train/schedule.h"

#include <cmath>

#include "tessera/core/error.h"

namespace tessera::train {

nlohmann::json to_json(const ScheduleConfig& config) {
  return {{"name", config.name},
          {"warmup_steps", config.warmup_steps},
          {"step_every_epochs", config.step_every_epochs},
          {"gamma", config.gamma},
          {"min_lr_ratio", config.min_lr_ratio}};
}

void validate(const ScheduleConfig& config) {
  require(config.name == "constant" || config.name == "step" || config.name == "cosine",
          "unknown schedule '" + config.name + "' (known: constant, step, cosine)");
  require(config.warmup_steps >= 0, "--warmup-steps must be non-negative");
  require(config.step_every_epochs >= 0, "--step-every must be non-negative");
  require(config.gamma > 0, "--gamma must be positive");
  require(config.min_lr_ratio >= 0 && config.min_lr_ratio <= 1, "--min-lr-ratio must be in [0, 1]");
}

double scheduled_lr(const ScheduleConfig& config, double base_lr, int64_t step, int64_t total_steps,
                    int64_t steps_per_epoch) {
  if (step < config.warmup_steps)
    return base_lr * static_cast<double>(step + 1) / static_cast<double>(config.warmup_steps);
  if (config.name == "step" && config.step_every_epochs > 0 && steps_per_epoch > 0) {
    const int64_t epoch = step / steps_per_epoch;
    return base_lr * std::pow(config.gamma, static_cast<double>(epoch / config.step_every_epochs));
  }
  if (config.name == "cosine") {
    const int64_t span = std::max<int64_t>(1, total_steps - config.warmup_steps);
    const double progress =
        std::min(1.0, static_cast<double>(step - config.warmup_steps) / static_cast<double>(span));
    const double floor = base_lr * config.min_lr_ratio;
    return floor + (base_lr - floor) * 0.5 * (1.0 + std::cos(M_PI * progress));
  }
  return base_lr;
}

}  // namespace tessera::train
