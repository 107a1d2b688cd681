// The structure of a model family, separate from any tensors: where the network can be cut
// (stages, for PNN), which parts can be left out (unit groups, for SDP), the shapes between stages
// and the analytic cost of each stage. One implementation per family (mlp.cpp, resnet.cpp, ...).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "tessera/core/shape.h"
#include "tessera/models/model_config.h"

namespace tessera::models {

// One stage of a network: a module from one tensor to one tensor. (Not torch::nn::AnyModule: its
// forward builds an error-message string with a demangled type name on every call.)
class Stage : public torch::nn::Module {
 public:
  virtual torch::Tensor forward(torch::Tensor x) = 0;
};
using StagePtr = std::shared_ptr<Stage>;

enum class UnitKind { Branch, Neuron, Channel, Head };
const char* to_string(UnitKind kind);

// The part of one parameter or buffer owned by a unit group. Along `dim`, unit u owns the entries
// [u * stride, (u + 1) * stride). dim == -1: the whole tensor belongs to the group (a branch).
struct TensorSlice {
  std::string name;  // full-model name, e.g. "stage2.fc.weight"
  int64_t dim = -1;
  int64_t stride = 1;
  // Multiplying these entries by s multiplies the units' contribution to the rest of the network
  // by s: the next layer's input columns of a neuron/channel/head, or the last affine map of a
  // branch. SDP's rescaling (like dropout's weight scaling at test time) acts on these.
  bool scales_output = false;
};

// A set of interchangeable units that a subnetwork may hold or leave out: one residual branch
// (size 1), or the neurons / channels / attention heads of one layer (size = their number).
// A parameter may appear in two groups along different dims (a hidden layer's weight has its own
// output neurons on dim 0 and the previous layer's neurons on dim 1).
struct UnitGroup {
  std::string name;  // unique within the model, used as the key of Subnet
  UnitKind kind = UnitKind::Neuron;
  int64_t stage = 0;  // the stage that contains the group
  int64_t size = 1;   // number of units
  std::vector<TensorSlice> slices;
};

class Architecture {
 public:
  virtual ~Architecture() = default;

  virtual std::string name() const = 0;

  // Fills in this family's defaults (depth 0, width 0) and validates every field, throwing
  // UsageError with the field name on an impossible value (including an invalid subnet). The
  // default only validates config.subnet against unit_groups: a family with defaults or fields of
  // its own overrides it (and may end with `return Architecture::resolve(config);`).
  virtual ModelConfig resolve(ModelConfig config) const;

  // The following take a resolved config.

  virtual int64_t num_stages(const ModelConfig& config) const = 0;

  // Short human-readable description of a stage, e.g. "fc 1024->1024 relu" or "block 2.1 128ch".
  // The default: "stage <index>".
  virtual std::string stage_name(const ModelConfig& config, int64_t stage) const;

  // Shape of one sample entering stage `boundary`; boundary == num_stages gives the logits' shape.
  virtual Shape boundary_shape(const ModelConfig& config, int64_t boundary) const = 0;

  // A freshly initialised stage (honouring config.subnet). Its parameters are named relative to
  // the stage; StagedModel registers it as "stage<index>".
  virtual StagePtr build_stage(const ModelConfig& config, int64_t stage) const = 0;

  // Maskable units of the full model (config.subnet is ignored).
  virtual std::vector<UnitGroup> unit_groups(const ModelConfig& config) const = 0;

  // Multiply-add based FLOPs of one sample's forward pass through the stage (honouring subnet).
  virtual int64_t stage_forward_flops(const ModelConfig& config, int64_t stage) const = 0;

  // Connects built stages [begin, begin + stages.size()) that share a parameter (llama's tied
  // embeddings). The default accepts no sharing: UsageError when config.tie_embeddings is set.
  virtual void link_stages(const ModelConfig& config, int64_t begin,
                           const std::vector<StagePtr>& stages) const;
};

// The family named by `config.arch`; throws UsageError listing the known names otherwise.
const Architecture& architecture(const std::string& name);
std::vector<std::string> architecture_names();

// Makes a family defined outside tessera known by its name(), next to the built-in ones (mlp,
// resnet, wrn, vit, llama): build_model, the Trainer, PNN and SDP then take a ModelConfig whose
// `arch` is that name. Call it once, before the first use (e.g. at the start of main); lookups and
// registrations may come from several threads. Throws UsageError for an empty name or one already
// known. Contract for the family: stages named "stage<i>" are built by build_stage; unit groups
// and their slices use the full model's parameter names; build_stage and stage_forward_flops
// honour config.subnet (held_units in subnet.h) so that SDP's forward masking can build
// subnetworks; resolve validates the subnet (validate_subnet).
void register_architecture(std::unique_ptr<Architecture> family);

}  // namespace tessera::models
