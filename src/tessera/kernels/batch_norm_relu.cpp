#include "tessera/kernels/batch_norm_relu.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "tessera/core/torch_compat.h"

namespace tessera::kernels {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

// One clone of each loop per instruction set, picked by the loader for this CPU.
#define TESSERA_VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))

// 16 floats as one GCC vector: a zmm register in the AVX-512 clone, two ymm in the AVX2 one.
// (Written as an array of 16 partial sums, GCC vectorises the loop across rows with shuffles.)
constexpr int kLanes = 16;
typedef float Lanes __attribute__((vector_size(kLanes * sizeof(float))));

// Sums of (x - shift) and of its squares over one channel: `rows` runs of `plane` values,
// `stride` apart. Shifting by a value of the channel keeps E[d^2] - E[d]^2 from cancelling when
// the mean is large against the spread; float lanes within a run, runs added in double.
TESSERA_VECTOR_CLONES void channel_sums(const float* x, int64_t rows, int64_t stride, int64_t plane,
                                        float shift, double* sum, double* squares) {
  double total = 0, total_squares = 0;
  for (int64_t n = 0; n < rows; ++n) {
    const float* run = x + n * stride;
    Lanes lanes = {}, lane_squares = {};
    int64_t i = 0;
    for (; i + kLanes <= plane; i += kLanes) {
      Lanes d;  // (no helper returning a Lanes: that would change the ABI of the default clone)
      std::memcpy(&d, run + i, sizeof d);
      d -= shift;
      lanes += d;
      lane_squares += d * d;
    }
    float tail = 0, tail_squares = 0;
    for (; i < plane; ++i) {
      const float d = run[i] - shift;
      tail += d;
      tail_squares += d * d;
    }
    for (int l = 0; l < kLanes; ++l) {
      total += lanes[l];
      total_squares += lane_squares[l];
    }
    total += tail;
    total_squares += tail_squares;
  }
  *sum = total;
  *squares = total_squares;
}

// relu(v) that keeps a NaN a NaN (for the non-finite checks downstream), as torch::relu does.
inline float relu(float v) {
  return v < 0.0f ? 0.0f : v;
}

// y = relu((x - mean) * scale + offset [+ r]) over one channel. Subtracting the mean first (not
// folding it into the offset) keeps a mean that is large against the spread from cancelling.
TESSERA_VECTOR_CLONES void normalize_relu(const float* x, const float* r, float* y, int64_t rows,
                                          int64_t stride, int64_t plane, float mean, float scale,
                                          float offset) {
  for (int64_t n = 0; n < rows; ++n) {
    const float* in = x + n * stride;
    const float* add = r != nullptr ? r + n * stride : nullptr;
    float* out = y + n * stride;
    int64_t i = 0;
    for (; i + kLanes <= plane; i += kLanes) {
      Lanes v, residual = {};
      std::memcpy(&v, in + i, sizeof v);
      if (add != nullptr) std::memcpy(&residual, add + i, sizeof residual);
      v = (v - mean) * scale + offset + residual;
      v = v < 0.0f ? Lanes{} : v;  // relu, NaN kept
      std::memcpy(out + i, &v, sizeof v);
    }
    for (; i < plane; ++i)
      out[i] = relu((in[i] - mean) * scale + offset + (add != nullptr ? add[i] : 0.0f));
  }
}

struct BatchNormRelu : torch::autograd::Function<BatchNormRelu> {
  // residual: compat::absent_tensor_argument() for none.
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& weight, const torch::Tensor& bias,
                               const torch::Tensor& residual, const torch::Tensor& running_mean,
                               const torch::Tensor& running_var, double momentum, double eps) {
    const int64_t batch = x.size(0), channels = x.size(1), plane = x.size(2) * x.size(3);
    const int64_t count = batch * plane;
    torch::Tensor y = torch::empty_like(x);
    torch::Tensor mean = torch::empty({channels}, x.options());
    torch::Tensor invstd = torch::empty({channels}, x.options());
    const float* in = x.data_ptr<float>();
    const float* add = residual.numel() > 0 ? residual.data_ptr<float>() : nullptr;
    float* out = y.data_ptr<float>();
    const float* gamma = weight.data_ptr<float>();
    const float* beta = bias.data_ptr<float>();
    float* batch_mean = mean.data_ptr<float>();
    float* batch_invstd = invstd.data_ptr<float>();
    float* average_mean = running_mean.data_ptr<float>();
    float* average_var = running_var.data_ptr<float>();
    at::parallel_for(0, channels, 1, [&](int64_t begin, int64_t end) {
      for (int64_t c = begin; c < end; ++c) {
        const int64_t first = c * plane;
        const float shift = in[first];
        double sum = 0, squares = 0;
        channel_sums(in + first, batch, channels * plane, plane, shift, &sum, &squares);
        const double shifted_mean = sum / count;
        const double var = std::max(0.0, squares / count - shifted_mean * shifted_mean);
        const double mu = shift + shifted_mean;
        const double inverse = 1.0 / std::sqrt(var + eps);
        const double scale = gamma[c] * inverse;
        normalize_relu(in + first, add ? add + first : nullptr, out + first, batch,
                       channels * plane, plane, static_cast<float>(mu), static_cast<float>(scale),
                       beta[c]);
        batch_mean[c] = static_cast<float>(mu);
        batch_invstd[c] = static_cast<float>(inverse);
        // The running variance averages the unbiased estimate, as libtorch's does.
        average_mean[c] = static_cast<float>((1 - momentum) * average_mean[c] + momentum * mu);
        average_var[c] =
            static_cast<float>((1 - momentum) * average_var[c] +
                               momentum * var * count / std::max<int64_t>(count - 1, 1));
      }
    });
    ctx->save_for_backward({x, weight, y, mean, invstd});
    ctx->saved_data["eps"] = eps;
    ctx->saved_data["has_residual"] = add != nullptr;
    return y;
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor dz = at::threshold_backward(grads[0], saved[2], 0);
    auto [dx, dweight, dbias] = at::native_batch_norm_backward(
        dz, saved[0], saved[1], torch::Tensor(), torch::Tensor(), saved[3], saved[4],
        /*train=*/true, ctx->saved_data["eps"].toDouble(),
        {ctx->needs_input_grad(0), ctx->needs_input_grad(1), ctx->needs_input_grad(2)});
    const bool residual = ctx->saved_data["has_residual"].toBool() && ctx->needs_input_grad(3);
    return {dx,
            dweight,
            dbias,
            residual ? dz : torch::Tensor(),
            torch::Tensor(),
            torch::Tensor(),
            torch::Tensor(),
            torch::Tensor()};
  }
};

