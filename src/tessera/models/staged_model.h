// A network, or a contiguous range of its stages (a PNN partition), as one torch module.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "tessera/models/architecture.h"
#include "tessera/models/model_config.h"

namespace tessera::models {

// forward(x) applies stages [begin, end) in order. Stage i is registered as "stage<i>", so a
// parameter has the same name in a partition and in the full model, and partitions are joined by
// copying their parameters into one full model (see join_partitions).
class StagedModelImpl : public torch::nn::Module {
 public:
  // Builds stages [begin, end) of the (resolved) config; end == -1 means the last stage.
  explicit StagedModelImpl(const ModelConfig& config, int64_t begin = 0, int64_t end = -1);

  torch::Tensor forward(torch::Tensor x);

  const ModelConfig& config() const { return config_; }
  int64_t begin_stage() const { return begin_; }
  int64_t end_stage() const { return end_; }
  bool is_full() const;
  // Shape of one sample this model takes / produces.
  Shape input_shape() const;
  Shape output_shape() const;
  // Analytic forward FLOPs for one sample.
  int64_t forward_flops() const;

 private:
  ModelConfig config_;
  int64_t begin_ = 0;
  int64_t end_ = 0;
  std::vector<StagePtr> stages_;
};
TORCH_MODULE(StagedModel);

// Resolves the config (architecture defaults, validation) and builds the model.
StagedModel build_model(const ModelConfig& config, int64_t begin = 0, int64_t end = -1);

// UsageError when `method` (e.g. "PNN") would put stage 0 and the last stage on different workers
// and they share a weight (llama's tied embeddings).
void require_cuttable(const ModelConfig& config, const std::string& method);

// Sum of parameter bytes of a module.
int64_t parameter_bytes(torch::nn::Module& module);
int64_t parameter_count(torch::nn::Module& module);

}  // namespace tessera::models
