#include "tessera/data/large_tensor.h"

#include <cstdint>

#if defined(__linux__)
#include <sys/mman.h>
#include <unistd.h>
#endif

namespace tessera::data {

namespace {

// Below this a tensor is not worth a system call.
constexpr int64_t kMinBytes = 8 << 20;

}  // namespace

torch::Tensor empty_large(at::IntArrayRef sizes, at::ScalarType dtype) {
  torch::Tensor tensor = torch::empty(sizes, dtype);
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  const auto bytes = static_cast<int64_t>(tensor.nbytes());
  if (bytes >= kMinBytes) {
    // madvise needs a page-aligned start; the untouched pages of the buffer follow it.
    const auto page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
    const auto start = reinterpret_cast<uintptr_t>(tensor.data_ptr());
    const uintptr_t aligned = (start + page - 1) / page * page;
    const uintptr_t end = (start + static_cast<uintptr_t>(bytes)) / page * page;
    // Advice only: if it is refused, the tensor is simply backed by ordinary pages.
    (void)madvise(reinterpret_cast<void*>(aligned), end - aligned, MADV_HUGEPAGE);
  }
#endif
  return tensor;
}

}  // namespace tessera::data
