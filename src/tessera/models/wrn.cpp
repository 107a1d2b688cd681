// Wide ResNet WRN-d-k (Zagoruyko & Komodakis): a 3x3 stem to 16 channels, three levels of
// n = (d - 4) / 6 pre-activation blocks of 16k, 32k and 64k channels, then BN-ReLU, average pool
// and a linear classifier. Every block is a stage; its residual branch (block-level SDP) and
// conv1's output channels (neuron-level SDP) are its unit groups. The 1x1 projection shortcut
// (when the width or resolution changes) is held by every subnetwork and reads the block's raw
// input, so it computes the same function whether or not a subnetwork holds the branch.
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

constexpr int64_t kDefaultDepth = 16;
constexpr double kDefaultWidenFactor = 4.0;
constexpr int64_t kStemChannels = 16;

// BN-ReLU-conv3x3-BN-ReLU-[dropout]-conv3x3-[drop path] added to the shortcut (dropout where the
// WRN paper puts it). A dropped branch (not allocated at all) leaves shortcut(x); a block holding
// k inner channels has a k-wide conv1.
class PreActBlockImpl : public Stage {
 public:
  explicit PreActBlockImpl(const ConvBlockPlan& plan) {
    if (plan.branch_held) {
      bn1_ = register_module("bn1", make_batch_norm(plan.in_channels));
      conv1_ =
          register_module("conv1", make_conv(plan.in_channels, plan.held_inner, 3, plan.stride));
      bn2_ = register_module("bn2", make_batch_norm(plan.held_inner));
      conv2_ = register_module("conv2", make_conv(plan.held_inner, plan.out_channels, 3, 1));
      regularizers_.emplace(*this, plan);
    }
    if (plan.projects())
      shortcut_conv_ = register_module(
          "shortcut_conv", make_conv(plan.in_channels, plan.out_channels, 1, plan.stride));
  }

  torch::Tensor forward(torch::Tensor x) override {
    torch::Tensor out = shortcut_conv_ ? kernels::conv2d(x, shortcut_conv_) : x;
    if (conv1_) out = out + branch(x);
    return out;
  }

 private:
  torch::Tensor branch(const torch::Tensor& x) {
    const torch::Tensor inner = regularizers_->inner(
        kernels::batch_norm_relu(kernels::conv2d(kernels::batch_norm_relu(x, bn1_), conv1_), bn2_));
    return regularizers_->output(kernels::conv2d(inner, conv2_));
  }

  torch::nn::BatchNorm2d bn1_{nullptr}, bn2_{nullptr};
  torch::nn::Conv2d conv1_{nullptr}, conv2_{nullptr}, shortcut_conv_{nullptr};
  std::optional<BranchRegularizers> regularizers_;  // set when the branch is held
};
TORCH_MODULE(PreActBlock);

int64_t preact_block_flops(const ConvBlockPlan& b) {
  int64_t flops = 0;
  if (b.projects())
    flops += metrics::conv2d_flops(b.in_channels, b.out_channels, 1, 1, b.out_h, b.out_w);
  if (b.branch_held) {
    const int64_t in_values = b.in_channels * b.in_h * b.in_w;
    const int64_t inner_values = b.held_inner * b.out_h * b.out_w;
    flops += metrics::norm_flops(in_values) + metrics::elementwise_flops(in_values) +
             metrics::conv2d_flops(b.in_channels, b.held_inner, 3, 3, b.out_h, b.out_w) +
             metrics::norm_flops(inner_values) + metrics::elementwise_flops(inner_values) +
             metrics::conv2d_flops(b.held_inner, b.out_channels, 3, 3, b.out_h, b.out_w) +
             metrics::elementwise_flops(b.out_channels * b.out_h * b.out_w);  // residual add
  }
  return flops;
}

class WrnArchitecture : public ConvArchitecture {
 public:
  WrnArchitecture()
      : ConvArchitecture(
            {"wrn", kDefaultDepth, kDefaultWidenFactor, true, "bn2", {"conv2.weight"}}) {}

 protected:
  StagePtr build_block(const ConvBlockPlan& plan) const override { return PreActBlock(plan).ptr(); }
  int64_t block_forward_flops(const ConvBlockPlan& plan) const override {
    return preact_block_flops(plan);
  }

 private:
  ConvLayout layout(const ModelConfig& config) const override {
    require(config.depth >= 10 && (config.depth - 4) % 6 == 0,
            "wrn: depth " + std::to_string(config.depth) +
                " is not 6n+4 with n >= 1 (valid: 10, 16, 22, 28, 34, 40, ...)");
    const int64_t n = (config.depth - 4) / 6;
    std::vector<int64_t> widths;
    for (int64_t base : {16, 32, 64}) widths.push_back(scaled_width(base, config.width));
    return make_conv_layout(config, kStemChannels, widths, {n, n, n});
  }
};

}  // namespace

std::unique_ptr<Architecture> make_wrn_architecture() {
  return std::make_unique<WrnArchitecture>();
}

}  // namespace tessera::models
