// One-pass optimizer updates over contiguous float arrays: every element's moments and parameter
// are read and written once, with no temporaries. The arithmetic is libtorch's (Adam::step,
// AdamW::step, SGD::step), reordered only where a fused multiply-add may round differently, so the
// results agree with libtorch's to float rounding. Callers split the arrays among threads.
#pragma once

#include <cstdint>

namespace tessera::train {

// Each constant as libtorch passes it to its float kernels: computed in double, then rounded.
struct AdamScalars {
  float beta1 = 0.9f;
  float beta2 = 0.999f;
  float one_minus_beta1 = 0.1f;
  float one_minus_beta2 = 0.001f;
  float eps = 1e-8f;
  float weight_decay = 0.0f;  // L2 (Adam): added to the gradient; 0 for AdamW (decoupled)
  float decay_factor = 1.0f;  // AdamW: p *= 1 - lr * weight_decay before the update
  float sqrt_bias_correction2 = 1.0f;
  float step_size = 1e-3f;  // lr / bias_correction1
};

// Adam/AdamW on n elements: m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2; with amsgrad (vmax not
// null) vmax = max(vmax, v) takes v's place in p -= step_size m / (sqrt(v) / sqrt(bc2) + eps).
void adam_update(float* p, const float* g, float* m, float* v, float* vmax, int64_t n,
                 const AdamScalars& s);

struct SgdScalars {
  float lr = 0.01f;
  float weight_decay = 0.0f;
  float momentum = 0.0f;
  float one_minus_dampening = 1.0f;
  bool nesterov = false;
  bool first_step = false;  // the momentum buffer starts as the first step's gradient
};

// SGD on n elements: d = g + wd p; with momentum (buf not null) buf = first ? d : momentum buf +
// (1 - dampening) d, d = nesterov ? d + momentum buf : buf; p -= lr d.
void sgd_update(float* p, const float* g, float* buf, int64_t n, const SgdScalars& s);

// Whether all n floats are finite (no infinity, no NaN): one read pass, exact, no temporaries.
bool floats_finite(const float* x, int64_t n);

// The instruction set the loops run with on this CPU: "avx512f+fma", "avx2+fma" or "baseline".
const char* fused_kernel_isa();

}  // namespace tessera::train
