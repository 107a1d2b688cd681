// One call per training method, for using tessera as a library: conventional training, PNN
// (sequential schedule, in this process) and SDP (workers as threads of this process). Each fills
// the model's input shape and classes in from the data, resolves it by its architecture (built-in
// or registered with models::register_architecture) and, given a run directory, writes there what
// the `tessera` command writes (config.json, metrics.jsonl, summary.json, checkpoint.pt).
#pragma once

#include <cstdint>
#include <string>

#include "tessera/data/dataset.h"
#include "tessera/dist/worker_metrics.h"
#include "tessera/models/model_config.h"
#include "tessera/pnn/pnn_config.h"
#include "tessera/pnn/pnn_run.h"
#include "tessera/sdp/sdp_run.h"
#include "tessera/train/trainer.h"

namespace tessera::api {

// `model` with data.train's sample shape and number of classes, resolved (defaults filled in,
// every field validated: UsageError naming the field otherwise).
models::ModelConfig fit_to_data(models::ModelConfig model, const data::TrainTest& data);

// Trains the whole network with back-propagation (what `tessera train` does); run_dir may be empty.
train::TrainSummary train_conventional(const models::ModelConfig& model,
                                       const train::TrainConfig& train, const data::TrainTest& data,
                                       const std::string& run_dir = "");

// PNN/SIL with the sequential schedule: cuts the network (pnn.cuts, or pnn.partitions balanced by
// memory), trains the partitions one after another on synthetic intermediate labels, joins and
// recovers them. run_dir is required (partitions and hand-overs live there). UsageError for the
// parallel schedule, which starts `tessera pnn-worker` processes: use the command for it.
pnn::PnnResult train_pnn(const models::ModelConfig& model, const train::TrainConfig& train,
                         const pnn::PnnConfig& pnn, const data::TrainTest& data,
                         const std::string& run_dir);

// Subnetwork data parallelism with `workers` ranks, each a thread of this process meeting the
// others through a file store in a temporary directory. setup.model, setup.train and the SDP
// settings are used as given (setup.run is set from run_dir, which may be empty). Returns rank 0's
// result: the assembled full model's test figures. Throws the first worker's error.
dist::RunResult train_sdp(sdp::SdpSetup setup, int64_t workers, const data::TrainTest& data,
                          const std::string& run_dir = "");

}  // namespace tessera::api
