#include "tessera/models/activation.h"

#include "tessera/core/error.h"

namespace tessera::models {

void check_activation(const std::string& name) {
  require(name == "relu" || name == "gelu" || name == "tanh",
          "unknown activation '" + name + "' (known: relu, gelu, tanh)");
}

torch::Tensor activate(const std::string& name, const torch::Tensor& x) {
  if (name == "relu") return torch::relu(x);
  if (name == "gelu") return torch::gelu(x);
  return torch::tanh(x);
}

}  // namespace tessera::models
