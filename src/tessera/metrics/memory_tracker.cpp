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
#include <c10/core/impl/alloc_cpu.h>

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

// Every counted block carries its size in a header in front of the data, so the deleter is a
// function of the data pointer alone (context == data). That is what raw_allocate/raw_deallocate
// require, and libtorch uses them (e.g. in mkldnn convolutions). 64 bytes keep the data as aligned
// as c10::alloc_cpu's own blocks.
constexpr size_t kHeaderBytes = 64;

void free_counted(void* data) {
  if (data == nullptr) return;
  char* base = static_cast<char*>(data) - kHeaderBytes;
  int64_t bytes = 0;
  std::memcpy(&bytes, base, sizeof bytes);
  g_live_bytes.fetch_sub(bytes, std::memory_order_relaxed);
  c10::free_cpu(base);
}

// Replaces the CPU allocator; every CPU tensor's storage is allocated through
// c10::GetCPUAllocator() and therefore through this.
class CountingAllocator final : public c10::Allocator {
 public:
  explicit CountingAllocator(c10::Allocator* previous) : previous_(previous) {}

  // torch-compat: `const` before libtorch 2.3 (see torch_compat.h).
  c10::DataPtr allocate(size_t n) TESSERA_ALLOCATOR_ALLOCATE_CONST override {
    char* base = static_cast<char*>(c10::alloc_cpu(n + kHeaderBytes));
    const int64_t bytes = static_cast<int64_t>(n);
    std::memcpy(base, &bytes, sizeof bytes);
    count_allocation(bytes);
    void* data = base + kHeaderBytes;
    return c10::DataPtr(data, data, &free_counted, c10::Device(c10::DeviceType::CPU));
  }

  c10::DeleterFnPtr raw_deleter() const override { return &free_counted; }

#if TESSERA_ALLOCATOR_HAS_COPY_DATA
  // torch-compat: pure virtual from libtorch 2.3.
  void copy_data(void* dest, const void* src, std::size_t count) const override {
    previous_->copy_data(dest, src, count);
  }
#endif

 private:
  [[maybe_unused]] c10::Allocator* previous_;  // for copy_data only (libtorch >= 2.3)
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

void detail::reset_peak_tensor_bytes(const char* device) {
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
