#include "tessera/models/neuron_group.h"

namespace tessera::models {

UnitGroup hidden_neurons(const std::string& name, int64_t stage, int64_t size,
                         const std::string& producer, const std::string& consumer) {
  return {name,
          UnitKind::Neuron,
          stage,
          size,
          {{producer + ".weight", 0}, {producer + ".bias", 0}, {consumer + ".weight", 1, 1, true}}};
}

}  // namespace tessera::models
