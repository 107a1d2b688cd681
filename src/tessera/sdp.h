// tessera's public header for sdp/: subnetwork data parallelism (run_sdp, mask plans, subnet
// synchronisation). Includes every header of src/tessera/sdp/ (installed under
// include/tessera/sdp/).
#pragma once

#include "tessera/sdp/backward_masking.h"
#include "tessera/sdp/mask_plan.h"
#include "tessera/sdp/plan_change.h"
#include "tessera/sdp/sdp_run.h"
#include "tessera/sdp/shared_entries.h"
#include "tessera/sdp/subnet_ensemble.h"
#include "tessera/sdp/subnet_sync.h"
#include "tessera/sdp/unheld_entries.h"
#include "tessera/sdp/worker_model.h"
