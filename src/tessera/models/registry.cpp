// Name -> architecture lookup over the families of families.h and those registered from outside.
#include <memory>
#include <mutex>

#include "tessera/core/error.h"
#include "tessera/models/architecture.h"
#include "tessera/models/families.h"

namespace tessera::models {
namespace {
// The built-in families first, then the registered ones, in order. Families are never removed, so
// a returned reference stays valid; the mutex guards the list against concurrent registration.
struct Registry {
  std::mutex mutex;
  std::vector<std::unique_ptr<Architecture>> families;
};

Registry& registry() {
  static Registry* instance = [] {
    auto* r = new Registry();  // never destroyed: lookups may run during static destruction
    r->families.push_back(make_mlp_architecture());
    r->families.push_back(make_resnet_architecture());
    r->families.push_back(make_wrn_architecture());
    r->families.push_back(make_vit_architecture());
    r->families.push_back(make_llama_architecture());
    return r;
  }();
  return *instance;
}

std::vector<std::string> names_locked(const Registry& r) {
  std::vector<std::string> names;
  for (const auto& family : r.families) names.push_back(family->name());
  return names;
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
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  return names_locked(r);
}

const Architecture& architecture(const std::string& name) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  for (const auto& family : r.families)
    if (family->name() == name) return *family;
  std::string known;
  for (const auto& n : names_locked(r)) known += (known.empty() ? "" : ", ") + n;
  throw UsageError("unknown model architecture '" + name + "' (known: " + known + ")");
}

void register_architecture(std::unique_ptr<Architecture> family) {
  require(family != nullptr, "register_architecture: no architecture given");
  const std::string name = family->name();
  require(!name.empty(), "register_architecture: the architecture's name() is empty");
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  for (const auto& known : r.families)
    require(known->name() != name,
            "register_architecture: an architecture named '" + name + "' is already known");
  r.families.push_back(std::move(family));
}

}  // namespace tessera::models
