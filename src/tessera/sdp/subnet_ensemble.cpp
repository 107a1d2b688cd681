#include "tessera/sdp/subnet_ensemble.h"

#include <cmath>
#include <vector>

namespace tessera::sdp {

torch::Tensor log_mean_probabilities(dist::ProcessGroup& group, const torch::Tensor& outputs) {
  // log mean_w p_w = M + log(sum_w exp(log p_w - M) / W), with M the largest log p_w of each
  // entry: every exponent is at most 0 and one is 0, so nothing overflows and the log's argument
  // is at least 1 / W (a probability that underflows on one worker is still counted on others).
  const torch::Tensor log_p = torch::log_softmax(outputs.to(torch::kFloat32), -1);
  std::vector<torch::Tensor> largest = {log_p.clone()};
  group.all_reduce(largest, dist::ReduceOp::Max);
  std::vector<torch::Tensor> sum = {(log_p - largest[0]).exp_()};
  group.all_reduce(sum, dist::ReduceOp::Sum);
  return largest[0] + sum[0].log_() - std::log(static_cast<double>(group.size()));
}

torch::Tensor log_mean_probabilities(const std::vector<torch::Tensor>& outputs) {
  TORCH_CHECK(!outputs.empty(), "an ensemble needs at least one member's outputs");
  std::vector<torch::Tensor> log_p;
  for (const auto& member : outputs)
    log_p.push_back(torch::log_softmax(member.to(torch::kFloat32), -1));
  return torch::logsumexp(torch::stack(log_p), 0) - std::log(static_cast<double>(outputs.size()));
}

train::EvalResult evaluate_subnet_ensemble(dist::ProcessGroup& group, train::Trainer& trainer,
                                           const data::Dataset& test) {
  return trainer.evaluate(test, [&group](const torch::Tensor& outputs, const data::Batch&) {
    return log_mean_probabilities(group, outputs);
  });
}

}  // namespace tessera::sdp
