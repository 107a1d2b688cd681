#include "tessera/kernels/matmul_backend.h"

#include <atomic>

#include "tessera/core/error.h"
#include "tessera/kernels/onednn_matmul.h"

namespace tessera::kernels {

namespace {
constexpr int kUnset = -1;
std::atomic<int> chosen{kUnset};
}  // namespace

MatmulBackend auto_matmul_backend() {
  // The same feature test train/fused_kernels.cpp picks its loops by.
  static const bool onednn = onednn_available() && __builtin_cpu_supports("avx512f");
  return onednn ? MatmulBackend::Onednn : MatmulBackend::Blas;
}

MatmulBackend parse_matmul_backend(const std::string& name) {
  if (name == "auto") return auto_matmul_backend();
  if (name == "blas") return MatmulBackend::Blas;
  if (name == "onednn") {
    require(onednn_available(),
            "--matmul-kernel onednn: this build has no oneDNN (install libdnnl-dev and "
            "rebuild; scripts/install-deps.sh does)");
    return MatmulBackend::Onednn;
  }
  throw UsageError("--matmul-kernel must be auto, blas or onednn, got '" + name + "'");
}

const char* matmul_backend_name(MatmulBackend backend) {
  return backend == MatmulBackend::Onednn ? "onednn" : "blas";
}

MatmulBackend matmul_backend() {
  const int value = chosen.load(std::memory_order_relaxed);
  return value == kUnset ? auto_matmul_backend() : static_cast<MatmulBackend>(value);
}

void set_matmul_backend(MatmulBackend backend) {
  if (backend == MatmulBackend::Onednn && !onednn_available())
    throw Error("set_matmul_backend: this build has no oneDNN");
  chosen.store(static_cast<int>(backend), std::memory_order_relaxed);
}

}  // namespace tessera::kernels
