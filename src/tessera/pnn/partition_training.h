// Training one PNN partition: the same job whether it runs in the coordinating process (the
// sequential schedule) or in a worker process of its own (the parallel schedule).
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "tessera/data/dataset.h"
#include "tessera/metrics/run_clock.h"
#include "tessera/models/staged_model.h"
#include "tessera/pnn/partition_objective.h"
#include "tessera/pnn/partition_plan.h"
#include "tessera/train/trainer.h"

namespace tessera::pnn {

struct PartitionJob {
  int64_t index = 0;
  PartitionPlan plan;
  models::ModelConfig model;  // resolved, of the whole network
  train::TrainConfig train;   // this partition's epochs, batch size and learning rate
  PartitionTargets targets;
  std::string run_dir;          // the partition's own run directory (created)
  bool keep_snapshots = false;  // weights at every test evaluation, as <run_dir>/eval<k>.pt
  // The clock of the history's elapsed_seconds: the PNN run's (sequential schedule), or this
  // process's (a parallel worker; the schedule adds when it started the workers).
  metrics::RunClock clock = metrics::RunClock::since_process_start();
};

// Snapshot file of evaluation k (0-based) of a partition trained with keep_snapshots.
std::string snapshot_path(const std::string& partition_run_dir, int64_t evaluation);

struct PartitionOutcome {
  models::StagedModel model;
  nlohmann::json report;  // the trainer's summary plus index, stages, forward_flops
};

// Seeds the global RNG from (seed, index), builds stages [begin, end) only, trains them on
// `train` (evaluating on `test` if given) and writes checkpoint.pt and summary.json into
// job.run_dir.
PartitionOutcome train_partition(const PartitionJob& job, const data::Dataset& train,
                                 const data::Dataset* test);

}  // namespace tessera::pnn
