// Building blocks shared by the residual conv families (resnet, wrn): initialised conv and batch
// norm layers, the stem and the pooled classifier head, with their analytic forward FLOPs.
#pragma once

#include <cstdint>

#include <torch/torch.h>

#include "tessera/models/architecture.h"

#include "tessera/models/conv_layout.h"
#include "tessera/models/regularizers.h"

namespace tessera::models {

// A bias-free kernel x kernel convolution with "same" padding, Kaiming-normal initialised
// (fan_out, relu) as in the ResNet papers.
torch::nn::Conv2d make_conv(int64_t in_channels, int64_t out_channels, int64_t kernel,
                            int64_t stride);

// Batch norm with weight 1 and bias 0 (libtorch's defaults, stated here so they cannot drift).
torch::nn::BatchNorm2d make_batch_norm(int64_t channels);

// 3x3 conv at stride 1, followed by BN + ReLU when `norm_act` (post-activation nets; a
// pre-activation net normalises at the start of each block instead). Parameters: conv, bn.
class ConvStemImpl : public Stage {
 public:
  ConvStemImpl(int64_t in_channels, int64_t out_channels, bool norm_act);
  torch::Tensor forward(torch::Tensor x) override;

 private:
  torch::nn::Conv2d conv_{nullptr};
  torch::nn::BatchNorm2d bn_{nullptr};
};
TORCH_MODULE(ConvStem);

// [BN + ReLU when `norm_act`], global average pool, linear classifier. Parameters: bn, fc.
class PoolHeadImpl : public Stage {
 public:
  PoolHeadImpl(int64_t channels, int64_t num_classes, bool norm_act);
  torch::Tensor forward(torch::Tensor x) override;

 private:
  torch::nn::BatchNorm2d bn_{nullptr};
  torch::nn::Linear fc_{nullptr};
};
TORCH_MODULE(PoolHead);

// A residual branch's regularisers (plan.dropout, plan.drop_path), registered on `block` as
// "dropout" and "drop_path" only when on, so that a block without them keeps its module tree.
class BranchRegularizers {
 public:
  BranchRegularizers(torch::nn::Module& block, const ConvBlockPlan& plan);
  // Channel dropout on conv1's (activated) output: the channels neuron-level SDP masks.
  torch::Tensor inner(const torch::Tensor& x) { return dropout_ ? dropout_(x) : x; }
  // Stochastic depth on the branch's output, before the skip path is added.
  torch::Tensor output(const torch::Tensor& x) { return drop_path_ ? drop_path_(x) : x; }
  // Whether output() is not the identity (stochastic depth is on).
  bool drops_paths() const { return !drop_path_.is_empty(); }

 private:
  Dropout dropout_{nullptr};
  DropPath drop_path_{nullptr};
};

int64_t stem_forward_flops(const ConvLayout& layout, bool norm_act);
int64_t head_forward_flops(const ConvLayout& layout, bool norm_act);

}  // namespace tessera::models
