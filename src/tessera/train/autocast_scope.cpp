#include "tessera/train/autocast_scope.h"

#include <ATen/autocast_mode.h>
#include <torch/version.h>

namespace tessera::train {

namespace {
// libtorch 2.4 replaced the per-device autocast functions (set_cpu_enabled, set_enabled for
// CUDA, ...) by ones taking the device type, and deprecates the old ones; Debian's 1.13 has only
// the old ones.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
bool enabled(bool cuda) {
  return at::autocast::is_autocast_enabled(cuda ? at::kCUDA : at::kCPU);
}
torch::ScalarType dtype(bool cuda) {
  return at::autocast::get_autocast_dtype(cuda ? at::kCUDA : at::kCPU);
}
void set(bool cuda, bool on, torch::ScalarType type) {
  at::autocast::set_autocast_enabled(cuda ? at::kCUDA : at::kCPU, on);
  at::autocast::set_autocast_dtype(cuda ? at::kCUDA : at::kCPU, type);
}
#else
bool enabled(bool cuda) {
  return cuda ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled();
}
torch::ScalarType dtype(bool cuda) {
  return cuda ? at::autocast::get_autocast_gpu_dtype() : at::autocast::get_autocast_cpu_dtype();
}
void set(bool cuda, bool on, torch::ScalarType type) {
  if (cuda) {
    at::autocast::set_enabled(on);
    at::autocast::set_autocast_gpu_dtype(type);
  } else {
    at::autocast::set_cpu_enabled(on);
    at::autocast::set_autocast_cpu_dtype(type);
  }
}
#endif
}  // namespace

AutocastScope::AutocastScope(Precision precision, const torch::Device& device)
    : active_(precision != Precision::Fp32), cuda_(device.is_cuda()) {
  if (!active_) return;
  was_enabled_ = enabled(cuda_);
  previous_dtype_ = dtype(cuda_);
  set(cuda_, true, compute_dtype(precision));
  at::autocast::increment_nesting();
}

AutocastScope::~AutocastScope() {
  if (!active_) return;
  // As torch.autocast.__exit__: the last region to end drops the cast weights it cached.
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  set(cuda_, was_enabled_, previous_dtype_);
}

}  // namespace tessera::train
