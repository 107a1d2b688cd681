// tessera's public header for core/: errors (tessera::Error, UsageError), seeding, shapes.
// Includes every header of src/tessera/core/ (installed under include/tessera/core/).
#pragma once

#include "tessera/core/cpu_flags.h"
#include "tessera/core/error.h"
#include "tessera/core/fault_injection.h"
#include "tessera/core/file_io.h"
#include "tessera/core/malloc_tuning.h"
#include "tessera/core/seeding.h"
#include "tessera/core/shape.h"
#include "tessera/core/torch_compat.h"
