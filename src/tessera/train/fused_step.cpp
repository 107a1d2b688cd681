#include "tessera/train/fused_step.h"

#include <ATen/Parallel.h>

namespace tessera::train {

bool fusable(const std::vector<torch::Tensor>& tensors) {
  for (const auto& t : tensors)
    if (t.defined() && (!t.device().is_cpu() || t.scalar_type() != torch::kFloat || t.is_sparse() ||
                        !t.is_contiguous()))
      return false;
  return true;
}

void parallel_elements(int64_t n, const std::function<void(int64_t, int64_t)>& body) {
  at::parallel_for(0, n, kFusedGrainElements, body);
}

}  // namespace tessera::train
