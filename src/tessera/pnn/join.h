// Joining trained partitions into the full network. A partition's parameters and buffers carry
// their full-model names ("stage<i>...."), so joining is copying them by name.
#pragma once

#include <string>
#include <vector>

#include "tessera/models/staged_model.h"

namespace tessera::pnn {

// Copies every parameter and buffer of `partition` into the tensor of the same name in `full`.
// Throws tessera::Error for a name `full` lacks or a shape that differs.
void copy_partition_into(models::StagedModel& full, models::StagedModel& partition);

// Builds the full model of `config` and fills it from partition checkpoints written by
// train::save_checkpoint, loading one partition at a time. The partitions must cover the stages
// exactly once, in order; tessera::Error names the file otherwise.
models::StagedModel join_checkpoints(const models::ModelConfig& config,
                                     const std::vector<std::string>& partition_checkpoints);

}  // namespace tessera::pnn
