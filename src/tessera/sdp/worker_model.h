// Building a worker's physically smaller subnetwork, and rebuilding the full model from the
// workers' subnetworks at the end of an SDP run.
#pragma once

#include <cstdint>

#include "tessera/dist/process_group.h"
#include "tessera/models/staged_model.h"
#include "tessera/sdp/mask_plan.h"
#include "tessera/sdp/unheld_entries.h"

namespace tessera::sdp {

// The subnetwork `subnet` of the (resolved, full) `model`, holding in every entry the value that
// `torch::manual_seed(seed); build_model(model)` would give it, so that all holders of a unit
// start equal and W = 1, C = 1 reproduces conventional training. The full model is never
// allocated: it is generated one stage at a time and only the held entries are kept.
models::StagedModel build_worker_model(const models::ModelConfig& model,
                                       const models::Subnet& subnet, uint64_t seed);

// Collective: every worker sends its subnetwork (`worker_model`, built for plan.subnet(rank)) to
// rank 0, which returns the full model (other ranks return an empty holder). Each entry comes from
// its lowest-ranked holder; entries no worker holds (a weight between two neurons that no worker
// holds together) from their keeper, each worker's `kept` (once started: after a plan change),
// else they keep their initial value from `seed`. With `rescale` > 0, every masked unit's
// contribution is then multiplied by it (see TensorSlice::scales_output), as dropout and
// stochastic depth do at test time with the keep rate (the coverage); 0: not rescaled.
models::StagedModel assemble_full_model(dist::ProcessGroup& world, torch::nn::Module& worker_model,
                                        const MaskPlan& plan, const models::ModelConfig& model,
                                        uint64_t seed, double rescale, const KeptEntries& kept);

// Multiplies the output-scaling tensors of the plan's masked groups by `factor`, in place.
void rescale_masked_units(torch::nn::Module& full_model, const MaskPlan& plan, double factor);

}  // namespace tessera::sdp
