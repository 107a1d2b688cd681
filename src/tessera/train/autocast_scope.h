// RAII mixed-precision region, like Python's `with torch.autocast(device, dtype)`: inside it,
// matmuls, linear layers and convolutions compute in the precision's dtype from fp32 inputs and
// weights (the weights stay fp32 leaves; their gradients come back fp32). Regions nest; the
// outermost one clears autocast's cache of cast weights when it ends, so an optimizer step after
// it is seen by the next forward. Thread-local, as libtorch's autocast state is. fp32: no effect.
#pragma once

#include <torch/torch.h>

#include "tessera/train/precision.h"

namespace tessera::train {

class AutocastScope {
 public:
  AutocastScope(Precision precision, const torch::Device& device);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  bool active_ = false;
  bool cuda_ = false;
  bool was_enabled_ = false;
  torch::ScalarType previous_dtype_ = torch::kFloat;
};

}  // namespace tessera::train
