#include "tessera/models/conv_layout.h"

#include <algorithm>
#include <cmath>

#include "tessera/core/error.h"
#include "tessera/models/subnet.h"

namespace tessera::models {

const ConvBlockPlan& ConvLayout::block(int64_t stage) const {
  if (stage < 1 || stage >= head_stage())
    throw Error("conv layout: stage " + std::to_string(stage) +
                " is not a residual block (blocks are stages 1.." +
                std::to_string(head_stage() - 1) + ")");
  return blocks[static_cast<size_t>(stage - 1)];
}

int64_t ConvLayout::head_channels() const {
  return blocks.empty() ? stem_channels : blocks.back().out_channels;
}

int64_t ConvLayout::head_h() const {
  return blocks.empty() ? input[1] : blocks.back().out_h;
}

int64_t ConvLayout::head_w() const {
  return blocks.empty() ? input[2] : blocks.back().out_w;
}

int64_t conv_out_size(int64_t in, int64_t stride) {
  // (in + 2 * 1 - 3) / stride + 1 for 3x3 padding 1, and (in - 1) / stride + 1 for 1x1: equal.
  return (in - 1) / stride + 1;
}

int64_t scaled_width(int64_t base, double multiplier) {
  return std::max<int64_t>(1, std::llround(static_cast<double>(base) * multiplier));
}

ConvLayout make_conv_layout(const ModelConfig& config, int64_t stem_channels,
                            const std::vector<int64_t>& level_widths,
                            const std::vector<int64_t>& blocks_per_level) {
  ConvLayout layout;
  layout.input = config.input_shape;
  layout.stem_channels = stem_channels;
  layout.num_classes = config.num_classes;
  int64_t channels = stem_channels;
  int64_t h = config.input_shape[1];
  int64_t w = config.input_shape[2];
  int64_t stage = 1;
  for (size_t level = 0; level < level_widths.size(); ++level) {
    for (int64_t index = 0; index < blocks_per_level[level]; ++index, ++stage) {
      ConvBlockPlan block;
      block.stage = stage;
      block.level = static_cast<int64_t>(level) + 1;
      block.index = index + 1;
      block.in_channels = channels;
      block.out_channels = level_widths[level];
      block.inner_channels = level_widths[level];
      block.stride = (level > 0 && index == 0) ? 2 : 1;
      block.in_h = h;
      block.in_w = w;
      block.out_h = conv_out_size(h, block.stride);
      block.out_w = conv_out_size(w, block.stride);
      block.branch_held = holds_branch(config.subnet, branch_group_name(stage));
      block.held_inner =
          held_units(config.subnet, channels_group_name(stage), block.inner_channels);
      block.dropout = config.dropout;
      block.drop_path = config.drop_path;
      channels = block.out_channels;
      h = block.out_h;
      w = block.out_w;
      layout.blocks.push_back(block);
    }
  }
  return layout;
}

void check_conv_config(const ModelConfig& config, const std::string& arch) {
  require(config.input_shape.size() == 3,
          arch + ": input shape must be channels x height x width, got " +
              tessera::to_string(config.input_shape));
  for (int64_t dim : config.input_shape)
    require(dim > 0, arch + ": input shape " + tessera::to_string(config.input_shape) +
                         " has a non-positive dimension");
  require(config.num_classes >= 2, "model: num_classes must be at least 2");
  require(std::isfinite(config.width) && config.width > 0,
          arch + ": width must be positive, got " + std::to_string(config.width));
}

std::string branch_group_name(int64_t stage) {
  return "stage" + std::to_string(stage) + ".branch";
}

std::string channels_group_name(int64_t stage) {
  return "stage" + std::to_string(stage) + ".channels";
}

std::string conv_stage_name(const ConvLayout& layout, int64_t stage) {
  if (stage == 0)
    return "stem " + std::to_string(layout.input[0]) + "->" + std::to_string(layout.stem_channels);
  if (stage == layout.head_stage())
    return "head " + std::to_string(layout.head_channels()) + "->" +
           std::to_string(layout.num_classes);
  const ConvBlockPlan& b = layout.block(stage);
  std::string name = "block " + std::to_string(b.level) + "." + std::to_string(b.index) + " " +
                     std::to_string(b.out_channels) + "ch" + (b.stride == 2 ? " s2" : "");
  if (!b.branch_held) return name + " (branch dropped)";
  if (b.held_inner != b.inner_channels)
    name +=
        " (" + std::to_string(b.held_inner) + "/" + std::to_string(b.inner_channels) + " inner ch)";
  return name;
}

Shape conv_boundary_shape(const ConvLayout& layout, int64_t boundary) {
  if (boundary == 0) return layout.input;
  if (boundary == layout.num_stages()) return {layout.num_classes};
  if (boundary == 1) return {layout.stem_channels, layout.input[1], layout.input[2]};
  const ConvBlockPlan& b = layout.block(boundary - 1);
  return {b.out_channels, b.out_h, b.out_w};
}

namespace {
const char* const kNormTensors[] = {"weight", "bias", "running_mean", "running_var"};
}  // namespace

std::vector<UnitGroup> conv_unit_groups(const ConvLayout& layout, const std::string& inner_norm,
                                        const std::vector<std::string>& branch_output) {
  std::vector<UnitGroup> groups;
  for (const ConvBlockPlan& b : layout.blocks) {
    const std::string prefix = "stage" + std::to_string(b.stage) + ".";
    UnitGroup branch{branch_group_name(b.stage), UnitKind::Branch, b.stage, 1, {}};
    branch.slices.push_back({prefix + "conv1.weight", -1});
    branch.slices.push_back({prefix + "conv2.weight", -1});
    for (const char* norm : {"bn1", "bn2"}) {
      for (const char* tensor : kNormTensors)
        branch.slices.push_back({prefix + norm + "." + tensor, -1});
      branch.slices.push_back({prefix + norm + ".num_batches_tracked", -1});
    }
    for (auto& slice : branch.slices)
      for (const auto& output : branch_output)
        if (slice.name == prefix + output) slice.scales_output = true;
    UnitGroup channels{
        channels_group_name(b.stage), UnitKind::Channel, b.stage, b.inner_channels, {}};
    channels.slices.push_back({prefix + "conv1.weight", 0});
    for (const char* tensor : kNormTensors)
      channels.slices.push_back({prefix + inner_norm + "." + tensor, 0});
    channels.slices.push_back({prefix + "conv2.weight", 1, 1, true});
    groups.push_back(std::move(branch));
    groups.push_back(std::move(channels));
  }
  return groups;
}

}  // namespace tessera::models
