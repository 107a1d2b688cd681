// PLACEHOLDER: replaced by the real implementation.
#include <memory>
#include "tessera/models/architecture.h"
namespace tessera::models {
std::unique_ptr<Architecture> make_mlp_architecture();
std::unique_ptr<Architecture> make_vit_architecture() {
  return make_mlp_architecture();
}
}  // namespace tessera::models
