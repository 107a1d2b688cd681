// Dynamic loss scaling (--loss-scale), as torch.cuda.amp.GradScaler does it: the loss is
// multiplied by a power of two before backward so that small fp16 gradients do not flush to zero,
// the gradients are divided by it again before clipping and the optimizer step, and a step whose
// scaled gradients overflowed is skipped with the scale halved. After `growth_interval` clean steps
// in a row the scale doubles. Powers of two make scaling exact in fp32: a run whose gradients never
// overflow trains the same weights with or without it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "tessera/train/precision.h"
#include "tessera/train/run_directory.h"

namespace tessera::train {

struct LossScaleConfig {
  bool dynamic = false;
  double initial = 65536.0;        // 2^16, GradScaler's default
  int64_t growth_interval = 2000;  // clean steps in a row before the scale doubles
};

// "auto" (dynamic under fp16, off otherwise), "off" or "dynamic"; UsageError naming --loss-scale
// otherwise, or for an initial scale that is not a positive power of two.
LossScaleConfig parse_loss_scale(const std::string& mode, double initial, Precision precision);
nlohmann::json to_json(const LossScaleConfig& config);

class LossScaler {
 public:
  // Below this the scale does not go: overflowing gradients at scale 1 are not an fp16 range
  // problem but a diverging run, which --nonfinite then handles.
  static constexpr double kMinScale = 1.0;
  static constexpr double kMaxScale = 16777216.0;  // 2^24: growth stops here

  explicit LossScaler(LossScaleConfig config);

  bool enabled() const { return config_.dynamic; }
  double scale() const { return scale_; }
  // `loss` times the scale (the loss itself when disabled).
  torch::Tensor scale_loss(const torch::Tensor& loss) const;
  // Divides the gradients of `parameters` by the scale, in place (nothing when disabled).
  void unscale(const std::vector<torch::Tensor>& parameters) const;

  // After the workers agreed that the step's gradients were finite: counts towards growth.
  void step_was_clean();
  // After they agreed that some were not: halves the scale and returns true (skip the step), or
  // returns false when disabled or already at kMinScale (then the non-finite guard decides).
  bool back_off();
  // back_off(), recording a successful one in `run` (if any) as a "loss_scale_backoff" record of
  // the 1-based `epoch` and `step` with the new scale.
  bool back_off(RunDirectory* run, int64_t epoch, int64_t step);
  int64_t backoffs() const { return backoffs_; }
  int64_t growths() const { return growths_; }

  // Scale, clean steps in a row and counters, for checkpoints (null when disabled); load()
  // restores them.
  nlohmann::json state() const;
  void load(const nlohmann::json& state);
  // summary.json's "loss_scale": "off", or the initial and final scale, back-offs and growths.
  nlohmann::json summary() const;

 private:
  LossScaleConfig config_;
  double scale_;
  int64_t clean_in_a_row_ = 0;
  int64_t backoffs_ = 0;
  int64_t growths_ = 0;
};

}  // namespace tessera::train
