// The model families. Each defines its factory in its own file (mlp.cpp, resnet.cpp, wrn.cpp,
// vit.cpp), and registry.cpp makes them known by name (models::architecture).
#pragma once

#include <memory>

#include "tessera/models/architecture.h"

namespace tessera::models {

std::unique_ptr<Architecture> make_mlp_architecture();
std::unique_ptr<Architecture> make_resnet_architecture();
std::unique_ptr<Architecture> make_wrn_architecture();
std::unique_ptr<Architecture> make_vit_architecture();
std::unique_ptr<Architecture> make_llama_architecture();

}  // namespace tessera::models
