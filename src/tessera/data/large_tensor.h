// Allocation of the large tensors a data set decodes into.
#pragma once

#include <torch/torch.h>

namespace tessera::data {

// Like torch::empty(sizes, dtype), but on Linux asks for transparent huge pages: first touching
// hundreds of MB in 4 KiB pages can cost more than decoding the data (on a VM, 0.8 s versus
// 0.45 s for Fashion-MNIST's 188 MB of floats). Elsewhere, or if refused, plain pages are used.
torch::Tensor empty_large(at::IntArrayRef sizes, at::ScalarType dtype);

}  // namespace tessera::data
