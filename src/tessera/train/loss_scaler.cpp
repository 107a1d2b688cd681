#include "tessera/train/loss_scaler.h"

#include <cmath>

#include "tessera/core/error.h"

namespace tessera::train {

LossScaleConfig parse_loss_scale(const std::string& mode, double initial, Precision precision) {
  require(mode == "auto" || mode == "off" || mode == "dynamic",
          "--loss-scale must be auto, off or dynamic, got '" + mode + "'");
  int exponent = 0;
  // frexp gives 0.5 for every power of two; a scale that is not one would make unscaling inexact.
  require(initial > 0 && std::isfinite(initial) && std::frexp(initial, &exponent) == 0.5,
          "--loss-scale-init must be a positive power of two (e.g. 65536), got " +
              std::to_string(initial));
  LossScaleConfig config;
  config.dynamic = mode == "dynamic" || (mode == "auto" && precision == Precision::Fp16);
  config.initial = initial;
  return config;
}

nlohmann::json to_json(const LossScaleConfig& config) {
  if (!config.dynamic) return "off";
  return {{"mode", "dynamic"},
          {"initial", config.initial},
          {"growth_interval", config.growth_interval}};
}

LossScaler::LossScaler(LossScaleConfig config) : config_(config), scale_(config.initial) {}

torch::Tensor LossScaler::scale_loss(const torch::Tensor& loss) const {
  return enabled() ? loss * scale_ : loss;
}

void LossScaler::unscale(const std::vector<torch::Tensor>& parameters) const {
  if (!enabled()) return;
  torch::NoGradGuard no_grad;
  const double inverse = 1.0 / scale_;  // exact: the scale is a power of two
  for (const auto& p : parameters)
    if (p.grad().defined()) p.mutable_grad().mul_(inverse);
}

void LossScaler::step_was_clean() {
  if (!enabled()) return;
  if (++clean_in_a_row_ < config_.growth_interval || scale_ >= kMaxScale) return;
  scale_ *= 2.0;
  clean_in_a_row_ = 0;
  ++growths_;
}

bool LossScaler::back_off() {
  if (!enabled() || scale_ / 2.0 < kMinScale) return false;
  scale_ /= 2.0;
  clean_in_a_row_ = 0;
  ++backoffs_;
  return true;
}

bool LossScaler::back_off(RunDirectory* run, int64_t epoch, int64_t step) {
  if (!back_off()) return false;
  if (run != nullptr)
    run->log({{"type", "loss_scale_backoff"}, {"epoch", epoch}, {"step", step}, {"scale", scale_}});
  return true;
}

nlohmann::json LossScaler::state() const {
  if (!enabled()) return nullptr;
  return {{"scale", scale_},
          {"clean_in_a_row", clean_in_a_row_},
          {"backoffs", backoffs_},
          {"growths", growths_}};
}

void LossScaler::load(const nlohmann::json& state) {
  if (!enabled() || state.is_null()) return;  // an fp32 checkpoint resumed under fp16 starts afresh
  scale_ = state.at("scale").get<double>();
  clean_in_a_row_ = state.at("clean_in_a_row").get<int64_t>();
  backoffs_ = state.at("backoffs").get<int64_t>();
  growths_ = state.at("growths").get<int64_t>();
}

nlohmann::json LossScaler::summary() const {
  if (!enabled()) return "off";
  return {{"initial", config_.initial},
          {"final", scale_},
          {"backoffs", backoffs_},
          {"growths", growths_}};
}

}  // namespace tessera::train
