// The Architecture shared by the residual conv families (resnet, wrn): stem, one stage per block,
// pooled head. A family supplies its layout, its block and the block's FLOPs; everything else
// (stages, shapes, unit groups, validation) is common.
#pragma once

#include <string>
#include <vector>

#include "tessera/models/architecture.h"
#include "tessera/models/conv_layout.h"

namespace tessera::models {

struct ConvFamily {
  std::string name;
  int64_t default_depth = 0;
  double default_width = 0;
  // Pre-activation nets (wrn) have a bare conv stem and a BN-ReLU head; post-activation nets
  // (resnet) the other way round.
  bool pre_activation = false;
  std::string inner_norm;  // the BN after conv1, owned by the block's channel group
  // The branch's last affine map: scaling these scales the branch's output.
  std::vector<std::string> branch_output;
};

class ConvArchitecture : public Architecture {
 public:
  explicit ConvArchitecture(ConvFamily family) : family_(std::move(family)) {}

  std::string name() const override { return family_.name; }
  ModelConfig resolve(ModelConfig config) const override;
  int64_t num_stages(const ModelConfig& config) const override;
  std::string stage_name(const ModelConfig& config, int64_t stage) const override;
  Shape boundary_shape(const ModelConfig& config, int64_t boundary) const override;
  StagePtr build_stage(const ModelConfig& config, int64_t stage) const override;
  std::vector<UnitGroup> unit_groups(const ModelConfig& config) const override;
  int64_t stage_forward_flops(const ModelConfig& config, int64_t stage) const override;

 protected:
  // Throws UsageError for an unsupported depth.
  virtual ConvLayout layout(const ModelConfig& config) const = 0;
  virtual StagePtr build_block(const ConvBlockPlan& plan) const = 0;
  virtual int64_t block_forward_flops(const ConvBlockPlan& plan) const = 0;

 private:
  ConvFamily family_;
};

}  // namespace tessera::models
