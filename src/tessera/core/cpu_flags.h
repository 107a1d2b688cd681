// The CPU's feature flags as the Linux kernel lists them in /proc/cpuinfo: a flag appears there
// only where the kernel also lets processes use the feature (AMX's tile state, for one).
#pragma once

#include <string>

namespace tessera {

// Whether the first processor's "flags" line lists `flag` (e.g. "avx512_bf16", "amx_bf16");
// false for "" and where /proc/cpuinfo cannot be read.
bool cpu_lists_flag(const std::string& flag);

}  // namespace tessera
