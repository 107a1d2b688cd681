#include "tessera/metrics/memory_tracker.h"

#include <atomic>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>

#include "tessera/core/error.h"
#include "tessera/core/torch_compat.h"

namespace tessera::metrics {
namespace {

// Constant-initialised, so they exist before any static constructor allocates a tensor and after
// every static destructor frees one.
std::atomic<int64_t> g_live_bytes{0};
std::atomic<int64_t> g_peak_bytes{0};
std::atomic<bool> g_installed{false};

void count_allocation(int64_t bytes) {
  const int64_t live = g_live_bytes.fetch_add(bytes, std::memory_order_relaxed) + bytes;
  int64_t peak = g_peak_bytes.load(std::memory_order_relaxed);
  // Another thread may raise the peak between the load and the exchange: retry until ours is
  // stored or a higher one is.
  while (live > peak &&
         !g_peak_bytes.compare_exchange_weak(peak, live, std::memory_order_relaxed)) {
  }
}

// The context of a counted DataPtr: the wrapped allocator's DataPtr (whose destruction is the
// real free) and the size to subtract.
struct CountedAllocation {
  c10::DataPtr original;
  int64_t bytes;
};

void free_counted(void* context) {
  auto* allocation = static_cast<CountedAllocation*>(context);
  g_live_bytes.fetch_sub(allocation->bytes, std::memory_order_relaxed);
  delete allocation;
}

// Wraps the CPU allocator that was installed before it; every CPU tensor's storage is allocated
// through c10::GetCPUAllocator() and therefore through this.
class CountingAllocator final : public c10::Allocator {
 public:
  explicit CountingAllocator(c10::Allocator* wrapped) : wrapped_(wrapped) {}

  // torch-compat: `const` before libtorch 2.3 (see torch_compat.h).
  c10::DataPtr allocate(size_t n) TESSERA_ALLOCATOR_ALLOCATE_CONST override {
    c10::DataPtr original = wrapped_->allocate(n);
    if (n == 0) return original;  // nothing to count; keeps empty tensors free of a context
    const c10::Device device = original.device();
    void* data = original.get();
    auto allocation = std::make_unique<CountedAllocation>(
        CountedAllocation{std::move(original), static_cast<int64_t>(n)});
    count_allocation(static_cast<int64_t>(n));
    return c10::DataPtr(data, allocation.release(), &free_counted, device);
  }

  // The context is a CountedAllocation, not the data pointer, so raw_allocate/raw_deallocate
  // (which require context == data) are not supported: nullptr says so.
  c10::DeleterFnPtr raw_deleter() const override { return nullptr; }

#if TESSERA_ALLOCATOR_HAS_COPY_DATA
  // torch-compat: pure virtual from libtorch 2.3.
  void copy_data(void* dest, const void* src, std::size_t count) const override {
    wrapped_->copy_data(dest, src, count);
  }
#endif

 private:
  c10::Allocator* wrapped_;
};

// Only an allocator of equal or higher priority can replace one; the default CPU allocator is
// registered with priority 0.
constexpr uint8_t kCountingPriority = std::numeric_limits<uint8_t>::max();

std::once_flag g_install_once;

// A device name understood by the tracker: "cpu", "cuda" (current device) or "cuda:N".
struct TrackedDevice {
  bool cuda = false;
  int index = -1;
};

TrackedDevice parse_device(const char* device) {
  const std::string name = device == nullptr ? "" : device;
  if (name == "cpu") return {};
  const bool cuda = name == "cuda" || name.rfind("cuda:", 0) == 0;
  if (!cuda)
    throw UsageError("memory tracker: unknown device '" + name +
                     "' (expected cpu, cuda or cuda:N)");
#ifdef TESSERA_WITH_CUDA
  if (name == "cuda") return {true, compat::cuda_current_device()};
  int index = -1;
  const char* first = name.data() + 5;
  const char* last = name.data() + name.size();
  const auto [end, error] = std::from_chars(first, last, index);
  if (error != std::errc() || end != last || first == last || index < 0)
    throw UsageError("memory tracker: bad device index in '" + name + "'");
  return {true, index};
#else
  throw UsageError("memory tracker: device '" + name +
                   "' needs tessera built against a CUDA libtorch (this build is CPU only)");
#endif
}

// A field of /proc/self/status given in kB ("VmHWM:    123456 kB"), in bytes; 0 when the file or
// field is missing (not Linux, restricted /proc).
int64_t proc_status_bytes(const char* field) {
  std::ifstream status("/proc/self/status");
  const size_t length = std::strlen(field);
  std::string line;
  while (std::getline(status, line)) {
    if (line.size() > length && line.compare(0, length, field) == 0 && line[length] == ':') {
      const long long kilobytes = std::strtoll(line.c_str() + length + 1, nullptr, 10);
      return kilobytes > 0 ? static_cast<int64_t>(kilobytes) * 1024 : 0;
    }
  }
  return 0;
}

}  // namespace

void install_memory_tracker() {
  std::call_once(g_install_once, [] {
    // Leaked on purpose: c10 keeps the raw pointer for the life of the process, and tensors freed
    // by static destructors still go through it.
    auto* counting = new CountingAllocator(c10::GetCPUAllocator());
    c10::SetCPUAllocator(counting, kCountingPriority);
    if (c10::GetCPUAllocator() != counting)
      throw Error("memory tracker: another CPU allocator with maximum priority is installed");
    g_installed.store(true);
  });
}

bool memory_tracker_installed() {
  return g_installed.load();
}

int64_t live_tensor_bytes(const char* device) {
  const TrackedDevice tracked = parse_device(device);
#ifdef TESSERA_WITH_CUDA
  if (tracked.cuda) return compat::cuda_allocated_bytes(tracked.index).current;
#else
  (void)tracked;
#endif
  return g_live_bytes.load(std::memory_order_relaxed);
}

int64_t peak_tensor_bytes(const char* device) {
  const TrackedDevice tracked = parse_device(device);
#ifdef TESSERA_WITH_CUDA
  if (tracked.cuda) return compat::cuda_allocated_bytes(tracked.index).peak;
#else
  (void)tracked;
#endif
  return g_peak_bytes.load(std::memory_order_relaxed);
}

void reset_peak_tensor_bytes(const char* device) {
  const TrackedDevice tracked = parse_device(device);
#ifdef TESSERA_WITH_CUDA
  if (tracked.cuda) {
    compat::cuda_reset_peak_allocated_bytes(tracked.index);
    return;
  }
#else
  (void)tracked;
#endif
  g_peak_bytes.store(g_live_bytes.load(std::memory_order_relaxed), std::memory_order_relaxed);
}

int64_t peak_rss_bytes() {
  return proc_status_bytes("VmHWM");
}

int64_t current_rss_bytes() {
  return proc_status_bytes("VmRSS");
}

}  // namespace tessera::metrics
