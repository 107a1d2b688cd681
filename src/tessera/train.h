// tessera's public header for train/: the Trainer, optimizers, schedules, checkpoints, safetensors,
// run directories. Includes every header of src/tessera/train/ (installed under
// include/tessera/train/).
#pragma once

#include "tessera/train/autocast_scope.h"
#include "tessera/train/batch_norm_statistics.h"
#include "tessera/train/checkpoint.h"
#include "tessera/train/checkpoint_archive.h"
#include "tessera/train/chunked_adam.h"
#include "tessera/train/fused_kernels.h"
#include "tessera/train/fused_sgd.h"
#include "tessera/train/fused_step.h"
#include "tessera/train/loss_scaler.h"
#include "tessera/train/model_file.h"
#include "tessera/train/nonfinite.h"
#include "tessera/train/objective.h"
#include "tessera/train/optimizer.h"
#include "tessera/train/optimizer_state.h"
#include "tessera/train/precision.h"
#include "tessera/train/run_directory.h"
#include "tessera/train/safetensors.h"
#include "tessera/train/schedule.h"
#include "tessera/train/time_to_target.h"
#include "tessera/train/trainer.h"
#include "tessera/train/worker_sync.h"
