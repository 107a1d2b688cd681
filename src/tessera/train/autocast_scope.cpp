#include "tessera/train/autocast_scope.h"

#include <ATen/autocast_mode.h>

#include "tessera/core/torch_compat.h"

namespace tessera::train {

AutocastScope::AutocastScope(Precision precision, const torch::Device& device)
    : active_(precision != Precision::Fp32), cuda_(device.is_cuda()) {
  if (!active_) return;
  was_enabled_ = compat::autocast_enabled(cuda_);
  previous_dtype_ = compat::autocast_dtype(cuda_);
  compat::set_autocast(cuda_, true, compute_dtype(precision));
  at::autocast::increment_nesting();
}

AutocastScope::~AutocastScope() {
  if (!active_) return;
  // As torch.autocast.__exit__: the last region to end drops the cast weights it cached.
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  compat::set_autocast(cuda_, was_enabled_, previous_dtype_);
}

}  // namespace tessera::train
