// The defaults of Architecture's overridable methods.
#include "tessera/models/architecture.h"

#include "tessera/core/error.h"
#include "tessera/models/subnet.h"

namespace tessera::models {

ModelConfig Architecture::resolve(ModelConfig config) const {
  validate_subnet(config.subnet, unit_groups(config));
  return config;
}

std::string Architecture::stage_name(const ModelConfig&, int64_t stage) const {
  return "stage " + std::to_string(stage);
}

void Architecture::link_stages(const ModelConfig& config, int64_t,
                               const std::vector<StagePtr>&) const {
  require(!config.tie_embeddings,
          "tied embeddings are llama's; the " + name() + " family has no embedding to tie");
}

}  // namespace tessera::models
