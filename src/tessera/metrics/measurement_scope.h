// What a stretch of code costs: the peak tensor memory and the bytes communicated while a
// MeasurementScope is open. Training, a plan change during training, the measurement of one stage
// each open their own.
//
// Scopes nest. The device's peak counter is one per process, so opening a scope restarts it; every
// scope open at that moment first keeps the maximum it has seen so far, so an inner scope's peak
// counts in every enclosing one (a fit's peak covers the plan changes inside it). Communicated
// bytes only ever grow, so a scope's bytes are the growth since it opened, inner scopes included.
// The counters are process-wide: ranks run as threads (tests) share them. Thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <string>

namespace tessera::metrics {

class MeasurementScope {
 public:
  // `device`: "cpu", "cuda" or "cuda:N", as for peak_tensor_bytes (UsageError otherwise).
  explicit MeasurementScope(const char* device = "cpu");
  ~MeasurementScope();
  MeasurementScope(const MeasurementScope&) = delete;
  MeasurementScope& operator=(const MeasurementScope&) = delete;

  // The most tensor bytes allocated at once on the device since the scope opened (absolute, as
  // peak_tensor_bytes: subtract a baseline of live bytes for what the measured code added).
  int64_t peak_tensor_bytes() const;
  // Bytes counted by count_comm_bytes since the scope opened, in total and per operation.
  int64_t comm_bytes() const;
  std::map<std::string, int64_t> comm_bytes_by_op() const;

 private:
  friend struct ScopeRegistry;
  std::string device_;
  int64_t seen_peak_;  // the highest peak before the counter was last restarted
  int64_t comm_at_open_;
  std::map<std::string, int64_t> comm_by_op_at_open_;
};

}  // namespace tessera::metrics
