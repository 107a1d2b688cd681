// The most common unit group, for families defined outside tessera: the hidden neurons between
// two linear layers (torch::nn::Linear modules named `producer` and `consumer`, full-model names
// such as "stage1.fc1" and "stage1.fc2").
#pragma once

#include <cstdint>
#include <string>

#include "tessera/models/architecture.h"

namespace tessera::models {

// Neuron i owns row i of <producer>.weight, entry i of <producer>.bias and column i of
// <consumer>.weight (which carries its output: SDP's rescaling acts there).
UnitGroup hidden_neurons(const std::string& name, int64_t stage, int64_t size,
                         const std::string& producer, const std::string& consumer);

}  // namespace tessera::models
