// Re-estimates the running statistics of every batch norm layer of a model from training data.
// A model assembled from parts that were trained apart (SDP's subnetworks) has layers whose
// inputs no worker ever saw in that combination; their stored statistics are averages of other
// networks' and can be far off. This pass (as slimmable and once-for-all networks do) measures
// them on the assembled network itself: forward only, no parameter changes.
#pragma once

#include <cstdint>

#include <torch/torch.h>

#include "tessera/data/dataset.h"
#include "tessera/models/staged_model.h"

namespace tessera::train {

// Resets every BatchNorm2d's running mean/variance and recomputes them as the exact average over
// `batches` shuffled (by `seed`) training batches of `batch_size`. Returns the samples used (0 if
// the model has no batch norm, in which case nothing runs). Dropout and drop-path are off during
// the pass, as at test time. The model is left in eval mode.
int64_t recompute_batch_norm_statistics(models::StagedModel& model, const data::Dataset& dataset,
                                        int64_t batches, int64_t batch_size, uint64_t seed,
                                        const torch::Device& device);

}  // namespace tessera::train
