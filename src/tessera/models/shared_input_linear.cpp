#include "tessera/models/shared_input_linear.h"

#include "tessera/core/error.h"
#include "tessera/kernels/linear.h"

namespace tessera::models {

std::vector<torch::Tensor> linear_on_shared_input(const torch::Tensor& input,
                                                  const std::vector<torch::nn::Linear>& layers) {
  require(!layers.empty(), "linear_on_shared_input: no layers");
  if (layers.size() == 1)
    return {kernels::linear(input, layers.front()->weight, layers.front()->bias)};
  std::vector<torch::Tensor> weights, biases;
  std::vector<int64_t> widths;
  for (const auto& layer : layers) {
    require(layer->weight.size(1) == layers.front()->weight.size(1),
            "linear_on_shared_input: the layers take inputs of different widths");
    weights.push_back(layer->weight);
    widths.push_back(layer->weight.size(0));
    if (layer->bias.defined()) biases.push_back(layer->bias);
  }
  require(biases.empty() || biases.size() == layers.size(),
          "linear_on_shared_input: some layers have a bias and some do not");
  const torch::Tensor output = kernels::linear(
      input, torch::cat(weights), biases.empty() ? torch::Tensor() : torch::cat(biases));
  return output.split_with_sizes(widths, -1);
}

}  // namespace tessera::models
