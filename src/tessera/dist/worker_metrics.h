// What a worker's run of a distributed method (DDP, pipeline, SDP) gives back, and the per-worker
// measurements (memory, communication, throughput) gathered to rank 0 for summary.json.
#pragma once

#include <nlohmann/json.hpp>

#include "tessera/dist/process_group.h"
#include "tessera/train/trainer.h"

namespace tessera::dist {

// One worker's result of a distributed run (every rank has one).
struct RunResult {
  train::TrainSummary summary;  // this worker's fit; on rank 0 with the final test figures
  int64_t step_comm_bytes = 0;  // bytes this worker sent in training steps
  nlohmann::json details;       // the method's own figures (summary.json's "ddp", "sdp", ...)
};

// Every rank calls it. Returns on rank 0 one object per rank: rank, peak_tensor_bytes (and its
// train_ and eval_ parts, see train::TrainSummary), peak_rss_bytes, comm_bytes (all traffic),
// step_comm_bytes (training steps only), train_samples, train_seconds, samples_per_second, steps,
// param_bytes, grad_bytes, optimizer_state_bytes; elsewhere an empty array.
nlohmann::json gather_worker_metrics(ProcessGroup& group, const train::TrainSummary& summary,
                                     int64_t step_comm_bytes);

// Every rank calls it. Rank 0 gets the run's summary.json: the TrainSummary's fields, "dist":
// `method`, world_size, `method`: result.details, "ranks" (gather_worker_metrics) and the run-wide
// totals: total_samples_per_second (summed over the ranks if `data_parallel`, else rank 0's: the
// pipeline's ranks all pass the same samples), total_comm_bytes and comm_bytes_per_step (training
// steps only, all ranks together). The other ranks get null.
nlohmann::json summarize_run(ProcessGroup& group, const std::string& method,
                             const RunResult& result, bool data_parallel);

}  // namespace tessera::dist
