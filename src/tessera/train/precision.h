// The arithmetic precision of training (--precision): fp32, or bf16 / fp16 compute under autocast
// with fp32 master weights, fp32 optimizer state and an fp32 loss. bf16 needs hardware that
// computes it natively (CPU: avx512_bf16 or amx_bf16; or a CUDA device); fp16 needs a CUDA device
// and trains with dynamic loss scaling (loss_scaler.h). Elsewhere each is refused, never silently
// emulated.
#pragma once

#include <string>

#include <torch/torch.h>

namespace tessera::train {

enum class Precision { Fp32, Bf16, Fp16 };

// "fp32" / "bf16" / "fp16"; UsageError naming --precision and the choices otherwise.
Precision parse_precision(const std::string& name);
const char* precision_name(Precision precision);

// The dtype the autocast region computes in (kFloat for fp32).
torch::ScalarType compute_dtype(Precision precision);

// Whether this CPU computes bf16 natively: /proc/cpuinfo lists avx512_bf16 or amx_bf16. The
// environment variable TESSERA_CPU_BF16=0|1 overrides the detection (for tests of the refusal).
bool cpu_has_native_bf16();

// The kernels the linear layers' matrix products run on, forward and backward: for fp32 on a CPU
// the process's choice (kernels::matmul_backend(), --matmul-kernel: "blas" or "onednn"); for bf16
// on a CPU "onednn" with --bf16-kernel native (autocast's AMX / AVX512-BF16 GEMMs), and with
// fp32-units "onednn-fp32-units" or "blas-fp32-units" (the fp32 kernel on bf16-rounded operands,
// convolutions included); "cublas" on CUDA (every precision).
// Reported in summary.json ("matmul_kernel").
const char* matmul_kernel(Precision precision, const torch::Device& device);

// UsageError unless `device` can train in `precision` (see the header comment).
void require_precision_supported(Precision precision, const torch::Device& device);

}  // namespace tessera::train
