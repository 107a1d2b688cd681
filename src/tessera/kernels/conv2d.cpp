#include "tessera/kernels/conv2d.h"

#include "tessera/core/torch_compat.h"
#include "tessera/kernels/bf16_products.h"

namespace tessera::kernels {

torch::Tensor conv2d(const torch::Tensor& x, const torch::nn::Conv2d& conv) {
  const auto& o = conv->options;
  const auto* padding = c10::get_if<torch::ExpandingArray<2>>(&o.padding());
  const bool zero_padding = c10::get_if<torch::enumtype::kZeros>(&o.padding_mode()) != nullptr;
  if (!padding || !zero_padding || x.dim() != 4 ||
      !bf16_on_fp32_units({&x, &conv->weight, &conv->bias}))
    return conv.ptr()->forward(x);
  const Conv2dGeometry geometry{c10::IntArrayRef(o.stride()).vec(),
                                c10::IntArrayRef(*padding).vec(),
                                c10::IntArrayRef(o.dilation()).vec(), o.groups()};
  return bf16_conv2d(x, conv->weight,
                     conv->bias.defined() ? conv->bias : compat::absent_tensor_argument(),
                     geometry);
}

}  // namespace tessera::kernels
