// A whole PNN run: cut the network, draw the synthetic labels, train the partitions (one after
// another with hand-overs, or all at once in worker processes), join them, evaluate, run the
// recovery epochs, evaluate again, and record everything in the run directory.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tessera/data/dataset.h"
#include "tessera/dist/local_launcher.h"
#include "tessera/models/model_config.h"
#include "tessera/pnn/partition_plan.h"
#include "tessera/pnn/partition_training.h"
#include "tessera/pnn/pnn_config.h"
#include "tessera/train/trainer.h"

namespace tessera::pnn {

struct PnnSetup {
  PnnConfig pnn;
  models::ModelConfig model;  // resolved, with the data's input shape and classes
  train::TrainConfig train;   // the common settings (per-partition ones are applied on top)
  PartitionPlan plan;         // where to cut, decided once by the caller (choose_plan)
  std::string run_dir;        // this run's directory (partition<i>/, recovery/, checkpoint.pt)
  // Parallel schedule: the command that starts the worker process training `partition` (it must
  // end in run_parallel_worker, with the plan read from plan_path(run_dir)). Unused by the
  // sequential schedule.
  std::function<dist::WorkerCommand(int64_t partition)> worker_command;
};

// Cuts from setup.pnn.cuts, or balanced partitions measured with the training settings.
PartitionPlan choose_plan(const PnnSetup& setup, std::vector<int64_t>* stage_bytes = nullptr);

// Where run_pnn records the plan in a run directory (plan.json), for its parallel workers.
std::string plan_path(const std::string& run_dir);

// The fixed map of every cut of `plan` into the space its labels live in (--sil-space).
std::vector<std::shared_ptr<const SilSpace>> make_sil_spaces(const PnnSetup& setup,
                                                             const PartitionPlan& plan);

// The synthetic labels of every cut of `plan` (index k: the cut between partitions k and k+1),
// shaped like one sample in that cut's space (make_sil_spaces).
std::vector<torch::Tensor> make_sils(const PnnSetup& setup, const PartitionPlan& plan);

// Test accuracy and loss of the joined model after `flops` training FLOPs (all workers together).
struct CurvePoint {
  int64_t flops = 0;
  double accuracy = 0.0;
  double loss = 0.0;  // mean test cross-entropy in nats (a language model's bits per byte x ln 2)
  std::string phase;  // "partitions" or "recovery"
  double elapsed_seconds = 0.0;  // wall seconds since the PNN run started
};

struct PnnResult {
  PnnSchedule schedule = PnnSchedule::Sequential;
  bool language_model = false;  // text windows: the summary adds bits per byte
  PartitionPlan plan;
  std::vector<nlohmann::json> partitions;  // each partition's report (train_partition)
  train::EvalResult joined;                // the joined model before recovery
  train::EvalResult recovered;             // after the recovery epochs
  nlohmann::json recovery;                 // the recovery fit's summary
  std::vector<CurvePoint> curve;
  int64_t train_flops = 0;  // partitions + hand-over forward passes + recovery
  int64_t handover_bytes = 0;
  int64_t partition_comm_bytes = 0;  // counted by the partitions' own trainers: 0 by design
  int64_t max_partition_peak_tensor_bytes = 0;
  double wall_seconds = 0.0;
  std::string checkpoint;  // the joined, recovered model
};
nlohmann::json to_json(const PnnResult& result);

// Runs setup.pnn.schedule with setup.plan on `data` and writes <run_dir>/plan.json, summary.json
// and checkpoint.pt. Throws tessera::Error naming the partition if a parallel worker fails.
PnnResult run_pnn(const PnnSetup& setup, const data::TrainTest& data);

// The parallel schedule's worker: trains partition `index` of setup.plan on SIL inputs (index > 0)
// and keeps a snapshot at every evaluation for the joined accuracy curve.
void run_parallel_worker(const PnnSetup& setup, int64_t index, const data::TrainTest& data);

}  // namespace tessera::pnn
