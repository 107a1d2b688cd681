#include "tessera/pnn/sil_space.h"

#include <algorithm>

#include "tessera/core/error.h"
#include "tessera/core/seeding.h"

namespace tessera::pnn {

std::vector<std::string> sil_space_names() {
  return {"full", "pooled", "projected"};
}

void validate(const SilSpaceConfig& config) {
  const auto names = sil_space_names();
  require(std::find(names.begin(), names.end(), config.kind) != names.end(),
          "unknown --sil-space '" + config.kind + "' (known: full, pooled, projected)");
  require(config.kind == "full" || config.size >= 1,
          "--sil-space " + config.kind + " needs --sil-space-size of at least 1");
  // A size without a reduced space would be silently ignored.
  require(config.kind != "full" || config.size == 0,
          "--sil-space-size needs --sil-space pooled or projected");
}

namespace {

// [rows, features] with orthonormal rows (Q of a Gaussian matrix's QR, signs fixed), float32.
torch::Tensor orthonormal_projection(int64_t rows, int64_t features, uint64_t seed) {
  at::Generator generator = make_generator(seed);
  // float64 keeps the rows orthonormal to ~1e-15 before the cast.
  const torch::Tensor gaussian =
      at::normal(0.0, 1.0, {features, rows}, generator, torch::TensorOptions(torch::kFloat64));
  const auto [q, r] = at::linalg_qr(gaussian, "reduced");
  const torch::Tensor signs = 1.0 - 2.0 * (r.diagonal() < 0).to(torch::kFloat64);
  return (q * signs).t().contiguous().to(torch::kFloat32);
}

}  // namespace

SilSpace::SilSpace(SilSpaceConfig config, Shape activation_shape, uint64_t seed)
    : config_(std::move(config)), activation_shape_(std::move(activation_shape)) {
  validate(config_);
  const int64_t features = numel(activation_shape_);
  if (config_.kind == "full") {
    reduced_shape_ = activation_shape_;
  } else if (config_.kind == "pooled") {
    require(activation_shape_.size() == 3,
            "--sil-space pooled needs a [channels, height, width] activation at the cut, not " +
                to_string(activation_shape_) + " (use projected)");
    const int64_t size = config_.size;
    require(activation_shape_[1] % size == 0 && activation_shape_[2] % size == 0,
            "--sil-space-size " + std::to_string(size) +
                " must divide the cut's height and width " + to_string(activation_shape_) +
                " (pooled: equal, non-overlapping cells)");
    reduced_shape_ = {activation_shape_[0], size, size};
  } else {
    require(config_.size <= features, "--sil-space-size " + std::to_string(config_.size) +
                                          " is more than the cut's " + std::to_string(features) +
                                          " activations " + to_string(activation_shape_) +
                                          " (projected)");
    reduced_shape_ = {config_.size};
    projection_ = orthonormal_projection(config_.size, features, seed);
  }
}

torch::Tensor SilSpace::reduce(const torch::Tensor& activations) const {
  const int64_t sample_dims = activations.dim() - static_cast<int64_t>(activation_shape_.size());
  require(sample_dims >= 1 && activations.sizes().slice(static_cast<size_t>(sample_dims)).vec() ==
                                  activation_shape_,
          "SilSpace::reduce: activations shaped " + to_string(activations.sizes().vec()) +
              " are not samples of " + to_string(activation_shape_));
  if (config_.kind == "full") return activations;
  std::vector<int64_t> out_shape(activations.sizes().begin(),
                                 activations.sizes().begin() + sample_dims);
  const torch::Tensor samples = activations.flatten(0, sample_dims - 1);
  torch::Tensor reduced;
  if (config_.kind == "pooled") {
    const int64_t cell_h = activation_shape_[1] / config_.size;
    const int64_t cell_w = activation_shape_[2] / config_.size;
    reduced = torch::avg_pool2d(samples, {cell_h, cell_w}, {cell_h, cell_w});
  } else {
    reduced = torch::matmul(samples.flatten(1), projection_.to(samples.device()).t());
  }
  out_shape.insert(out_shape.end(), reduced_shape_.begin(), reduced_shape_.end());
  return reduced.reshape(out_shape);
}

torch::Tensor SilSpace::lift(const torch::Tensor& rows) const {
  require(rows.dim() >= 1 && rows.sizes().slice(1).vec() == reduced_shape_,
          "SilSpace::lift: rows shaped " + to_string(rows.sizes().vec()) + " are not samples of " +
              to_string(reduced_shape_));
  if (config_.kind == "full") return rows;
  const int64_t n = rows.size(0);
  torch::Tensor lifted;
  if (config_.kind == "pooled") {
    // Pooling averages m entries per cell, so M M^T = I / m and M^+ = m M^T: repeat the value.
    const int64_t cell_h = activation_shape_[1] / config_.size;
    const int64_t cell_w = activation_shape_[2] / config_.size;
    lifted = rows.repeat_interleave(cell_h, 2).repeat_interleave(cell_w, 3);
  } else {
    // Orthonormal rows: P P^T = I, so P^+ = P^T.
    lifted = torch::matmul(rows, projection_.to(rows.device()));
  }
  return lifted.reshape(with_batch(n, activation_shape_)).contiguous();
}

}  // namespace tessera::pnn
