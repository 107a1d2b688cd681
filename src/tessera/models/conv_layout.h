// The stage plan shared by the residual conv families (resnet, wrn): a stem, one stage per
// residual block, and a head; the analytic shapes between them; and their unit groups (one
// residual branch per block for block-level SDP, the block's inner channels for neuron-level SDP).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tessera/core/shape.h"
#include "tessera/models/architecture.h"
#include "tessera/models/model_config.h"

namespace tessera::models {

// One residual block, which is one stage of the model.
struct ConvBlockPlan {
  int64_t stage = 0;  // index among the model's stages (the stem is stage 0)
  int64_t level = 1;  // 1-based resolution level (the "stage" of the ResNet papers)
  int64_t index = 1;  // 1-based position within its level
  int64_t in_channels = 0;
  int64_t out_channels = 0;    // the residual stream after the block
  int64_t inner_channels = 0;  // conv1's outputs in the full model
  int64_t stride = 1;
  int64_t in_h = 0, in_w = 0, out_h = 0, out_w = 0;
  // What config.subnet keeps of the block.
  bool branch_held = true;
  int64_t held_inner = 0;
  // config.dropout on conv1's output channels, config.drop_path on the residual branch.
  double dropout = 0;
  double drop_path = 0;

  // The shortcut needs a 1x1 projection when the resolution or the channel count changes.
  bool projects() const { return stride != 1 || in_channels != out_channels; }
};

struct ConvLayout {
  Shape input;  // one sample: channels, height, width
  int64_t stem_channels = 0;
  std::vector<ConvBlockPlan> blocks;
  int64_t num_classes = 0;

  int64_t num_stages() const { return static_cast<int64_t>(blocks.size()) + 2; }
  int64_t head_stage() const { return num_stages() - 1; }
  // The block at `stage`; throws Error unless 1 <= stage < head_stage().
  const ConvBlockPlan& block(int64_t stage) const;
  // The residual stream entering the head.
  int64_t head_channels() const;
  int64_t head_h() const;
  int64_t head_w() const;
};

// Level l (0-based) has `blocks_per_level[l]` blocks of `level_widths[l]` channels (the inner
// width of a block equals its output width in both families). The first level keeps the stem's
// resolution; the first block of every later level halves it (stride 2). Honours config.subnet
// (branch_held, held_inner) and the regularisers (dropout, drop_path).
ConvLayout make_conv_layout(const ModelConfig& config, int64_t stem_channels,
                            const std::vector<int64_t>& level_widths,
                            const std::vector<int64_t>& blocks_per_level);

// Spatial size after a 3x3 conv with padding 1 (or a 1x1 conv without padding) and this stride.
int64_t conv_out_size(int64_t in, int64_t stride);

// max(1, round(base * multiplier)): a width multiplier never removes a layer.
int64_t scaled_width(int64_t base, double multiplier);

// Checks the fields every conv family needs (input rank 3 and positive, num_classes >= 2,
// width > 0), naming the architecture in the message.
void check_conv_config(const ModelConfig& config, const std::string& arch);

std::string branch_group_name(int64_t stage);
std::string channels_group_name(int64_t stage);

// "stem 3->64", "block 2.1 128ch s2" (plus the subnet's cut, if any), "head 512->10".
std::string conv_stage_name(const ConvLayout& layout, int64_t stage);

// Shape of one sample entering stage `boundary` ({num_classes} after the last one).
Shape conv_boundary_shape(const ConvLayout& layout, int64_t boundary);

// Per block: "stage<i>.branch" (every tensor of conv1, conv2, bn1, bn2, whole) and
// "stage<i>.channels" (conv1's output channels: conv1.weight dim 0, `inner_norm`'s tensors dim 0,
// conv2.weight dim 1). `inner_norm` is the batch norm applied to conv1's output; `branch_output`
// names the block's tensors whose scale is the branch's output scale (e.g. "bn2.weight").
std::vector<UnitGroup> conv_unit_groups(const ConvLayout& layout, const std::string& inner_norm,
                                        const std::vector<std::string>& branch_output);

}  // namespace tessera::models
