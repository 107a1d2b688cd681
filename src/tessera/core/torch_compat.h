// The libtorch APIs that differ between 1.13 (Debian) and 2.x, gathered in one place so that a
// port to another libtorch touches this file and torch_compat.cpp only. Every use elsewhere is
// marked `// torch-compat:`.
#pragma once

#include <cstdint>

#include <ATen/core/Tensor.h>
#include <c10/core/ScalarType.h>
#include <torch/version.h>

// torch-compat: in libtorch 2.3, c10::Allocator::allocate lost its `const` and
// c10::Allocator::copy_data(dest, src, count) const became pure virtual.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 3)
#define TESSERA_ALLOCATOR_ALLOCATE_CONST
#define TESSERA_ALLOCATOR_HAS_COPY_DATA 1
#else
#define TESSERA_ALLOCATOR_ALLOCATE_CONST const
#define TESSERA_ALLOCATOR_HAS_COPY_DATA 0
#endif

namespace tessera::compat {

// The autocast state of the calling thread for CUDA (cuda) or the CPU: libtorch 2.4 replaced the
// per-device functions (set_cpu_enabled, set_enabled for CUDA, ...) by ones taking the device
// type, and deprecates the old ones; Debian's 1.13 has only the old ones.
bool autocast_enabled(bool cuda);
c10::ScalarType autocast_dtype(bool cuda);
void set_autocast(bool cuda, bool on, c10::ScalarType type);

// An optional tensor argument of a custom autograd function (torch::autograd::Function) that is
// absent: libtorch 1.13's functions cannot take an undefined tensor, so an empty one stands in and
// the function tests numel() > 0. One shared tensor, not an allocation per call.
const at::Tensor& absent_tensor_argument();

// CUDA caching-allocator statistics. Only in builds compiled with TESSERA_WITH_CUDA (set by CMake
// when libtorch has CUDA); the index type and the namespace of the statistics moved in 2.x.
#ifdef TESSERA_WITH_CUDA
struct CudaAllocatedBytes {
  int64_t current = 0;
  int64_t peak = 0;
};
int cuda_current_device();
CudaAllocatedBytes cuda_allocated_bytes(int device_index);
void cuda_reset_peak_allocated_bytes(int device_index);
#endif

}  // namespace tessera::compat
