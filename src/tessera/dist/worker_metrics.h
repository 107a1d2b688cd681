// Per-worker measurements (memory, communication, throughput) gathered to rank 0 for summary.json.
#pragma once

#include <nlohmann/json.hpp>

#include "tessera/dist/process_group.h"
#include "tessera/train/trainer.h"

namespace tessera::dist {

// Every rank calls it. Returns on rank 0 one object per rank: rank, peak_tensor_bytes,
// peak_rss_bytes, comm_bytes (all traffic), step_comm_bytes (training steps only), train_samples,
// train_seconds, samples_per_second, steps; elsewhere an empty array.
nlohmann::json gather_worker_metrics(ProcessGroup& group, const train::TrainSummary& summary,
                                     int64_t step_comm_bytes);

}  // namespace tessera::dist
