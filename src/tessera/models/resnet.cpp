// ResNet with basic blocks for small images (CIFAR-style 3x3 stem, no max pool). Depths 10, 18 and
// 34 are the four-level ImageNet layouts (64w..512w channels); depths 6n+2 are the three-level
// CIFAR ResNets of He et al. (16w..64w channels, n blocks per level). Every residual block is a
// stage; its residual branch (block-level SDP) and conv1's output channels (neuron-level SDP) are
// its unit groups. A downsampling block's 1x1 projection shortcut is held by every subnetwork.
#include <memory>
#include <optional>

#include "tessera/core/error.h"
#include "tessera/kernels/batch_norm_relu.h"
#include "tessera/kernels/conv2d.h"
#include "tessera/metrics/flops.h"
#include "tessera/models/architecture.h"
#include "tessera/models/conv_architecture.h"
#include "tessera/models/conv_blocks.h"
#include "tessera/models/conv_layout.h"
#include "tessera/models/families.h"

namespace tessera::models {
namespace {

constexpr int64_t kDefaultDepth = 18;
constexpr double kDefaultWidth = 1.0;
constexpr const char* kValidDepths = "10, 18, 34 (four levels) or 8, 14, 20, 26, 32, 44, 56, 110";

// conv3x3-BN-ReLU-[dropout]-conv3x3-BN-[drop path], plus the shortcut, then ReLU. A dropped branch
// (not allocated at all) leaves relu(shortcut(x)); a block holding k inner channels has a k-wide
// conv1.
class BasicBlockImpl : public Stage {
 public:
  explicit BasicBlockImpl(const ConvBlockPlan& plan) {
    if (plan.branch_held) {
      conv1_ =
          register_module("conv1", make_conv(plan.in_channels, plan.held_inner, 3, plan.stride));
      bn1_ = register_module("bn1", make_batch_norm(plan.held_inner));
      conv2_ = register_module("conv2", make_conv(plan.held_inner, plan.out_channels, 3, 1));
      bn2_ = register_module("bn2", make_batch_norm(plan.out_channels));
      regularizers_.emplace(*this, plan);
    }
    if (plan.projects()) {
      shortcut_conv_ = register_module(
          "shortcut_conv", make_conv(plan.in_channels, plan.out_channels, 1, plan.stride));
      shortcut_bn_ = register_module("shortcut_bn", make_batch_norm(plan.out_channels));
    }
  }

  torch::Tensor forward(torch::Tensor x) override {
    // A dropped identity block is the identity: its input is already a ReLU's output (subnets
    // are never cut into PNN partitions, whose synthetic inputs could be negative). Not applying
    // the ReLU again spares an SDP worker one saved activation per dropped block.
    if (!conv1_ && !shortcut_conv_) return x;
    const torch::Tensor shortcut =
        shortcut_conv_ ? shortcut_bn_(kernels::conv2d(x, shortcut_conv_)) : x;
    if (!conv1_) return torch::relu(shortcut);
    const torch::Tensor inner =
        regularizers_->inner(kernels::batch_norm_relu(kernels::conv2d(x, conv1_), bn1_));
    const torch::Tensor residual = kernels::conv2d(inner, conv2_);
    // relu(bn2(residual) + shortcut) in one pass, unless drop path comes between.
    if (!regularizers_->drops_paths()) return kernels::batch_norm_relu(residual, bn2_, shortcut);
    return torch::relu(shortcut + regularizers_->output(bn2_(residual)));
  }

 private:
  torch::nn::Conv2d conv1_{nullptr}, conv2_{nullptr}, shortcut_conv_{nullptr};
  torch::nn::BatchNorm2d bn1_{nullptr}, bn2_{nullptr}, shortcut_bn_{nullptr};
  std::optional<BranchRegularizers> regularizers_;  // set when the branch is held
};
TORCH_MODULE(BasicBlock);

int64_t basic_block_flops(const ConvBlockPlan& b) {
  const int64_t pixels = b.out_h * b.out_w;
  const int64_t out_values = b.out_channels * pixels;
  if (!b.branch_held && !b.projects()) return 0;           // the identity
  int64_t flops = metrics::elementwise_flops(out_values);  // final ReLU
  if (b.projects())
    flops += metrics::conv2d_flops(b.in_channels, b.out_channels, 1, 1, b.out_h, b.out_w) +
             metrics::norm_flops(out_values);
  if (b.branch_held) {
    const int64_t inner_values = b.held_inner * pixels;
    flops += metrics::conv2d_flops(b.in_channels, b.held_inner, 3, 3, b.out_h, b.out_w) +
             metrics::norm_flops(inner_values) + metrics::elementwise_flops(inner_values) +
             metrics::conv2d_flops(b.held_inner, b.out_channels, 3, 3, b.out_h, b.out_w) +
             metrics::norm_flops(out_values) +
             metrics::elementwise_flops(out_values);  // bn2, then the residual add
  }
  return flops;
}

class ResNetArchitecture : public ConvArchitecture {
 public:
  ResNetArchitecture()
      : ConvArchitecture(
            {"resnet", kDefaultDepth, kDefaultWidth, false, "bn1", {"bn2.weight", "bn2.bias"}}) {}

 protected:
  StagePtr build_block(const ConvBlockPlan& plan) const override { return BasicBlock(plan).ptr(); }
  int64_t block_forward_flops(const ConvBlockPlan& plan) const override {
    return basic_block_flops(plan);
  }

 private:
  // Blocks per level for a supported depth, empty otherwise.
  static std::vector<int64_t> blocks_per_level(int64_t depth) {
    switch (depth) {
      case 10:
        return {1, 1, 1, 1};
      case 18:
        return {2, 2, 2, 2};
      case 34:
        return {3, 4, 6, 3};
      case 8:
      case 14:
      case 20:
      case 26:
      case 32:
      case 44:
      case 56:
      case 110: {
        const int64_t n = (depth - 2) / 6;
        return {n, n, n};
      }
      default:
        return {};
    }
  }

  ConvLayout layout(const ModelConfig& config) const override {
    const std::vector<int64_t> blocks = blocks_per_level(config.depth);
    require(!blocks.empty(), "resnet: depth " + std::to_string(config.depth) +
                                 " is not supported (valid: " + kValidDepths + ")");
    // Three-level (CIFAR) nets start at 16 channels, four-level ones at 64.
    const int64_t base = blocks.size() == 3 ? 16 : 64;
    std::vector<int64_t> widths;
    for (size_t level = 0; level < blocks.size(); ++level)
      widths.push_back(scaled_width(base << level, config.width));
    return make_conv_layout(config, widths.front(), widths, blocks);
  }
};

}  // namespace

std::unique_ptr<Architecture> make_resnet_architecture() {
  return std::make_unique<ResNetArchitecture>();
}

}  // namespace tessera::models
