// Deterministic randomness for every layer (data order and augmentation, dropout masks, SILs, SDP
// plans): every random draw uses a local generator seeded from the user's seed (never the global
// one), so results depend only on the seed.
#pragma once

#include <cstdint>

#include <torch/torch.h>

namespace tessera {

// Mixes `value` into `seed` (splitmix64 finaliser): distinct inputs give unrelated seeds, so
// e.g. (seed, epoch) and (seed, epoch + 1) draw independent permutations.
uint64_t mix_seed(uint64_t seed, uint64_t value);

// A fresh CPU generator in a fixed state for `seed`.
at::Generator make_generator(uint64_t seed);

}  // namespace tessera
