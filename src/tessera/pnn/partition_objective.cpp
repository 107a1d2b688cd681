#include "tessera/pnn/partition_objective.h"

#include "tessera/core/error.h"
#include "tessera/core/seeding.h"

namespace tessera::pnn {

void validate(const PartitionTargets& targets) {
  require(targets.loss == "mse" || targets.loss == "cosine",
          "unknown --sil-loss '" + targets.loss + "' (known: mse, cosine)");
  require(targets.input_noise >= 0, "--sil-noise must be non-negative");
}

PartitionObjective::PartitionObjective(PartitionTargets targets, const torch::Device& device)
    : targets_(std::move(targets)), noise_generator_(make_generator(targets_.seed)) {
  validate(targets_);
  if (targets_.input_sil.defined()) targets_.input_sil = targets_.input_sil.to(device);
  if (targets_.target_sil.defined()) targets_.target_sil = targets_.target_sil.to(device);
}

torch::Tensor sil_rows(const torch::Tensor& sil, const torch::Tensor& labels) {
  std::vector<int64_t> shape = labels.sizes().vec();
  shape.insert(shape.end(), sil.sizes().begin() + 1, sil.sizes().end());
  return sil.index_select(0, labels.flatten()).view(shape);
}

torch::Tensor PartitionObjective::inputs(const data::Batch& batch, bool training) {
  if (!targets_.input_sil.defined()) return batch.inputs;
  torch::Tensor rows = sil_rows(targets_.input_sil, batch.labels);
  if (!training || targets_.input_noise == 0) return rows;
  const torch::Tensor noise = at::normal(0.0, targets_.input_noise, rows.sizes(), noise_generator_);
  return rows + noise.to(rows.device());
}

torch::Tensor PartitionObjective::loss(const torch::Tensor& outputs, const data::Batch& batch) {
  // A sequence's every position is a sample of its own (labels [B, T]).
  const int64_t sample_dims = batch.labels.dim();
  if (!targets_.target_sil.defined())
    return torch::nn::functional::cross_entropy(outputs.flatten(0, sample_dims - 1),
                                                batch.labels.flatten());
  const torch::Tensor target = sil_rows(targets_.target_sil, batch.labels);
  const torch::Tensor mapped = in_target_space(outputs);
  if (targets_.loss == "mse") return torch::mse_loss(mapped, target);
  const torch::Tensor similarity =
      torch::cosine_similarity(mapped.flatten(0, sample_dims - 1).flatten(1),
                               target.flatten(0, sample_dims - 1).flatten(1), /*dim=*/1);
  return (1.0 - similarity).mean();
}

torch::Tensor PartitionObjective::in_target_space(const torch::Tensor& outputs) const {
  return targets_.target_space ? targets_.target_space->reduce(outputs) : outputs;
}

}  // namespace tessera::pnn
