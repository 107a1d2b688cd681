// Evaluating an SDP run's workers' subnetworks together, as an ensemble: every worker runs its own
// subnetwork on the same test batches and the prediction is the mean of their predicted
// distributions. No worker builds the full model (the assembled model's evaluation needs it on
// rank 0), and what travels per batch is the workers' log-probabilities (2 all-reduces of the
// outputs' size). Inference costs W x C of the full model's FLOPs.
#pragma once

#include <vector>

#include <torch/torch.h>

#include "tessera/data/dataset.h"
#include "tessera/dist/process_group.h"
#include "tessera/train/trainer.h"

namespace tessera::sdp {

// Collective: log of the mean over the group's workers of softmax(outputs) along the last
// dimension, computed stably (log-mean-exp, fp32). Every worker gets the same tensor; as logits it
// gives the ensemble's cross-entropy and top-1 prediction.
torch::Tensor log_mean_probabilities(dist::ProcessGroup& group, const torch::Tensor& outputs);

// The same for the members' outputs on one process (`tessera eval` of several checkpoints).
torch::Tensor log_mean_probabilities(const std::vector<torch::Tensor>& outputs);

// Collective: the test figures of the workers' subnetworks as an ensemble (see above), the same on
// every worker. Each worker evaluates its trainer's model; the models are only read.
train::EvalResult evaluate_subnet_ensemble(dist::ProcessGroup& group, train::Trainer& trainer,
                                           const data::Dataset& test);

}  // namespace tessera::sdp