bool fp32_cpu_contiguous(const torch::Tensor& t) {
  return t.device().is_cpu() && t.scalar_type() == torch::kFloat && t.is_contiguous();
}

}  // namespace

torch::Tensor batch_norm_relu(const torch::Tensor& x, const torch::nn::BatchNorm2d& bn,
                              const torch::Tensor& residual) {
  auto& module = *bn.ptr();
  const auto& o = module.options;
  const bool fused =
      module.is_training() && o.track_running_stats() && o.affine() && x.dim() == 4 &&
      fp32_cpu_contiguous(x) && x.size(0) * x.size(2) * x.size(3) > 1 &&
      x.size(1) == o.num_features() &&
      (!residual.defined() || (fp32_cpu_contiguous(residual) && residual.sizes() == x.sizes()));
  if (!fused) {
    const torch::Tensor normalized = module.forward(x);
    return torch::relu(residual.defined() ? normalized + residual : normalized);
  }
  // The batch count and the averaging factor, as BatchNorm2d's forward keeps them.
  double factor = o.momentum().value_or(0.0);
  {
    torch::NoGradGuard no_grad;
    module.num_batches_tracked.add_(1);
    if (!o.momentum().has_value()) factor = 1.0 / module.num_batches_tracked.item<double>();
  }
  return BatchNormRelu::apply(x, module.weight, module.bias,
                              residual.defined() ? residual : compat::absent_tensor_argument(),
                              module.running_mean, module.running_var, factor, o.eps());
}

}  // namespace tessera::kernels
