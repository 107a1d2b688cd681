#include "tessera/models/shared_input_linear.h"

#include <gtest/gtest.h>

#include <vector>

#include "tessera/core/error.h"
#include "tessera/kernels/linear.h"
#include "tessera/metrics/memory_tracker.h"
#include "tessera/train/autocast_scope.h"

namespace tessera::models {
namespace shared_input_linear_test {

std::vector<torch::nn::Linear> three_layers(bool bias) {
  torch::manual_seed(3);
  return {torch::nn::Linear(torch::nn::LinearOptions(32, 24).bias(bias)),
          torch::nn::Linear(torch::nn::LinearOptions(32, 16).bias(bias)),
          torch::nn::Linear(torch::nn::LinearOptions(32, 24).bias(bias))};
}

TEST(SharedInputLinearTest, OutputsAndGradientsEqualTheSeparateLayers) {
  for (const bool bias : {false, true}) {
    auto layers = three_layers(bias);
    const torch::Tensor input = torch::randn({4, 7, 32});
    auto run = [&](bool shared) {
      for (auto& layer : layers) layer->zero_grad();
      torch::Tensor x = input.clone().requires_grad_();
      std::vector<torch::Tensor> outputs;
      if (shared) {
        outputs = linear_on_shared_input(x, layers);
      } else {
        for (auto& layer : layers) outputs.push_back(kernels::linear(x, layer));
      }
      torch::Tensor loss = torch::zeros({});
      for (size_t i = 0; i < outputs.size(); ++i)
        loss = loss + (outputs[i] * static_cast<double>(i + 1)).sin().sum();
      loss.backward();
      std::vector<torch::Tensor> results = outputs;
      results.push_back(x.grad());
      for (const auto& parameter : layers[1]->parameters()) results.push_back(parameter.grad());
      for (auto& result : results) result = result.detach().clone();
      return results;
    };
    const auto shared = run(true);
    const auto separate = run(false);
    ASSERT_EQ(shared.size(), separate.size());
    for (size_t i = 0; i < shared.size(); ++i) {
      EXPECT_EQ(shared[i].sizes(), separate[i].sizes()) << i;
      EXPECT_TRUE(torch::allclose(shared[i], separate[i], 1e-5, 1e-6)) << "result " << i;
    }
  }
}

// Under bf16 autocast the graph keeps one bf16 copy of the input (and of the stacked weights);
// three separate layers keep three copies of the input.
TEST(SharedInputLinearTest, KeepsOneReducedPrecisionCopyOfTheInputUnderAutocast) {
  metrics::install_memory_tracker();
  auto layers = three_layers(false);
  // Not a leaf, as in a model (autocast caches its casts of leaves that require grad: weights).
  const torch::Tensor leaf = torch::randn({1024, 32}).requires_grad_();
  const torch::Tensor x = leaf * 1.0;
  const int64_t bf16_input = x.numel() * 2;
  const int64_t bf16_weights = (24 + 16 + 24) * 32 * 2;
  auto retained = [&](bool shared) {
    train::AutocastScope autocast(train::Precision::Bf16, torch::kCPU);
    const int64_t before = metrics::live_tensor_bytes();
    std::vector<torch::Tensor> outputs;
    if (shared) {
      outputs = linear_on_shared_input(x, layers);
    } else {
      for (auto& layer : layers) outputs.push_back(layer(x));
    }
    int64_t output_bytes = 0;
    for (const auto& output : outputs) output_bytes += metrics::tensor_bytes(output);
    return metrics::live_tensor_bytes() - before - output_bytes;
  };
  EXPECT_LE(retained(true), bf16_input + bf16_weights + 1024);
  EXPECT_GE(retained(false), 3 * bf16_input);
}

TEST(SharedInputLinearTest, RefusesLayersThatDoNotShareAnInput) {
  const std::vector<torch::nn::Linear> widths = {torch::nn::Linear(8, 4), torch::nn::Linear(6, 4)};
  EXPECT_THROW(linear_on_shared_input(torch::randn({2, 8}), widths), Error);
  const std::vector<torch::nn::Linear> biases = {
      torch::nn::Linear(8, 4), torch::nn::Linear(torch::nn::LinearOptions(8, 4).bias(false))};
  EXPECT_THROW(linear_on_shared_input(torch::randn({2, 8}), biases), Error);
}

}  // namespace shared_input_linear_test
}  // namespace tessera::models
