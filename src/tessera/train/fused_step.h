// What the optimizers' one-pass updates (fused_kernels.h) need from libtorch: whether a
// parameter's tensors can take the fused path, and one parallel region over its elements.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include <torch/torch.h>

namespace tessera::train {

// Elements per thread below which a parameter's update stays on one thread (ATen's grain size).
constexpr int64_t kFusedGrainElements = 32768;

// True when every defined tensor is a dense, contiguous float tensor on the CPU: the fused loops'
// case. Anything else (a GPU, doubles, a transposed view) takes libtorch's tensor operations.
bool fusable(const std::vector<torch::Tensor>& tensors);

// body(begin, end) over [0, n), split among the intra-op threads in a single parallel region:
// a region wakes the threads once, which costs a futex round trip when they sleep
// (OMP_WAIT_POLICY=PASSIVE), so an update is one region, not one per operation or slice.
void parallel_elements(int64_t n, const std::function<void(int64_t, int64_t)>& body);

}  // namespace tessera::train
