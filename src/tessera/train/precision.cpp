#include "tessera/train/precision.h"

#include <cstdlib>

#include "tessera/core/cpu_flags.h"
#include "tessera/core/error.h"
#include "tessera/kernels/bf16_kernel.h"
#include "tessera/kernels/matmul_backend.h"

namespace tessera::train {

Precision parse_precision(const std::string& name) {
  if (name == "fp32") return Precision::Fp32;
  if (name == "bf16") return Precision::Bf16;
  if (name == "fp16") return Precision::Fp16;
  throw UsageError("--precision must be fp32, bf16 or fp16, got '" + name + "'");
}

const char* precision_name(Precision precision) {
  switch (precision) {
    case Precision::Bf16:
      return "bf16";
    case Precision::Fp16:
      return "fp16";
    case Precision::Fp32:
      break;
  }
  return "fp32";
}

torch::ScalarType compute_dtype(Precision precision) {
  switch (precision) {
    case Precision::Bf16:
      return torch::kBFloat16;
    case Precision::Fp16:
      return torch::kHalf;
    case Precision::Fp32:
      break;
  }
  return torch::kFloat;
}

bool cpu_has_native_bf16() {
  if (const char* forced = std::getenv("TESSERA_CPU_BF16")) {
    const std::string value = forced;
    require(value == "0" || value == "1", "TESSERA_CPU_BF16 must be 0 or 1, got '" + value + "'");
    return value == "1";
  }
  return cpu_lists_flag("avx512_bf16") || cpu_lists_flag("amx_bf16");
}

const char* matmul_kernel(Precision precision, const torch::Device& device) {
  if (device.is_cuda()) return "cublas";
  const kernels::MatmulBackend fp32 = kernels::matmul_backend();
  if (precision != Precision::Bf16) return kernels::matmul_backend_name(fp32);
  if (kernels::bf16_kernel() == kernels::Bf16Kernel::Native) return "onednn";
  return fp32 == kernels::MatmulBackend::Onednn ? "onednn-fp32-units" : "blas-fp32-units";
}

void require_precision_supported(Precision precision, const torch::Device& device) {
  if (precision == Precision::Fp32 || device.is_cuda()) return;
  // libtorch's CPU autocast computes in bf16 only, and a CPU has no fast fp16 matrix products.
  require(precision != Precision::Fp16,
          "--precision fp16 needs a CUDA device (--device cuda); on a CPU use --precision bf16 "
          "(with avx512_bf16 or amx_bf16) or fp32");
  // oneDNN would emulate bf16 with fp32 arithmetic and conversions: slower than fp32, and not
  // what a user asking for bf16 expects.
  require(cpu_has_native_bf16(),
          "--precision bf16: this CPU has no native bf16 arithmetic (neither avx512_bf16 nor "
          "amx_bf16 in /proc/cpuinfo); use --precision fp32 or a machine that has it");
}

}  // namespace tessera::train
