// Which kernels compute the fp32 matrix products of linear layers on a CPU (--matmul-kernel):
// the BLAS libtorch links, or oneDNN's matmul called directly on the tensors' own row-major
// memory (no layout conversion). The choice is process-wide, like the thread count: set once
// before training, read by kernels::linear. bf16 on a CPU follows bf16_kernel.h (autocast's
// oneDNN bf16 kernels, or this choice on operands widened to fp32); CUDA runs on cuBLAS.
#pragma once

#include <string>

#include "tessera/kernels/onednn_matmul.h"  // onednn_available()

namespace tessera::kernels {

enum class MatmulBackend { Blas, Onednn };

// What "auto" resolves to: oneDNN where it is built and the CPU has AVX-512 (avx512f), where it
// measured 1.4-5x BLAS on training shapes (docs/benchmarks.md); BLAS otherwise. Decided by the
// CPU's features, not a timing, so that the same seed gives the same result from run to run.
MatmulBackend auto_matmul_backend();

// "auto" / "blas" / "onednn"; UsageError naming --matmul-kernel for anything else, and for
// "onednn" in a build without it.
MatmulBackend parse_matmul_backend(const std::string& name);
const char* matmul_backend_name(MatmulBackend backend);

// The process-wide choice; auto_matmul_backend() until set.
MatmulBackend matmul_backend();
void set_matmul_backend(MatmulBackend backend);

}  // namespace tessera::kernels
