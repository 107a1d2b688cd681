#include "tessera/models/conv_blocks.h"

#include "tessera/kernels/batch_norm_relu.h"
#include "tessera/kernels/conv2d.h"
#include "tessera/kernels/linear.h"
#include "tessera/metrics/flops.h"

namespace tessera::models {

torch::nn::Conv2d make_conv(int64_t in_channels, int64_t out_channels, int64_t kernel,
                            int64_t stride) {
  torch::nn::Conv2d conv(torch::nn::Conv2dOptions(in_channels, out_channels, kernel)
                             .stride(stride)
                             .padding(kernel / 2)
                             .bias(false));
  torch::nn::init::kaiming_normal_(conv->weight, 0.0, torch::kFanOut, torch::kReLU);
  return conv;
}

torch::nn::BatchNorm2d make_batch_norm(int64_t channels) {
  torch::nn::BatchNorm2d bn(channels);
  torch::nn::init::ones_(bn->weight);
  torch::nn::init::zeros_(bn->bias);
  return bn;
}

ConvStemImpl::ConvStemImpl(int64_t in_channels, int64_t out_channels, bool norm_act)
    : conv_(register_module("conv", make_conv(in_channels, out_channels, 3, 1))) {
  if (norm_act) bn_ = register_module("bn", make_batch_norm(out_channels));
}

torch::Tensor ConvStemImpl::forward(torch::Tensor x) {
  x = kernels::conv2d(x, conv_);
  return bn_ ? kernels::batch_norm_relu(x, bn_) : x;
}

PoolHeadImpl::PoolHeadImpl(int64_t channels, int64_t num_classes, bool norm_act) {
  if (norm_act) bn_ = register_module("bn", make_batch_norm(channels));
  fc_ = register_module("fc", torch::nn::Linear(channels, num_classes));
}

torch::Tensor PoolHeadImpl::forward(torch::Tensor x) {
  if (bn_) x = kernels::batch_norm_relu(x, bn_);
  return kernels::linear(x.mean({2, 3}), fc_);
}

BranchRegularizers::BranchRegularizers(torch::nn::Module& block, const ConvBlockPlan& plan) {
  if (plan.dropout > 0)
    dropout_ = block.register_module("dropout", Dropout(plan.dropout, /*channelwise=*/true));
  if (plan.drop_path > 0) drop_path_ = block.register_module("drop_path", DropPath(plan.drop_path));
}

int64_t stem_forward_flops(const ConvLayout& layout, bool norm_act) {
  const int64_t h = layout.input[1];
  const int64_t w = layout.input[2];
  const int64_t values = layout.stem_channels * h * w;
  return metrics::conv2d_flops(layout.input[0], layout.stem_channels, 3, 3, h, w) +
         (norm_act ? metrics::norm_flops(values) + metrics::elementwise_flops(values) : 0);
}

int64_t head_forward_flops(const ConvLayout& layout, bool norm_act) {
  const int64_t channels = layout.head_channels();
  const int64_t values = channels * layout.head_h() * layout.head_w();
  // The average pool adds every value once.
  return (norm_act ? metrics::norm_flops(values) + metrics::elementwise_flops(values) : 0) +
         metrics::elementwise_flops(values) +
         metrics::linear_flops(1, channels, layout.num_classes);
}

}  // namespace tessera::models
