// Process-wide allocator settings for training: tensors of a training step are freed and
// allocated again every step, and glibc's defaults hand large freed blocks back to the kernel
// (munmap, heap trimming), so the next step pays page faults and the kernel's zero-filling of
// fresh pages: 12.7% of a language-model step's CPU time in clear_page_erms, against 5.5% with the
// settings below (perf, docs/benchmarks.md).
#pragma once

namespace tessera {

// Keeps freed memory in the process for reuse: blocks up to 32 MiB (glibc's largest mmap
// threshold) come from the heap, and the heap's free top is not returned below 1 GiB. No effect
// where the user already tunes malloc (GLIBC_TUNABLES with a malloc setting, MALLOC_MMAP_THRESHOLD_
// or MALLOC_TRIM_THRESHOLD_ set) or where the C library is not glibc. Returns whether it applied.
bool keep_freed_memory_for_reuse();

}  // namespace tessera
