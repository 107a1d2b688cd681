#include "tessera/pnn/regression_fit.h"

#include <cstdio>

#include "tessera/core/error.h"
#include "tessera/data/batches.h"

namespace tessera::pnn {

namespace {

// Outputs and targets of up to `max_samples` samples, flattened to [N, units] float64 on the CPU.
std::pair<torch::Tensor, torch::Tensor> outputs_and_targets(
    models::StagedModel& model, PartitionObjective& objective, const torch::Tensor& target_sil,
    const data::Dataset& dataset, const torch::Device& device, int64_t max_samples) {
  torch::NoGradGuard no_grad;
  const bool was_training = model->is_training();
  model->eval();
  data::BatchIterator batches(dataset, data::in_order(256));
  std::vector<torch::Tensor> outputs;
  std::vector<torch::Tensor> targets;
  int64_t seen = 0;
  data::Batch batch;
  while (seen < max_samples && batches.next(batch)) {
    batch.inputs = batch.inputs.to(device);
    batch.labels = batch.labels.to(device);
    // One row per sample, or per position of a sequence (each regresses its own SIL row).
    const int64_t row = target_sil[0].numel();
    outputs.push_back(objective
                          .in_target_space(model->forward(objective.inputs(batch,
                                                                           /*training=*/false)))
                          .reshape({-1, row})
                          .to(torch::kCPU, torch::kFloat64));
    targets.push_back(sil_rows(target_sil, batch.labels.to(target_sil.device()))
                          .reshape({-1, row})
                          .to(torch::kCPU, torch::kFloat64));
    seen += outputs.back().size(0);
  }
  if (was_training) model->train();
  require(seen > 0, "measuring a partition's fit needs at least one sample");
  const int64_t n = std::min(seen, max_samples);
  return {torch::cat(outputs).narrow(0, 0, n), torch::cat(targets).narrow(0, 0, n)};
}

}  // namespace

RegressionFit measure_regression_fit(models::StagedModel& model, PartitionObjective& objective,
                                     const torch::Tensor& target_sil, const data::Dataset& dataset,
                                     const torch::Device& device, int64_t max_samples) {
  const auto [outputs, targets] =
      outputs_and_targets(model, objective, target_sil, dataset, device, max_samples);
  RegressionFit fit;
  fit.samples = outputs.size(0);
  fit.units = outputs.size(1);
  const double error = (outputs - targets).pow(2).mean().item<double>();
  const double label_spread = (targets - targets.mean(0)).pow(2).mean().item<double>();
  fit.r_squared = label_spread > 0 ? 1.0 - error / label_spread : 0.0;
  const torch::Tensor deviation = outputs - outputs.mean(0);
  const double mean_square = outputs.pow(2).mean().item<double>();
  fit.output_spread = mean_square > 0 ? deviation.pow(2).mean().item<double>() / mean_square : 0.0;
  // A unit is constant when it moves by less than 1e-6 of the outputs' RMS (a dead ReLU: exactly).
  const double tolerance = 1e-6 * std::sqrt(mean_square);
  const torch::Tensor range = std::get<0>(outputs.max(0)) - std::get<0>(outputs.min(0));
  fit.constant_units = range.le(tolerance).sum().item<int64_t>();
  return fit;
}

bool collapsed(const RegressionFit& fit) {
  return fit.output_spread < 1e-3;
}

bool poor_fit(const RegressionFit& fit, const std::string& loss) {
  return loss == "mse" && fit.r_squared < 0.1;
}

std::string describe(const RegressionFit& fit) {
  char text[256];
  std::snprintf(text, sizeof(text),
                "R^2 against its synthetic labels %.4f, output spread %.2e, %lld of %lld output "
                "units constant over %lld samples",
                fit.r_squared, fit.output_spread, static_cast<long long>(fit.constant_units),
                static_cast<long long>(fit.units), static_cast<long long>(fit.samples));
  return text;
}

void check_regression_fit(const RegressionFit& fit, int64_t partition, const std::string& loss) {
  const std::string name = "partition " + std::to_string(partition);
  if (collapsed(fit))
    throw Error(name + " collapsed: its outputs are (almost) the same for every input (" +
                describe(fit) +
                "), so the joined model would be at chance. Try a lower --lr, a larger "
                "--sil-kappa, or --sil uniform / gaussian");
  if (poor_fit(fit, loss))
    std::fprintf(stderr,
                 "warning: %s fits its synthetic labels poorly (%s); the parallel schedule's "
                 "next partition trains on the labels, not on these outputs, so expect a weak "
                 "joined model. More epochs, another --sil-kappa or cuts that give this "
                 "partition more capacity may help.\n",
                 name.c_str(), describe(fit).c_str());
}

nlohmann::json to_json(const RegressionFit& fit) {
  return {{"samples", fit.samples},
          {"r_squared", fit.r_squared},
          {"output_spread", fit.output_spread},
          {"constant_units", fit.constant_units},
          {"units", fit.units}};
}

}  // namespace tessera::pnn
