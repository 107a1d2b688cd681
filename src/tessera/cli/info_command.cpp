// `tessera info`: what this build and machine offer.
#include <link.h>

#include <cstdio>
#include <filesystem>
#include <sstream>
#include <thread>

#include <torch/version.h>

#include "tessera/cli/commands.h"
#include "tessera/cli/options.h"
#include "tessera/kernels/bf16_kernel.h"
#include "tessera/kernels/matmul_backend.h"
#include "tessera/train/fused_kernels.h"
#include "tessera/train/precision.h"

namespace tessera::cli {
namespace {

// The BLAS line of libtorch's build configuration, e.g. "BLAS_INFO=open".
std::string blas_info() {
  std::istringstream config(at::show_config());
  std::string line;
  std::string found;
  while (std::getline(config, line)) {
    for (const char* key : {"BLAS_INFO=", "LAPACK_INFO="}) {
      const auto at = line.find(key);
      if (at == std::string::npos) continue;
      std::string item = line.substr(at);
      item = item.substr(0, item.find(','));
      found += (found.empty() ? "" : " ") + item;
    }
  }
  return found.empty() ? "unknown" : found;
}

// The BLAS libraries actually loaded. Debian's libtorch is built against the generic libblas.so.3,
// which the alternatives system points at OpenBLAS (or the slow reference BLAS): the file behind it
// tells which one runs.
std::string loaded_blas() {
  std::string found;
  dl_iterate_phdr(
      [](dl_phdr_info* info, size_t, void* data) {
        const std::string name = info->dlpi_name ? info->dlpi_name : "";
        if (name.find("blas") == std::string::npos) return 0;
        std::error_code error;
        const auto real = std::filesystem::canonical(name, error);
        auto* out = static_cast<std::string*>(data);
        *out += (out->empty() ? "" : ", ") + (error ? name : real.string());
        return 0;
      },
      &found);
  return found.empty() ? "none loaded" : found;
}

}  // namespace

int info_command(const Args& args) {
  int64_t threads = 0;
  auto app = make_app("Show version, libtorch, threads, BLAS and devices.", "tessera info");
  app->add_option("--threads", threads, "intra-op threads to report (0: default)");
  if (!parse(*app, args)) return 0;
  threads = configure_threads(threads);
  std::printf("tessera   %s\n", TESSERA_VERSION);
  std::printf("libtorch  %s\n", TORCH_VERSION);
  std::printf("threads   %lld intra-op (%u hardware threads)\n", static_cast<long long>(threads),
              std::thread::hardware_concurrency());
  std::printf("BLAS      %s (libtorch built with %s)\n", loaded_blas().c_str(),
              blas_info().c_str());
  std::printf("bf16      %s\n", train::cpu_has_native_bf16()
                                    ? "native on this CPU (--precision bf16 available)"
                                    : "not native on this CPU (--precision bf16 refused on cpu)");
  const kernels::MatmulBackend fp32 = kernels::matmul_backend();
  const bool bf16_native = kernels::bf16_kernel() == kernels::Bf16Kernel::Native;
  std::printf(
      "matmul    linear layers and attention: fp32 on %s (--matmul-kernel auto: %s); bf16 %s "
      "(--bf16-kernel auto: %s)%s\n",
      fp32 == kernels::MatmulBackend::Onednn ? "oneDNN" : "BLAS (above)",
      !kernels::onednn_available()             ? "this build has no oneDNN"
      : fp32 == kernels::MatmulBackend::Onednn ? "the CPU has AVX-512"
                                               : "the CPU has no AVX-512",
      bf16_native ? "on oneDNN's bf16 kernels"
                  : "on the fp32 kernel (bf16-rounded operands; convolutions too)",
      bf16_native ? "the CPU has AMX" : "the CPU has no AMX",
      torch::cuda::is_available() ? ", cuBLAS on cuda" : "");
  std::printf("optimizer one-pass SGD/Adam/AdamW loops with %s\n", train::fused_kernel_isa());
  std::printf("devices   cpu");
  if (torch::cuda::is_available())
    std::printf(", cuda x%d", static_cast<int>(torch::cuda::device_count()));
  std::printf("\ncuda      %s\n", torch::cuda::is_available() ? "available" : "not available");
  return 0;
}

}  // namespace tessera::cli
