// Adam and AdamW with libtorch's arithmetic but without its step's full-size temporaries.
// libtorch computes the update as p.addcdiv_(m, (sqrt(v) / sqrt(bc2)).add_(eps), -lr / bc1),
// which holds two temporaries the size of the parameter at once: for the MLP's 1024 x 1024
// layers that is 8 MiB, a tenth of a PNN partition's peak. These classes apply the same
// element-wise operations to slices of at most kChunkElements, so the temporaries stay small
// (on CPU; on a GPU the kernel launches would cost more than the memory saves).
// A float parameter on the CPU whose tensors are contiguous takes a fused path instead: one pass
// over parameter, gradient and moments in one parallel region (fused_kernels.h; no temporaries,
// and a single wake-up of sleeping OpenMP threads instead of one per operation and slice), equal
// to libtorch's arithmetic up to float rounding. State, options and checkpoints are libtorch's own
// (they subclass Adam / AdamW).
#pragma once

#include <cstdint>

#include <torch/torch.h>

namespace tessera::train {

constexpr int64_t kChunkElements = 1 << 16;

class ChunkedAdam : public torch::optim::Adam {
 public:
  using torch::optim::Adam::Adam;
  torch::Tensor step(LossClosure closure = nullptr) override;
};

class ChunkedAdamW : public torch::optim::AdamW {
 public:
  using torch::optim::AdamW::AdamW;
  torch::Tensor step(LossClosure closure = nullptr) override;
};

}  // namespace tessera::train
