#include "tessera/kernels/bf16_kernel.h"

#include <atomic>

#include "tessera/core/cpu_flags.h"
#include "tessera/core/error.h"

namespace tessera::kernels {

namespace {
constexpr int kNotChosen = -1;
std::atomic<int> chosen_bf16_kernel{kNotChosen};
}  // namespace

Bf16Kernel auto_bf16_kernel() {
  static const Bf16Kernel kernel =
      cpu_lists_flag("amx_bf16") ? Bf16Kernel::Native : Bf16Kernel::Fp32Units;
  return kernel;
}

Bf16Kernel parse_bf16_kernel(const std::string& name) {
  if (name == "auto") return auto_bf16_kernel();
  if (name == "native") return Bf16Kernel::Native;
  if (name == "fp32-units") return Bf16Kernel::Fp32Units;
  throw UsageError("--bf16-kernel must be auto, native or fp32-units, got '" + name + "'");
}

const char* bf16_kernel_name(Bf16Kernel kernel) {
  return kernel == Bf16Kernel::Native ? "native" : "fp32-units";
}

Bf16Kernel bf16_kernel() {
  const int value = chosen_bf16_kernel.load(std::memory_order_relaxed);
  return value == kNotChosen ? auto_bf16_kernel() : static_cast<Bf16Kernel>(value);
}

void set_bf16_kernel(Bf16Kernel kernel) {
  chosen_bf16_kernel.store(static_cast<int>(kernel), std::memory_order_relaxed);
}

}  // namespace tessera::kernels
