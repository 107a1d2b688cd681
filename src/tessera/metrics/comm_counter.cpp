#include "tessera/metrics/comm_counter.h"

#include <mutex>

#include "tessera/core/error.h"

namespace tessera::metrics {
namespace {

// Collectives may be issued from several threads (ranks as threads in tests, gradient hooks), so
// one mutex guards the whole table; counting is rare next to the communication it measures.
struct CommTotals {
  std::mutex mutex;
  std::map<std::string, int64_t> bytes_by_op;
  int64_t total = 0;
};

CommTotals& totals() {
  static CommTotals instance;
  return instance;
}

}  // namespace

void count_comm_bytes(const std::string& op, int64_t bytes) {
  if (op.empty()) throw Error("comm counter: empty operation name");
  if (bytes < 0)
    throw Error("comm counter: negative byte count " + std::to_string(bytes) + " for '" + op + "'");
  CommTotals& t = totals();
  std::lock_guard<std::mutex> lock(t.mutex);
  t.bytes_by_op[op] += bytes;
  t.total += bytes;
}

int64_t total_comm_bytes() {
  CommTotals& t = totals();
  std::lock_guard<std::mutex> lock(t.mutex);
  return t.total;
}

std::map<std::string, int64_t> comm_bytes_by_op() {
  CommTotals& t = totals();
  std::lock_guard<std::mutex> lock(t.mutex);
  return t.bytes_by_op;
}

}  // namespace tessera::metrics
