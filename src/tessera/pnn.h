// tessera's public header for pnn/: partitioned training with synthetic intermediate labels
// (run_pnn, partition plans, SIL). Includes every header of src/tessera/pnn/ (installed under
// include/tessera/pnn/).
#pragma once

#include "tessera/pnn/comparison.h"
#include "tessera/pnn/handover.h"
#include "tessera/pnn/join.h"
#include "tessera/pnn/model_parallel_baseline.h"
#include "tessera/pnn/partition_objective.h"
#include "tessera/pnn/partition_plan.h"
#include "tessera/pnn/partition_training.h"
#include "tessera/pnn/pnn_config.h"
#include "tessera/pnn/pnn_run.h"
#include "tessera/pnn/regression_fit.h"
#include "tessera/pnn/sil.h"
#include "tessera/pnn/sil_space.h"
