#include "tessera/core/torch_compat.h"

#ifdef TESSERA_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>

#include <mutex>
#endif

#include <ATen/autocast_mode.h>

namespace tessera::compat {

// torch-compat: the autocast functions by device type (2.4) or one per device (1.13).
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
bool autocast_enabled(bool cuda) {
  return at::autocast::is_autocast_enabled(cuda ? at::kCUDA : at::kCPU);
}
c10::ScalarType autocast_dtype(bool cuda) {
  return at::autocast::get_autocast_dtype(cuda ? at::kCUDA : at::kCPU);
}
void set_autocast(bool cuda, bool on, c10::ScalarType type) {
  at::autocast::set_autocast_enabled(cuda ? at::kCUDA : at::kCPU, on);
  at::autocast::set_autocast_dtype(cuda ? at::kCUDA : at::kCPU, type);
}
#else
bool autocast_enabled(bool cuda) {
  return cuda ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled();
}
c10::ScalarType autocast_dtype(bool cuda) {
  return cuda ? at::autocast::get_autocast_gpu_dtype() : at::autocast::get_autocast_cpu_dtype();
}
void set_autocast(bool cuda, bool on, c10::ScalarType type) {
  if (cuda) {
    at::autocast::set_enabled(on);
    at::autocast::set_autocast_gpu_dtype(type);
  } else {
    at::autocast::set_cpu_enabled(on);
    at::autocast::set_autocast_cpu_dtype(type);
  }
}
#endif

const at::Tensor& absent_tensor_argument() {
  static const at::Tensor empty = at::empty({0});
  return empty;
}

#ifdef TESSERA_WITH_CUDA

// torch-compat: getDeviceStats/resetPeakStats take `int` in 1.13 and c10::DeviceIndex in 2.x; the
// DeviceStats/StatType types moved to c10::CachingDeviceAllocator in 2.5. `auto` and the
// aggregate index 0 (StatType::AGGREGATE in every version) keep this line version-independent.
namespace {
constexpr size_t kAggregateStat = 0;

// The caching allocator sets up its per-device state on the first allocation; its statistics
// throw "Invalid device argument" before that (e.g. measuring before the model is on the GPU).
void ensure_allocator_initialised(int device_index) {
  static std::once_flag once;
  std::call_once(once, [device_index] {
    (void)at::empty({1}, at::TensorOptions().device(at::Device(at::kCUDA, device_index)));
  });
}
}  // namespace

int cuda_current_device() {
  return static_cast<int>(c10::cuda::current_device());
}

CudaAllocatedBytes cuda_allocated_bytes(int device_index) {
  ensure_allocator_initialised(device_index);
  const auto stats =
      c10::cuda::CUDACachingAllocator::getDeviceStats(static_cast<c10::DeviceIndex>(device_index));
  const auto& allocated = stats.allocated_bytes[kAggregateStat];
  return CudaAllocatedBytes{allocated.current, allocated.peak};
}

void cuda_reset_peak_allocated_bytes(int device_index) {
  ensure_allocator_initialised(device_index);
  c10::cuda::CUDACachingAllocator::resetPeakStats(static_cast<c10::DeviceIndex>(device_index));
}

#endif

}  // namespace tessera::compat
