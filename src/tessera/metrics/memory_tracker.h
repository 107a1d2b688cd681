// Measured tensor memory. On CPU, libtorch's allocator is wrapped (c10::SetCPUAllocator) so that
// every tensor allocation and free is counted; on CUDA the caching allocator's own statistics are
// read. Peak RSS of the process comes from the operating system.
#pragma once

#include <cstdint>

#include <ATen/core/Tensor.h>

namespace tessera::metrics {

// Installs the counting CPU allocator. Idempotent; call before the first tensor that should be
// counted (tessera's main does it first thing). Tensors allocated earlier are freed uncounted.
void install_memory_tracker();
bool memory_tracker_installed();

// Bytes of tensor memory currently allocated / the most allocated at once since the counter last
// restarted (a MeasurementScope restarts it and keeps what came before; see measurement_scope.h).
// `device` is "cpu" (counted since install_memory_tracker; 0 before) or "cuda" / "cuda:N" (the
// caching allocator's allocated bytes; builds with TESSERA_WITH_CUDA only). Any other device, or
// "cuda" in a CPU-only build, throws tessera::UsageError.
int64_t live_tensor_bytes(const char* device = "cpu");
int64_t peak_tensor_bytes(const char* device = "cpu");

// The bytes of a tensor's elements; 0 for an undefined tensor.
inline int64_t tensor_bytes(const at::Tensor& t) {
  return t.defined() ? t.numel() * static_cast<int64_t>(t.element_size()) : 0;
}

// Peak resident set size of this process (VmHWM) and the current one (VmRSS), in bytes; 0 where
// /proc/self/status is unavailable.
int64_t peak_rss_bytes();
int64_t current_rss_bytes();

namespace detail {
// Sets the peak to the current live bytes. Only MeasurementScope calls it, so that no enclosing
// measurement loses what it has seen.
void reset_peak_tensor_bytes(const char* device);
}  // namespace detail

}  // namespace tessera::metrics
