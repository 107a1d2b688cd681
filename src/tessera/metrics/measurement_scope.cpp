#include "tessera/metrics/measurement_scope.h"

#include <algorithm>
#include <mutex>
#include <vector>

#include "tessera/metrics/comm_counter.h"
#include "tessera/metrics/memory_tracker.h"

namespace tessera::metrics {

// The scopes open now, in any order (threads may close theirs out of order).
struct ScopeRegistry {
  std::mutex mutex;
  std::vector<MeasurementScope*> open;

  static ScopeRegistry& instance() {
    static ScopeRegistry registry;
    return registry;
  }

  // Every open scope of `device` keeps the peak seen so far; then the counter restarts.
  void restart_peak(const std::string& device) {
    const int64_t peak = metrics::peak_tensor_bytes(device.c_str());
    for (MeasurementScope* scope : open)
      if (scope->device_ == device) scope->seen_peak_ = std::max(scope->seen_peak_, peak);
    detail::reset_peak_tensor_bytes(device.c_str());
  }
};

MeasurementScope::MeasurementScope(const char* device) : device_(device) {
  ScopeRegistry& registry = ScopeRegistry::instance();
  std::lock_guard<std::mutex> lock(registry.mutex);
  registry.restart_peak(device_);
  seen_peak_ = live_tensor_bytes(device_.c_str());
  comm_at_open_ = total_comm_bytes();
  comm_by_op_at_open_ = metrics::comm_bytes_by_op();
  registry.open.push_back(this);
}

MeasurementScope::~MeasurementScope() {
  ScopeRegistry& registry = ScopeRegistry::instance();
  std::lock_guard<std::mutex> lock(registry.mutex);
  registry.open.erase(std::find(registry.open.begin(), registry.open.end(), this));
}

int64_t MeasurementScope::peak_tensor_bytes() const {
  ScopeRegistry& registry = ScopeRegistry::instance();
  std::lock_guard<std::mutex> lock(registry.mutex);
  return std::max(seen_peak_, metrics::peak_tensor_bytes(device_.c_str()));
}

int64_t MeasurementScope::comm_bytes() const {
  return total_comm_bytes() - comm_at_open_;
}

std::map<std::string, int64_t> MeasurementScope::comm_bytes_by_op() const {
  std::map<std::string, int64_t> bytes = metrics::comm_bytes_by_op();
  for (auto& [op, total] : bytes) {
    const auto before = comm_by_op_at_open_.find(op);
    if (before != comm_by_op_at_open_.end()) total -= before->second;
  }
  return bytes;
}

}  // namespace tessera::metrics
