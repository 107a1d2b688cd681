// Bytes communicated between workers, counted by the distributed layer at every collective and by
// the PNN hand-over. The totals only grow: a MeasurementScope (measurement_scope.h) tells what a
// stretch of code sent. Thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <string>

namespace tessera::metrics {

// Adds `bytes` sent by this process under operation name `op` (e.g. "all_reduce", "handover").
void count_comm_bytes(const std::string& op, int64_t bytes);
int64_t total_comm_bytes();
std::map<std::string, int64_t> comm_bytes_by_op();

}  // namespace tessera::metrics
