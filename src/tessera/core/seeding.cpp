#include "tessera/core/seeding.h"

#include <ATen/CPUGeneratorImpl.h>

namespace tessera {

uint64_t mix_seed(uint64_t seed, uint64_t value) {
  uint64_t z = seed + 0x9e3779b97f4a7c15ULL * (value + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

at::Generator make_generator(uint64_t seed) {
  // torch-compat: at::detail::createCPUGenerator lives in ATen/CPUGeneratorImpl.h in 1.13 and 2.x.
  return at::detail::createCPUGenerator(seed);
}

std::unique_lock<std::recursive_mutex> lock_global_generator() {
  static std::recursive_mutex mutex;
  return std::unique_lock<std::recursive_mutex>(mutex);
}

}  // namespace tessera
