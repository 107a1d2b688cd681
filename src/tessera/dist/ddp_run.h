// A data-parallel run (`tessera train --dist ddp`): every worker trains a replica of the whole
// model on its shard of the data, gradients averaged by DataParallel; rank 0 evaluates, logs and
// checkpoints (the single-worker format).
#pragma once

#include <string>

#include "tessera/data/dataset.h"
#include "tessera/dist/gradient_reducer.h"
#include "tessera/dist/process_group.h"
#include "tessera/dist/worker_metrics.h"
#include "tessera/models/model_config.h"
#include "tessera/train/run_directory.h"
#include "tessera/train/trainer.h"

namespace tessera::dist {

struct DdpSetup {
  models::ModelConfig model;
  train::TrainConfig train;  // rank and world size are the group's
  ReducerOptions reducer;
  std::string resume_from;             // a checkpoint every worker continues from; empty: none
  train::RunDirectory* run = nullptr;  // rank 0's (metrics, checkpoint), or null
};

// Every rank calls it with the same setup; data.test is used on rank 0 only. RunResult::details:
// buckets, bucket_bytes, overlap, exposed_comm_seconds.
RunResult run_ddp(const DdpSetup& setup, ProcessGroup& group, const data::TrainTest& data);

}  // namespace tessera::dist
