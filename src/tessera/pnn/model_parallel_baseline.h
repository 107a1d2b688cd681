// The model-parallel baseline PNN's bandwidth claim is measured against: the same model cut at
// the same stages, trained as a pipeline (dist/pipeline, activations forward and their gradients
// back at every cut) by one thread per partition for a few steps, counting the bytes sent.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "tessera/data/dataset.h"
#include "tessera/models/model_config.h"
#include "tessera/pnn/partition_plan.h"
#include "tessera/train/trainer.h"

namespace tessera::pnn {

struct ModelParallelBytes {
  int64_t steps = 0;           // training steps measured
  int64_t bytes_per_step = 0;  // sent by all ranks together, per optimizer step
};

// Trains the pipeline of `plan` on the first `steps` batches of `train_set` (on the CPU: the
// bytes do not depend on the device) and returns what its ranks sent. The ranks meet through a
// file store in `scratch_dir`, which is removed afterwards. Throws tessera::Error if a rank
// fails.
ModelParallelBytes measure_model_parallel_bytes(const models::ModelConfig& model,
                                                const PartitionPlan& plan, train::TrainConfig train,
                                                const data::Dataset& train_set, int64_t steps,
                                                const std::string& scratch_dir);

nlohmann::json to_json(const ModelParallelBytes& bytes);

}  // namespace tessera::pnn
