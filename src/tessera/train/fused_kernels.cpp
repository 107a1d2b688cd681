#include "tessera/train/fused_kernels.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

namespace tessera::train {
namespace {

// The loops, written once and inlined into one function per instruction set below. The fused
// multiply-adds (std::fma) are where ATen's vectorised kernels use one (add with alpha, and
// addcmul as GCC contracts it), so the results match libtorch's optimizers bit for bit on this
// build; without FMA hardware std::fma is libm's, still exact, only slower.
#define TESSERA_ALWAYS_INLINE inline __attribute__((always_inline))

// One loop per case, chosen outside it: written as one loop with `if (vmax)` inside, GCC
// if-converts the branch into a masked load from vmax + i with an all-false mask when vmax is
// null, and a masked load from an unmapped address takes a microcode assist on every
// iteration (it made the step 4x slower on an AMD EPYC, 21% of a default MLP run's cycles).
template <bool kAmsgrad>
TESSERA_ALWAYS_INLINE void adam_loop_for(float* __restrict p, const float* __restrict g,
                                         float* __restrict m, float* __restrict v,
                                         float* __restrict vmax, int64_t n, const AdamScalars& s) {
  for (int64_t i = 0; i < n; ++i) {
    const float grad = std::fma(p[i], s.weight_decay, g[i]);
    const float param = p[i] * s.decay_factor;
    const float first = std::fma(grad, s.one_minus_beta1, m[i] * s.beta1);
    const float second = std::fma(s.one_minus_beta2 * grad, grad, v[i] * s.beta2);
    m[i] = first;
    v[i] = second;
    float denominator_source = second;
    if constexpr (kAmsgrad) {
      denominator_source = std::max(vmax[i], second);
      vmax[i] = denominator_source;
    }
    const float denominator = std::sqrt(denominator_source) / s.sqrt_bias_correction2 + s.eps;
    p[i] = param - s.step_size * first / denominator;
  }
}

TESSERA_ALWAYS_INLINE void adam_loop(float* p, const float* g, float* m, float* v, float* vmax,
                                     int64_t n, const AdamScalars& s) {
  if (vmax != nullptr)
    adam_loop_for<true>(p, g, m, v, vmax, n, s);
  else
    adam_loop_for<false>(p, g, m, v, nullptr, n, s);
}

// As adam_loop: one loop with momentum and one without, so that no masked load reads buf + i
// when buf is null.
template <bool kMomentum>
TESSERA_ALWAYS_INLINE void sgd_loop_for(float* __restrict p, const float* __restrict g,
                                        float* __restrict buf, int64_t n, const SgdScalars& s) {
  for (int64_t i = 0; i < n; ++i) {
    float direction = std::fma(p[i], s.weight_decay, g[i]);
    if constexpr (kMomentum) {
      const float velocity = s.first_step
                                 ? direction
                                 : std::fma(direction, s.one_minus_dampening, buf[i] * s.momentum);
      buf[i] = velocity;
      direction = s.nesterov ? std::fma(velocity, s.momentum, direction) : velocity;
    }
    p[i] = std::fma(direction, -s.lr, p[i]);
  }
}

TESSERA_ALWAYS_INLINE void sgd_loop(float* p, const float* g, float* buf, int64_t n,
                                    const SgdScalars& s) {
  if (buf != nullptr)
    sgd_loop_for<true>(p, g, buf, n, s);
  else
    sgd_loop_for<false>(p, g, nullptr, n, s);
}

// The largest exponent-and-mantissa bit pattern, as an integer max that vectorises (a float
// comparison reduction would not, without -ffast-math): a float is infinite or NaN exactly when
// its exponent bits are all ones, i.e. its magnitude bits are at least 0x7f800000.
TESSERA_ALWAYS_INLINE bool finite_loop(const float* __restrict x, int64_t n) {
  uint32_t largest = 0;
  for (int64_t i = 0; i < n; ++i) {
    uint32_t bits;
    std::memcpy(&bits, x + i, sizeof bits);
    largest = std::max(largest, bits & 0x7fffffffu);
  }
  return largest < 0x7f800000u;
}

using AdamLoop = void (*)(float*, const float*, float*, float*, float*, int64_t,
                          const AdamScalars&);
using SgdLoop = void (*)(float*, const float*, float*, int64_t, const SgdScalars&);
using FiniteLoop = bool (*)(const float*, int64_t);

// The build targets baseline x86-64; these loops are memory-bound at AVX-512 width and
// compute-bound (sqrt, division) below it, so they are also compiled for AVX2 + FMA and for
// AVX-512 + FMA, and the widest the CPU has is picked once, by its features (GCC's
// target_clones("arch=...") would pick by CPU model and miss every AMD CPU).
#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx512f,fma"))) void adam_avx512(float* p, const float* g, float* m,
                                                        float* v, float* vmax, int64_t n,
                                                        const AdamScalars& s) {
  adam_loop(p, g, m, v, vmax, n, s);
}
__attribute__((target("avx2,fma"))) void adam_avx2(float* p, const float* g, float* m, float* v,
                                                   float* vmax, int64_t n, const AdamScalars& s) {
  adam_loop(p, g, m, v, vmax, n, s);
}
__attribute__((target("avx512f,fma"))) void sgd_avx512(float* p, const float* g, float* buf,
                                                       int64_t n, const SgdScalars& s) {
  sgd_loop(p, g, buf, n, s);
}
__attribute__((target("avx2,fma"))) void sgd_avx2(float* p, const float* g, float* buf, int64_t n,
                                                  const SgdScalars& s) {
  sgd_loop(p, g, buf, n, s);
}
__attribute__((target("avx512f"))) bool finite_avx512(const float* x, int64_t n) {
  return finite_loop(x, n);
}
__attribute__((target("avx2"))) bool finite_avx2(const float* x, int64_t n) {
  return finite_loop(x, n);
}
#endif
bool finite_baseline(const float* x, int64_t n) {
  return finite_loop(x, n);
}
void adam_baseline(float* p, const float* g, float* m, float* v, float* vmax, int64_t n,
                   const AdamScalars& s) {
  adam_loop(p, g, m, v, vmax, n, s);
}
void sgd_baseline(float* p, const float* g, float* buf, int64_t n, const SgdScalars& s) {
  sgd_loop(p, g, buf, n, s);
}

enum class Isa { Avx512, Avx2, Baseline };

// The CPU's widest instruction set, read once.
Isa widest_isa() {
  static const Isa isa = [] {
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma")) return Isa::Avx512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::Avx2;
#endif
    return Isa::Baseline;
  }();
  return isa;
}

// The variant of a loop for that instruction set.
template <typename Loop>
Loop widest(Loop avx512, Loop avx2, Loop baseline) {
  return widest_isa() == Isa::Avx512 ? avx512 : widest_isa() == Isa::Avx2 ? avx2 : baseline;
}
#if defined(__x86_64__) && defined(__GNUC__)
#define TESSERA_WIDEST(loop) widest(loop##_avx512, loop##_avx2, loop##_baseline)
#else
#define TESSERA_WIDEST(loop) loop##_baseline
#endif

}  // namespace

const char* fused_kernel_isa() {
  const Isa isa = widest_isa();
  return isa == Isa::Avx512 ? "avx512f+fma" : isa == Isa::Avx2 ? "avx2+fma" : "baseline";
}

void adam_update(float* p, const float* g, float* m, float* v, float* vmax, int64_t n,
                 const AdamScalars& s) {
  static const AdamLoop loop = TESSERA_WIDEST(adam);
  loop(p, g, m, v, vmax, n, s);
}

void sgd_update(float* p, const float* g, float* buf, int64_t n, const SgdScalars& s) {
  static const SgdLoop loop = TESSERA_WIDEST(sgd);
  loop(p, g, buf, n, s);
}

bool floats_finite(const float* x, int64_t n) {
  static const FiniteLoop loop = TESSERA_WIDEST(finite);
  return loop(x, n);
}

}  // namespace tessera::train
