// Learning-rate schedules by name: constant, step, cosine; each with an optional linear warm-up.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace tessera::train {

struct ScheduleConfig {
  std::string name = "constant";  // constant | step | cosine
  int64_t warmup_steps = 0;       // linear ramp from lr/warmup_steps to lr
  int64_t step_every_epochs = 0;  // step: multiply by gamma every this many epochs (0: never)
  double gamma = 0.1;             // step
  double min_lr_ratio = 0.0;      // cosine: final lr = lr * min_lr_ratio
};

nlohmann::json to_json(const ScheduleConfig& config);
void validate(const ScheduleConfig& config);

// Learning rate for optimizer step `step` (0-based) of `total_steps`, `steps_per_epoch` per epoch.
double scheduled_lr(const ScheduleConfig& config, double base_lr, int64_t step, int64_t total_steps,
                    int64_t steps_per_epoch);

}  // namespace tessera::train
