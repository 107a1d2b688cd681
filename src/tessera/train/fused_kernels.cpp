#include "tessera/train/fused_kernels.h"

#include <algorithm>
#include <cmath>

// The loops below are memory-bound at AVX-512 width and compute-bound (sqrt, division) below
// it; the build targets baseline x86-64, so each loop is also compiled for AVX2 + FMA and for
// AVX-512 and the loader picks the widest the CPU has (GCC function multi-versioning). The fused
// multiply-adds (std::fma) are where ATen's vectorised add(other, alpha) uses one too.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define TESSERA_WIDEST_SIMD \
  __attribute__((target_clones("arch=skylake-avx512", "arch=haswell", "default")))
#else
#define TESSERA_WIDEST_SIMD
#endif

namespace tessera::train {

TESSERA_WIDEST_SIMD
void adam_update(float* __restrict p, const float* __restrict g, float* __restrict m,
                 float* __restrict v, float* __restrict vmax, int64_t n, const AdamScalars& s) {
  for (int64_t i = 0; i < n; ++i) {
    const float grad = std::fma(p[i], s.weight_decay, g[i]);
    const float param = p[i] * s.decay_factor;
    const float first = std::fma(grad, s.one_minus_beta1, m[i] * s.beta1);
    const float second = std::fma(s.one_minus_beta2 * grad, grad, v[i] * s.beta2);
    m[i] = first;
    v[i] = second;
    float denominator_source = second;
    if (vmax != nullptr) {
      denominator_source = std::max(vmax[i], second);
      vmax[i] = denominator_source;
    }
    const float denominator = std::sqrt(denominator_source) / s.sqrt_bias_correction2 + s.eps;
    p[i] = param - s.step_size * first / denominator;
  }
}

TESSERA_WIDEST_SIMD
void sgd_update(float* __restrict p, const float* __restrict g, float* __restrict buf, int64_t n,
                const SgdScalars& s) {
  for (int64_t i = 0; i < n; ++i) {
    float direction = std::fma(p[i], s.weight_decay, g[i]);
    if (buf != nullptr) {
      const float velocity = s.first_step
                                 ? direction
                                 : std::fma(direction, s.one_minus_dampening, buf[i] * s.momentum);
      buf[i] = velocity;
      direction = s.nesterov ? std::fma(velocity, s.momentum, direction) : velocity;
    }
    p[i] = std::fma(direction, -s.lr, p[i]);
  }
}

}  // namespace tessera::train
