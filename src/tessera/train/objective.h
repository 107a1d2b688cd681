// What a model is trained to do: turns a batch into the model's input and its output into a
// loss. Conventional training classifies; PNN partitions regress synthetic intermediate labels.
#pragma once

#include <cstdint>
#include <optional>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

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
  // Figures added to metrics.jsonl's epoch records and summary.json beside the loss: for a
  // language model bits per byte and perplexity of `test_loss` (when given) and tokens per second.
  virtual nlohmann::json extra_metrics(std::optional<double> test_loss,
                                       double samples_per_second) const {
    (void)test_loss;
    (void)samples_per_second;
    return nlohmann::json::object();
  }
};

// Cross-entropy on the true labels: logits [B, C] against labels [B], or, for a language model,
// logits [B, T, V] against the next token at every position [B, T] (the mean over all positions).
class Classification : public Objective {
 public:
  torch::Tensor inputs(const data::Batch& batch, bool training) override {
    note_sequences(batch);  // every pipeline stage sees the inputs, only the last one the loss
    return Objective::inputs(batch, training);
  }
  torch::Tensor loss(const torch::Tensor& outputs, const data::Batch& batch) override {
    note_sequences(batch);
    if (outputs.dim() == 3)
      return torch::nn::functional::cross_entropy(outputs.flatten(0, 1), batch.labels.flatten());
    return torch::nn::functional::cross_entropy(outputs, batch.labels);
  }
  bool is_classification() const override { return true; }
  // Once it has seen sequences: bits_per_byte (byte tokens: the loss in nats / ln 2) and
  // perplexity (e^loss) of the test loss, tokens_per_second.
  nlohmann::json extra_metrics(std::optional<double> test_loss,
                               double samples_per_second) const override;

 private:
  void note_sequences(const data::Batch& batch) {
    if (batch.labels.dim() == 2) tokens_per_sample_ = batch.labels.size(1);
  }

  int64_t tokens_per_sample_ = 0;  // 0 until a batch of sequences was seen
};

}  // namespace tessera::train
