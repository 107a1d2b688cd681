#include <gtest/gtest.h>

#include "tessera/metrics/measurement_scope.h"
#include "tessera/metrics/memory_tracker.h"
#include "tessera/train/chunked_adam.h"

using namespace tessera;

namespace {

// Parameters larger than a chunk, one not a multiple of it, and a non-contiguous one.
std::vector<torch::Tensor> make_parameters() {
  torch::manual_seed(1);
  std::vector<torch::Tensor> params = {torch::randn({700, 300}), torch::randn({513}),
                                       torch::randn({40, 60}).t()};
  for (auto& p : params) p.set_requires_grad(true);
  return params;
}

template <typename Reference, typename Chunked, typename Options>
void expect_same_steps(const Options& options) {
  auto a = make_parameters();
  auto b = make_parameters();
  Reference reference(a, options);
  Chunked chunked(b, options);
  for (int step = 0; step < 4; ++step) {
    for (size_t i = 0; i < a.size(); ++i) {
      const torch::Tensor grad = torch::randn_like(a[i]);
      a[i].mutable_grad() = grad.clone();
      b[i].mutable_grad() = grad.clone();
    }
    reference.step();
    chunked.step();
  }
  for (size_t i = 0; i < a.size(); ++i)
    EXPECT_TRUE(torch::allclose(a[i], b[i], 0, 1e-7))
        << "parameter " << i << " differs by " << (a[i] - b[i]).abs().max().item<double>();
}

}  // namespace

TEST(ChunkedAdam, StepsLikeLibtorchsAdamAndAdamW) {
  expect_same_steps<torch::optim::Adam, train::ChunkedAdam>(torch::optim::AdamOptions(1e-2));
  expect_same_steps<torch::optim::Adam, train::ChunkedAdam>(
      torch::optim::AdamOptions(1e-2).weight_decay(0.1).amsgrad(true));
  expect_same_steps<torch::optim::AdamW, train::ChunkedAdamW>(
      torch::optim::AdamWOptions(1e-2).weight_decay(0.05));
}

TEST(ChunkedAdam, StepNeedsNoFullSizeTemporaries) {
  metrics::install_memory_tracker();
  auto step_overhead = [](auto& optimizer, std::vector<torch::Tensor>& params) {
    for (auto& p : params) p.mutable_grad() = torch::ones_like(p);
    optimizer.step();  // allocates the state
    const int64_t live = metrics::live_tensor_bytes();
    const metrics::MeasurementScope measured;
    optimizer.step();
    return measured.peak_tensor_bytes() - live;
  };
  auto a = make_parameters();
  auto b = make_parameters();
  torch::optim::Adam reference(a, torch::optim::AdamOptions(1e-3));
  train::ChunkedAdam chunked(b, torch::optim::AdamOptions(1e-3));
  const int64_t largest = 700 * 300 * 4;
  EXPECT_GE(step_overhead(reference, a), 2 * largest);  // sqrt(v) and sqrt(v) / sqrt(bc2)
  EXPECT_LE(step_overhead(chunked, b), 2 * train::kChunkElements * 4 + 1024);  // + scalars
}
