#include "tessera/models/conv_architecture.h"

#include "tessera/models/conv_blocks.h"
#include "tessera/models/regularizers.h"
#include "tessera/models/subnet.h"

namespace tessera::models {

ModelConfig ConvArchitecture::resolve(ModelConfig config) const {
  if (config.depth == 0) config.depth = family_.default_depth;
  if (config.width == 0) config.width = family_.default_width;
  check_conv_config(config, family_.name);
  check_regularizers(config, /*has_branches=*/true);
  validate_subnet(config.subnet, unit_groups(config));
  return config;
}

int64_t ConvArchitecture::num_stages(const ModelConfig& config) const {
  return layout(config).num_stages();
}

std::string ConvArchitecture::stage_name(const ModelConfig& config, int64_t stage) const {
  return conv_stage_name(layout(config), stage);
}

Shape ConvArchitecture::boundary_shape(const ModelConfig& config, int64_t boundary) const {
  return conv_boundary_shape(layout(config), boundary);
}

StagePtr ConvArchitecture::build_stage(const ModelConfig& config, int64_t stage) const {
  const ConvLayout plan = layout(config);
  const bool pre = family_.pre_activation;
  if (stage == 0) return ConvStem(plan.input[0], plan.stem_channels, !pre).ptr();
  if (stage == plan.head_stage())
    return PoolHead(plan.head_channels(), plan.num_classes, pre).ptr();
  return build_block(plan.block(stage));
}

std::vector<UnitGroup> ConvArchitecture::unit_groups(const ModelConfig& config) const {
  return conv_unit_groups(layout(config), family_.inner_norm, family_.branch_output);
}

int64_t ConvArchitecture::stage_forward_flops(const ModelConfig& config, int64_t stage) const {
  const ConvLayout plan = layout(config);
  const bool pre = family_.pre_activation;
  if (stage == 0) return stem_forward_flops(plan, !pre);
  if (stage == plan.head_stage()) return head_forward_flops(plan, pre);
  return block_forward_flops(plan.block(stage));
}

}  // namespace tessera::models
