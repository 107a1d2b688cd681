// What a model is trained to do: turns a batch into the model's input and its output into a
// loss. Conventional training classifies; PNN partitions regress synthetic intermediate labels.
#pragma once

#include <torch/torch.h>

#include "tessera/data/batches.h"

namespace tessera::train {

class Objective {
 public:
  virtual ~Objective() = default;
  // The tensor fed to the model for this batch (already on the model's device).
  virtual torch::Tensor inputs(const data::Batch& batch, bool training) {
    (void)training;
    return batch.inputs;
  }
  // Mean loss over the batch.
  virtual torch::Tensor loss(const torch::Tensor& outputs, const data::Batch& batch) = 0;
  // True when outputs are class logits, so top-1 accuracy is meaningful.
  virtual bool is_classification() const = 0;
};

// Cross-entropy on the true labels.
class Classification : public Objective {
 public:
  torch::Tensor loss(const torch::Tensor& outputs, const data::Batch& batch) override {
    return torch::nn::functional::cross_entropy(outputs, batch.labels);
  }
  bool is_classification() const override { return true; }
};

}  // namespace tessera::train
