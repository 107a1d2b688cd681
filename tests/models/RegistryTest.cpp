// Architectures registered from outside tessera: found by name next to the built-in families,
// built and trained like them, with the base class's defaults; bad registrations are refused.
#include <gtest/gtest.h>

#include <algorithm>

#include "tessera/core/error.h"
#include "tessera/models/architecture.h"
#include "tessera/models/neuron_group.h"
#include "tessera/models/staged_model.h"
#include "tessera/models/subnet.h"

namespace registry_test {

using tessera::models::Architecture;
using tessera::models::ModelConfig;
using tessera::models::StagePtr;

struct Scale : tessera::models::Stage {
  explicit Scale(int64_t width) : weight(register_parameter("weight", torch::full({width}, 2.0))) {}
  torch::Tensor forward(torch::Tensor x) override { return x.flatten(1) * weight; }
  torch::Tensor weight;
};

// Two stages that double their input elementwise; only the required methods are written.
class Doubler : public Architecture {
 public:
  explicit Doubler(std::string name) : name_(std::move(name)) {}
  std::string name() const override { return name_; }
  int64_t num_stages(const ModelConfig&) const override { return 2; }
  tessera::Shape boundary_shape(const ModelConfig& c, int64_t b) const override {
    return b == 0 ? c.input_shape : tessera::Shape{tessera::numel(c.input_shape)};
  }
  StagePtr build_stage(const ModelConfig& c, int64_t) const override {
    return std::make_shared<Scale>(tessera::numel(c.input_shape));
  }
  std::vector<tessera::models::UnitGroup> unit_groups(const ModelConfig&) const override {
    return {};
  }
  int64_t stage_forward_flops(const ModelConfig& c, int64_t) const override {
    return tessera::numel(c.input_shape);
  }

 private:
  std::string name_;
};

// Registers "doubler" once per process (a test binary run by hand runs every test in one).
void register_doubler() {
  static const bool registered = [] {
    tessera::models::register_architecture(std::make_unique<Doubler>("doubler"));
    return true;
  }();
  (void)registered;
}

TEST(Registry, ARegisteredArchitectureBuildsLikeABuiltInOne) {
  register_doubler();
  const auto names = tessera::models::architecture_names();
  EXPECT_EQ(names.front(), "mlp");  // built-ins stay, in their order
  EXPECT_NE(std::find(names.begin(), names.end(), "doubler"), names.end());
  ModelConfig config;
  config.arch = "doubler";
  config.input_shape = {3};
  tessera::models::StagedModel model = tessera::models::build_model(config);
  EXPECT_TRUE(model->is_full());
  EXPECT_TRUE(torch::equal(model->forward(torch::ones({1, 3})), torch::full({1, 3}, 4.0)));
  EXPECT_EQ(model->forward_flops(), 6);
  // The base class's defaults.
  EXPECT_EQ(tessera::models::architecture("doubler").stage_name(config, 1), "stage 1");
  // A partition of it has the full model's parameter names.
  EXPECT_EQ(tessera::models::build_model(config, 1, 2)->named_parameters().keys(),
            std::vector<std::string>{"stage1.weight"});
  config.subnet = {{"no.such.group", {0}}};
  EXPECT_THROW(tessera::models::build_model(config), tessera::UsageError);
}

TEST(Registry, RefusesDuplicateAndEmptyNamesAndListsTheRegisteredOnes) {
  register_doubler();
  EXPECT_THROW(tessera::models::register_architecture(std::make_unique<Doubler>("doubler")),
               tessera::UsageError);
  EXPECT_THROW(tessera::models::register_architecture(std::make_unique<Doubler>("mlp")),
               tessera::UsageError);
  EXPECT_THROW(tessera::models::register_architecture(std::make_unique<Doubler>("")),
               tessera::UsageError);
  EXPECT_THROW(tessera::models::register_architecture(nullptr), tessera::UsageError);
  try {
    tessera::models::architecture("tripler");
    ADD_FAILURE() << "found an architecture never registered";
  } catch (const tessera::UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("doubler"), std::string::npos) << e.what();
  }
}

TEST(Registry, HiddenNeuronsOwnTheirRowsAndTheNextLayersColumns) {
  const auto group = tessera::models::hidden_neurons("stage1.hidden", 1, 7, "stage1.a", "stage2.b");
  EXPECT_EQ(group.kind, tessera::models::UnitKind::Neuron);
  EXPECT_EQ(group.stage, 1);
  EXPECT_EQ(group.size, 7);
  ASSERT_EQ(group.slices.size(), 3u);
  EXPECT_EQ(group.slices[0].name, "stage1.a.weight");
  EXPECT_EQ(group.slices[0].dim, 0);
  EXPECT_EQ(group.slices[1].name, "stage1.a.bias");
  EXPECT_EQ(group.slices[2].name, "stage2.b.weight");
  EXPECT_EQ(group.slices[2].dim, 1);
  EXPECT_TRUE(group.slices[2].scales_output);
  EXPECT_FALSE(group.slices[0].scales_output);
}

}  // namespace registry_test
