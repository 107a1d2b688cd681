#include "tessera/models/staged_model.h"

#include "tessera/core/error.h"
#include "tessera/models/regularizers.h"

namespace tessera::models {

StagedModelImpl::StagedModelImpl(const ModelConfig& config, int64_t begin, int64_t end)
    : config_(config) {
  const Architecture& arch = architecture(config.arch);
  const int64_t total = arch.num_stages(config);
  if (end < 0) end = total;
  require(0 <= begin && begin < end && end <= total,
          "stage range [" + std::to_string(begin) + ", " + std::to_string(end) +
              ") is not a non-empty range of the model's " + std::to_string(total) + " stages");
  begin_ = begin;
  end_ = end;
  for (int64_t i = begin; i < end; ++i) {
    StagePtr stage = arch.build_stage(config, i);
    register_module("stage" + std::to_string(i), stage);
    stages_.push_back(std::move(stage));
  }
  arch.link_stages(config, begin, stages_);
  // Distinct mask streams per layer from the start; the Trainer reseeds them from the run's seed.
  seed_stochastic_layers(*this, 0);
}

torch::Tensor StagedModelImpl::forward(torch::Tensor x) {
  for (auto& stage : stages_) x = stage->forward(x);
  return x;
}

bool StagedModelImpl::is_full() const {
  return begin_ == 0 && end_ == architecture(config_.arch).num_stages(config_);
}

Shape StagedModelImpl::input_shape() const {
  return architecture(config_.arch).boundary_shape(config_, begin_);
}

Shape StagedModelImpl::output_shape() const {
  return architecture(config_.arch).boundary_shape(config_, end_);
}

int64_t StagedModelImpl::forward_flops() const {
  const Architecture& arch = architecture(config_.arch);
  int64_t flops = 0;
  for (int64_t i = begin_; i < end_; ++i) flops += arch.stage_forward_flops(config_, i);
  return flops;
}

StagedModel build_model(const ModelConfig& config, int64_t begin, int64_t end) {
  return StagedModel(architecture(config.arch).resolve(config), begin, end);
}

void require_cuttable(const ModelConfig& config, const std::string& method) {
  require(!config.tie_embeddings,
          "--tie-embeddings: " + method +
              " puts the token embedding and the output head on different workers, so they "
              "cannot share one weight; train this model untied");
}

int64_t parameter_count(torch::nn::Module& module) {
  int64_t count = 0;
  for (const auto& p : module.parameters()) count += p.numel();
  return count;
}

int64_t parameter_bytes(torch::nn::Module& module) {
  int64_t bytes = 0;
  for (const auto& p : module.parameters()) bytes += p.numel() * p.element_size();
  return bytes;
}

}  // namespace tessera::models
