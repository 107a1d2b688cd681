#include "tessera/metrics/flops.h"

namespace tessera::metrics {

int64_t linear_flops(int64_t rows, int64_t in_features, int64_t out_features, bool bias) {
  return 2 * rows * in_features * out_features + (bias ? rows * out_features : 0);
}

int64_t conv2d_flops(int64_t in_channels, int64_t out_channels, int64_t kernel_h, int64_t kernel_w,
                     int64_t out_h, int64_t out_w, int64_t groups, bool bias) {
  const int64_t outputs = out_channels * out_h * out_w;
  const int64_t macs_per_output = (in_channels / groups) * kernel_h * kernel_w;
  return 2 * outputs * macs_per_output + (bias ? outputs : 0);
}

int64_t attention_flops(int64_t tokens, int64_t dim, int64_t heads) {
  const int64_t scores = heads * tokens * tokens;
  return 2 * tokens * tokens * dim + 5 * scores + 2 * tokens * tokens * dim;
}

int64_t norm_flops(int64_t elements) {
  return 5 * elements;
}

int64_t elementwise_flops(int64_t elements) {
  return elements;
}

}  // namespace tessera::metrics
