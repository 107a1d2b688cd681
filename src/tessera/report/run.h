// What a report knows about the runs it compares, read from their run directories
// (docs/run-directory.md) by read_run.h. Quantities a run did not record are NaN, not 0.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

namespace tessera::report {

constexpr double kMissing = std::numeric_limits<double>::quiet_NaN();

// One evaluation on the test split, with where the run stood when it was taken.
struct Evaluation {
  double train_samples = kMissing;  // samples trained on so far
  double train_flops = kMissing;    // analytic training FLOPs so far
  double wall_seconds = kMissing;   // see Run::wall_measured
  double bytes_sent = kMissing;     // by all workers so far (pro rata of the run's total)
  double test_accuracy = kMissing;  // 0..1
  double test_loss = kMissing;
  double bits_per_byte = kMissing;  // language models: test_loss / ln 2
};

// A worker's measured peak tensor memory and the part of it that is parameters, gradients and
// optimizer state (the rest is activations and temporaries). split_known: false for runs that
// recorded the peak alone for this worker (the parts are then 0).
struct WorkerMemory {
  std::string label;  // "rank 1", "partition 0", "recovery"
  double peak = 0, params = 0, grads = 0, optimizer = 0;
  bool split_known = true;
  double rest() const { return peak - params - grads - optimizer; }
};

// An SDP plan: which worker holds which unit, from the step or epoch it was trained.
struct SdpPlan {
  std::string label;                     // "initial plan", "after epoch 2", "after step 40"
  std::vector<std::string> unit_labels;  // "<group>:<index>", groups in name order
  std::vector<std::string> unit_groups;  // per unit, its group
  std::vector<std::vector<bool>> held;   // [worker][unit]
};

// A partition of a PNN schedule (the stages it trained and what it cost).
struct PnnPartition {
  int64_t index = 0, begin_stage = 0, end_stage = 0, parameters = 0;
  double forward_flops = kMissing, train_loss = kMissing, peak_tensor_bytes = kMissing;
  std::string objective;
};

// One curve of a report: a training run, or one schedule of a PNN run.
struct Run {
  std::string name;    // legend label
  std::string path;    // the directory read
  std::string method;  // train, ddp, sdp, pipeline, pnn sequential, pnn parallel, conventional
  bool language_model = false;
  int64_t workers = 1;
  std::vector<Evaluation> evaluations;
  // true: wall_seconds of an evaluation is the measured elapsed_seconds since the run started;
  // false: the sum of the epochs' epoch_seconds up to it (training only, evaluation excluded).
  bool wall_measured = false;
  std::vector<std::pair<double, double>> train_loss;  // (train samples, loss): steps and epochs
  std::vector<WorkerMemory> memory;
  double bytes_per_step = kMissing;  // sent by all workers per optimizer step
  std::vector<std::pair<std::string, std::string>> summary;  // the table's rows, in order
  std::vector<SdpPlan> sdp_plans;            // sdp runs: the first plan, then each change
  std::vector<PnnPartition> pnn_partitions;  // pnn schedules
  std::vector<std::string> notes;            // what the reader derived rather than read
};

// A `tessera pnn --compare` run's table: one row per schedule plus the conventional row.
struct PnnComparison {
  std::string name;
  double target_accuracy = kMissing;
  std::vector<std::string> columns;
  std::vector<std::vector<std::string>> rows;
};

// Everything the directories given to `tessera report` hold.
struct ReportData {
  std::vector<Run> runs;
  std::vector<PnnComparison> comparisons;
};

}  // namespace tessera::report
