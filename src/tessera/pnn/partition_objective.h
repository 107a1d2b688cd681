// What one PNN partition is trained on and towards. Inputs: the batch's own inputs (the first
// partition, or a later one on handed-over activations), or the previous cut's synthetic labels
// S_in[y] plus Gaussian noise (a later partition in the parallel schedule). Target: the next cut's
// synthetic labels S_out[y] (regression), or the true labels (the last partition: cross-entropy).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <torch/torch.h>

#include "tessera/pnn/sil_space.h"
#include "tessera/train/objective.h"

namespace tessera::pnn {

struct PartitionTargets {
  torch::Tensor input_sil;   // undefined: train on the batch's inputs
  double input_noise = 0.0;  // std of the Gaussian noise added to input_sil rows while training
  torch::Tensor target_sil;  // undefined: classify the true labels; rows in target_space
  // The fixed map applied to the outputs before the regression loss; null: the full activation.
  std::shared_ptr<const SilSpace> target_space;
  std::string loss = "mse";  // regression loss against target_sil: mse | cosine
  uint64_t seed = 0;         // of the noise
};

// The SIL rows of `labels`: [B, ...] for labels [B]; for a sequence's labels [B, T] (the next
// token of every position), one row per position, [B, T, ...].
torch::Tensor sil_rows(const torch::Tensor& sil, const torch::Tensor& labels);

// Throws UsageError for an unknown loss or a negative noise.
void validate(const PartitionTargets& targets);

class PartitionObjective : public train::Objective {
 public:
  // The SIL tensors are moved to `device`.
  PartitionObjective(PartitionTargets targets, const torch::Device& device);

  torch::Tensor inputs(const data::Batch& batch, bool training) override;
  torch::Tensor loss(const torch::Tensor& outputs, const data::Batch& batch) override;
  bool is_classification() const override { return !targets_.target_sil.defined(); }
  // The outputs in the space their SIL rows live in (target_space's reduce; as they are if none).
  torch::Tensor in_target_space(const torch::Tensor& outputs) const;

 private:
  PartitionTargets targets_;
  at::Generator noise_generator_;  // CPU: the same noise on every device
};

}  // namespace tessera::pnn
