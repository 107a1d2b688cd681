// tessera's public header for dist/: process groups over c10d/Gloo, DDP, the pipeline baseline,
// local launcher. Includes every header of src/tessera/dist/ (installed under
// include/tessera/dist/).
#pragma once

#include "tessera/dist/data_parallel.h"
#include "tessera/dist/ddp_run.h"
#include "tessera/dist/gradient_reducer.h"
#include "tessera/dist/local_launcher.h"
#include "tessera/dist/peers.h"
#include "tessera/dist/pipeline.h"
#include "tessera/dist/pipeline_run.h"
#include "tessera/dist/process_group.h"
#include "tessera/dist/rendezvous.h"
#include "tessera/dist/worker_metrics.h"
