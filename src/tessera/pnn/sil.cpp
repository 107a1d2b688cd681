#include "tessera/pnn/sil.h"

#include <algorithm>
#include <cmath>

#include "tessera/core/error.h"
#include "tessera/core/seeding.h"

namespace tessera::pnn {

std::vector<std::string> sil_generator_names() {
  return {"uniform", "gaussian", "orthogonal"};
}

void validate(const SilConfig& config) {
  const auto names = sil_generator_names();
  require(std::find(names.begin(), names.end(), config.generator) != names.end(),
          "unknown --sil '" + config.generator + "' (known: uniform, gaussian, orthogonal)");
  require(config.kappa > 0, "--sil-kappa must be positive");
}

namespace {

// [classes, features] rows with orthonormal rows: Q of a Gaussian matrix's QR decomposition.
torch::Tensor orthonormal_rows(int64_t classes, int64_t features, at::Generator& generator) {
  require(classes <= features, "--sil orthogonal needs at most as many classes (" +
                                   std::to_string(classes) + ") as activations at the cut (" +
                                   std::to_string(features) + ")");
  // float64 keeps the rows orthonormal to ~1e-15 before the cast.
  const torch::Tensor gaussian =
      at::normal(0.0, 1.0, {features, classes}, generator, torch::TensorOptions(torch::kFloat64));
  const auto [q, r] = at::linalg_qr(gaussian, "reduced");
  // Fix the signs (QR's are arbitrary up to the sign of each column): positive diagonal of R.
  const torch::Tensor signs = 1.0 - 2.0 * (r.diagonal() < 0).to(torch::kFloat64);
  return (q * signs).t().contiguous();
}

}  // namespace

torch::Tensor make_sil(const SilConfig& config, int64_t num_classes, const Shape& activation_shape,
                       int64_t cut) {
  validate(config);
  require(num_classes >= 1, "SIL needs at least one class");
  require(!activation_shape.empty(), "SIL needs the activation shape at the cut");
  at::Generator generator = make_generator(mix_seed(config.seed, static_cast<uint64_t>(cut)));
  const int64_t features = numel(activation_shape);
  torch::Tensor rows;
  if (config.generator == "uniform") {
    rows = torch::rand({num_classes, features}, generator);
  } else if (config.generator == "gaussian") {
    rows = torch::randn({num_classes, features}, generator);
  } else {
    // Entries of an orthonormal row have RMS 1/sqrt(features); scale them to RMS 1.
    rows = (orthonormal_rows(num_classes, features, generator) *
            std::sqrt(static_cast<double>(features)))
               .to(torch::kFloat32);
  }
  return (rows * config.kappa).reshape(with_batch(num_classes, activation_shape)).contiguous();
}

}  // namespace tessera::pnn
