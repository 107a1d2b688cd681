// A pipeline (model-parallel) run (`tessera train --dist pipeline`): each worker holds a contiguous
// range of the model's stages (PipelineTrainer); rank 0 logs and checkpoints the gathered model.
#pragma once

#include <cstdint>
#include <string>

#include "tessera/data/dataset.h"
#include "tessera/dist/process_group.h"
#include "tessera/dist/worker_metrics.h"
#include "tessera/models/model_config.h"
#include "tessera/train/run_directory.h"
#include "tessera/train/trainer.h"

namespace tessera::dist {

struct PipelineSetup {
  models::ModelConfig model;
  train::TrainConfig train;
  int64_t micro_batches = 4;           // per batch
  train::RunDirectory* run = nullptr;  // rank 0's (metrics, checkpoint), or null
  // Every rank: the run directory for per-worker restart checkpoints (PipelineTrainer::
  // set_restart_dir); empty: none. `resume`: continue from the latest complete set there.
  std::string restart_dir;
  bool resume = false;
};

// Every rank calls it with the same setup. RunResult::details: micro_batches, stages (each rank's
// [begin, end)).
RunResult run_pipeline(const PipelineSetup& setup, ProcessGroup& group,
                       const data::TrainTest& data);

}  // namespace tessera::dist
