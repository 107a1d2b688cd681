// How bf16 matrix products and convolutions are computed on a CPU (--bf16-kernel). Both choices
// multiply the same bf16-rounded operands, accumulate in fp32 and round the result to bf16; they
// differ in the instructions. "native": the CPU's bf16 instructions, through autocast (oneDNN's
// AMX or AVX512-BF16 kernels). "fp32-units": the operands are widened to fp32 (exactly: every
// bf16 is an fp32) and multiplied on the fp32 kernel (matmul_backend()) -- faster where the bf16
// dot-product unit is no faster than the fp32 FMA units, as on Xeons whose AMX is not exposed
// (docs/benchmarks.md). Process-wide, like matmul_backend(). CUDA always uses autocast's cuBLAS.
#pragma once

#include <string>

namespace tessera::kernels {

enum class Bf16Kernel { Native, Fp32Units };

// What "auto" resolves to: Native where /proc/cpuinfo lists amx_bf16 (AMX tiles outrun the fp32
// units), Fp32Units otherwise. Decided by the CPU's features, not a timing, so that a seed gives
// the same result from run to run.
Bf16Kernel auto_bf16_kernel();

// "auto" / "native" / "fp32-units"; UsageError naming --bf16-kernel for anything else.
Bf16Kernel parse_bf16_kernel(const std::string& name);
const char* bf16_kernel_name(Bf16Kernel kernel);

// The process-wide choice; auto_bf16_kernel() until set.
Bf16Kernel bf16_kernel();
void set_bf16_kernel(Bf16Kernel kernel);

}  // namespace tessera::kernels
