// tessera's public header for metrics/: FLOPs, memory and communication counters, timers, JSON
// lines. Includes every header of src/tessera/metrics/ (installed under include/tessera/metrics/).
#pragma once

#include "tessera/metrics/comm_counter.h"
#include "tessera/metrics/flops.h"
#include "tessera/metrics/jsonl_writer.h"
#include "tessera/metrics/language_model.h"
#include "tessera/metrics/measurement_scope.h"
#include "tessera/metrics/memory_tracker.h"
#include "tessera/metrics/progress.h"
#include "tessera/metrics/timer.h"
