// Name -> architecture lookup over the families of families.h.
#include <memory>

#include "tessera/core/error.h"
#include "tessera/models/architecture.h"
#include "tessera/models/families.h"

namespace tessera::models {
namespace {
const std::vector<std::unique_ptr<Architecture>>& registry() {
  static const auto* families = [] {
    auto* list = new std::vector<std::unique_ptr<Architecture>>();
    list->push_back(make_mlp_architecture());
    list->push_back(make_resnet_architecture());
    list->push_back(make_wrn_architecture());
    list->push_back(make_vit_architecture());
    list->push_back(make_llama_architecture());
    return list;
  }();
  return *families;
}
}  // namespace

const char* to_string(UnitKind kind) {
  switch (kind) {
    case UnitKind::Branch:
      return "branch";
    case UnitKind::Neuron:
      return "neuron";
    case UnitKind::Channel:
      return "channel";
    case UnitKind::Head:
      return "head";
  }
  return "?";
}

std::vector<std::string> architecture_names() {
  std::vector<std::string> names;
  for (const auto& family : registry()) names.push_back(family->name());
  return names;
}

const Architecture& architecture(const std::string& name) {
  for (const auto& family : registry())
    if (family->name() == name) return *family;
  std::string known;
  for (const auto& n : architecture_names()) known += (known.empty() ? "" : ", ") + n;
  throw UsageError("unknown model architecture '" + name + "' (known: " + known + ")");
}

}  // namespace tessera::models
