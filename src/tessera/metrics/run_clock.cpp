#include "tessera/metrics/run_clock.h"

namespace tessera::metrics {
namespace {
// Initialised before main runs: as close to the process's start as the program can see.
const RunClock g_process_start;
}  // namespace

RunClock RunClock::since_process_start() {
  return g_process_start;
}

}  // namespace tessera::metrics
