// A test-only fault-injection hook for the restart tests (`tessera launch --max-restarts`): with
// TESSERA_FAULT_KILL_AT=RANK:STEP in the environment, the worker of that rank sends itself SIGKILL
// right after its optimizer step STEP, in the first attempt of a launch only (no
// TESSERA_RESTART_COUNT, or 0), so the restarted run goes on past that step. Without the variable
// it does nothing.
#pragma once

#include <cstdint>

namespace tessera {

// Called by the training loops after every optimizer step (`step` counts from 1).
void inject_fault_at_step(int64_t rank, int64_t step);

}  // namespace tessera
