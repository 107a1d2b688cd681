// Deterministic randomness for every layer (data order and augmentation, dropout masks, SILs, SDP
// plans): every random draw uses a local generator seeded from the user's seed (never the global
// one), so results depend only on the seed.
#pragma once

#include <cstdint>
#include <mutex>

#include <torch/torch.h>

namespace tessera {

// Mixes `value` into `seed` (splitmix64 finaliser): distinct inputs give unrelated seeds, so
// e.g. (seed, epoch) and (seed, epoch + 1) draw independent permutations.
uint64_t mix_seed(uint64_t seed, uint64_t value);

// A fresh CPU generator in a fixed state for `seed`.
at::Generator make_generator(uint64_t seed);

// Building a module draws from libtorch's global generator (its layers take no generator of their
// own). Hold this lock from torch::manual_seed(...) until the model is built, and around any other
// module construction, so that workers that are threads of one process (the in-process tests, a
// library user's threads) never interleave their draws. Recursive: a locked region may call
// another that locks.
std::unique_lock<std::recursive_mutex> lock_global_generator();

}  // namespace tessera
