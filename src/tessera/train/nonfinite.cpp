#include "tessera/train/nonfinite.h"

#include <algorithm>
#include <atomic>
#include <cmath>

#include "tessera/train/fused_kernels.h"
#include "tessera/train/fused_step.h"

namespace tessera::train {

NonfinitePolicy parse_nonfinite_policy(const std::string& name) {
  if (name == "stop") return NonfinitePolicy::Stop;
  if (name == "skip") return NonfinitePolicy::Skip;
  throw UsageError("--nonfinite must be stop or skip, got '" + name + "'");
}

namespace {
// Dense float tensors on the CPU, scanned by the fused loop (fused_kernels.h) laid end to end in
// one parallel region: one read pass, no temporaries and no synchronisation, where isfinite()
// would write a bool tensor per gradient and read it back (10% of a small MLP's step time).
bool cpu_floats_finite(const std::vector<torch::Tensor>& tensors) {
  std::vector<const float*> data;
  std::vector<int64_t> ends;  // each tensor's end in the concatenation
  int64_t total = 0;
  for (const auto& t : tensors) {
    data.push_back(t.data_ptr<float>());
    total += t.numel();
    ends.push_back(total);
  }
  std::atomic<bool> finite{true};
  parallel_elements(total, [&](int64_t begin, int64_t end) {
    size_t segment =
        static_cast<size_t>(std::upper_bound(ends.begin(), ends.end(), begin) - ends.begin());
    while (begin < end && finite.load(std::memory_order_relaxed)) {
      const int64_t start = segment == 0 ? 0 : ends[segment - 1];
      const int64_t stop = std::min(end, ends[segment]);
      if (!floats_finite(data[segment] + (begin - start), stop - begin)) finite = false;
      begin = stop;
      ++segment;
    }
  });
  return finite;
}

// Anything else (a GPU, half precision): one boolean per tensor, combined on the device, read
// once.
bool all_finite(const std::vector<torch::Tensor>& tensors) {
  std::vector<torch::Tensor> scanned;
  std::vector<torch::Tensor> flags;
  for (const auto& t : tensors) {
    if (!t.defined() || t.numel() == 0 || !t.is_floating_point()) continue;
    if (fusable({t}))
      scanned.push_back(t);
    else
      flags.push_back(torch::isfinite(t).all());
  }
  if (!scanned.empty() && !cpu_floats_finite(scanned)) return false;
  if (flags.empty()) return true;
  return torch::stack(flags).all().item<bool>();
}
}  // namespace

bool gradients_finite(const std::vector<torch::Tensor>& parameters) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> grads;
  for (const auto& p : parameters) grads.push_back(p.grad());
  return all_finite(grads);
}

bool state_finite(torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> tensors = module.parameters();
  for (const auto& b : module.buffers()) tensors.push_back(b);
  return all_finite(tensors);
}

std::vector<double> nonfinite_ballot(bool here, int64_t rank) {
  return {here ? 1.0 : 0.0, here ? static_cast<double>(rank + 1) : 0.0};
}

NonfiniteVote count_ballots(const std::vector<double>& summed) {
  NonfiniteVote vote;
  vote.workers = static_cast<int64_t>(std::llround(summed.at(0)));
  if (vote.workers == 1) vote.rank = static_cast<int64_t>(std::llround(summed.at(1))) - 1;
  return vote;
}

std::string describe(const NonfiniteStep& step, const NonfiniteVote& vote) {
  const std::string where =
      " at epoch " + std::to_string(step.epoch) + ", step " + std::to_string(step.step);
  const bool loss_here = !std::isfinite(step.loss);
  if (loss_here || step.gradient_here) {
    // "nan" whatever its sign bit (printf would say "-nan" for some).
    const std::string loss = std::isnan(step.loss) ? "nan" : step.loss > 0 ? "inf" : "-inf";
    std::string text = (loss_here ? std::string("the loss was ") + loss
                                  : std::string("a gradient was non-finite")) +
                       where + " on rank " + std::to_string(step.rank);
    if (vote.workers > 1)
      text += " (and on " + std::to_string(vote.workers - 1) + " other worker" +
              (vote.workers > 2 ? "s" : "") + ")";
    return text;
  }
  return "the loss or a gradient was non-finite" + where + " on " +
         (vote.rank >= 0 ? "rank " + std::to_string(vote.rank)
                         : std::to_string(vote.workers) + " workers");
}

bool NonfiniteGuard::skip(const NonfiniteStep& step, const NonfiniteVote& vote,
                          const std::string& kept) {
  if (!vote.any()) {
    in_a_row_ = 0;
    return false;
  }
  const std::string what = describe(step, vote);
  if (policy_ == NonfinitePolicy::Stop)
    throw NonfiniteError(what + "; stopped before the update (--nonfinite stop)" + kept);
  ++in_a_row_;
  if (in_a_row_ > max_)
    throw NonfiniteError(what + "; that is " + std::to_string(in_a_row_) +
                         " non-finite steps in a row, more than --nonfinite-max-skips " +
                         std::to_string(max_) + ": stopped the run" + kept);
  ++skipped_;
  return true;
}

}  // namespace tessera::train
