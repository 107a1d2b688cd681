// fp32 matrix products on oneDNN's matmul primitive, reading and writing plain strided memory, so
// that a tensor in libtorch's layout goes in and out without conversion. Plain C++ over float
// arrays (no libtorch): compiled alone, with oneDNN's headers, where the build has them.
#pragma once

#include <cstdint>

namespace tessera::kernels {

// Whether this build has the oneDNN path (CMake found libdnnl-dev; scripts/install-deps.sh
// installs it).
bool onednn_available();

// A strided array of 2 to kMaxRank dimensions in memory: element (i0, i1, ...) at data[i0 *
// strides[0] + i1 * strides[1] + ...]. The last two dimensions are the matrix; the ones before it
// index a batch of matrices. oneDNN reads it in place when one of the matrix's two strides is 1.
struct StridedView {
  static constexpr int kMaxRank = 6;
  const float* data = nullptr;
  int rank = 0;
  int64_t sizes[kMaxRank] = {};
  int64_t strides[kMaxRank] = {};
};

// c = a . b (+ bias[j] added to every row of every matrix) for a [..., M, K] and b [..., K, N] of
// the same rank and batch sizes, c a dense row-major [..., M, N]; bias has N elements or is null.
// Every (shape, strides) builds its primitive once per thread and reuses it. Throws
// std::invalid_argument for operands that do not fit, std::runtime_error in a build without oneDNN.
void onednn_matmul(const StridedView& a, const StridedView& b, const float* bias, float* c);

}  // namespace tessera::kernels
