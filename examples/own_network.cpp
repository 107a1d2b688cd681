// A network tessera does not ship (a residual MLP), registered as an architecture and trained
// three ways through the library: conventionally, with PNN and with SDP on two workers.
// usage: own_network [TRAIN_SAMPLES [RUN_DIR]]   (Fashion-MNIST, as installed by install-deps)
#include <cstdio>
#include <string>

#include <tessera/tessera.h>

using namespace tessera;

// A stage: flatten, linear, optional ReLU (the first stage, and the last one that gives logits).
struct Dense : models::Stage {
  Dense(int64_t in, int64_t out, bool relu)
      : fc(register_module("fc", torch::nn::Linear(in, out))), relu(relu) {}
  torch::Tensor forward(torch::Tensor x) override {
    x = fc(x.flatten(1));
    return relu ? torch::relu(x) : x;
  }
  torch::nn::Linear fc;
  bool relu;
};

// A stage: residual block x + fc2(relu(fc1(x))); SDP may leave out some of its hidden neurons.
struct ResidualBlock : models::Stage {
  ResidualBlock(int64_t width, int64_t hidden)
      : fc1(register_module("fc1", torch::nn::Linear(width, hidden))),
        fc2(register_module("fc2", torch::nn::Linear(hidden, width))) {}
  torch::Tensor forward(torch::Tensor x) override { return x + fc2(torch::relu(fc1(x))); }
  torch::nn::Linear fc1, fc2;
};

// hidden = {width, block's hidden width}; depth = number of blocks. Stages: input, blocks, output.
class ResMlp : public models::Architecture {
 public:
  std::string name() const override { return "resmlp"; }
  models::ModelConfig resolve(models::ModelConfig c) const override {
    require(c.hidden.size() == 2 && c.depth > 0, "resmlp: needs hidden {width, block} and depth");
    return Architecture::resolve(c);  // checks SDP's subnet against unit_groups
  }
  int64_t num_stages(const models::ModelConfig& c) const override { return c.depth + 2; }
  Shape boundary_shape(const models::ModelConfig& c, int64_t b) const override {
    return b == 0 ? c.input_shape : Shape{b > c.depth + 1 ? c.num_classes : c.hidden[0]};
  }
  models::StagePtr build_stage(const models::ModelConfig& c, int64_t s) const override {
    if (s == 0) return std::make_shared<Dense>(numel(c.input_shape), c.hidden[0], true);
    if (s > c.depth) return std::make_shared<Dense>(c.hidden[0], c.num_classes, false);
    return std::make_shared<ResidualBlock>(c.hidden[0], held(c, s));
  }
  std::vector<models::UnitGroup> unit_groups(const models::ModelConfig& c) const override {
    std::vector<models::UnitGroup> groups;  // a hidden neuron: its fc1 row, its fc2 column
    for (int64_t s = 1; s <= c.depth; ++s) {
      const std::string p = "stage" + std::to_string(s) + ".";
      groups.push_back(models::hidden_neurons(p + "hidden", s, c.hidden[1], p + "fc1", p + "fc2"));
    }
    return groups;
  }
  int64_t stage_forward_flops(const models::ModelConfig& c, int64_t s) const override {
    if (s == 0) return numel(c.input_shape) * c.hidden[0];
    return s > c.depth ? c.hidden[0] * c.num_classes : 2 * c.hidden[0] * held(c, s);
  }

 private:
  static int64_t held(const models::ModelConfig& c, int64_t s) {  // honours the SDP subnet
    return models::held_units(c.subnet, "stage" + std::to_string(s) + ".hidden", c.hidden[1]);
  }
};

int main(int argc, char** argv) try {
  models::register_architecture(std::make_unique<ResMlp>());
  data::DataConfig fashion;  // Fashion-MNIST from /usr/share/datasets/fashion-mnist
  fashion.limit_train = argc > 1 ? std::stoll(argv[1]) : 10000;
  fashion.limit_test = fashion.limit_train / 4;
  const std::string runs = argc > 2 ? argv[2] : "runs/own_network";
  const data::TrainTest data = data::load_dataset(fashion);

  models::ModelConfig model;
  model.arch = "resmlp";
  model.hidden = {128, 256};
  model.depth = 2;
  train::TrainConfig settings;
  settings.epochs = 2;
  settings.batch_size = 64;

  const train::TrainSummary conventional =
      api::train_conventional(model, settings, data, runs + "/conventional");
  std::printf("conventional: test accuracy %.2f%%\n", 100 * conventional.test.accuracy);

  pnn::PnnConfig partitioned;  // two partitions, balanced by memory, synthetic labels between
  const pnn::PnnResult pnn_result =
      api::train_pnn(model, settings, partitioned, data, runs + "/pnn");
  std::printf("pnn: joined %.2f%%, after recovery %.2f%%\n", 100 * pnn_result.joined.accuracy,
              100 * pnn_result.recovered.accuracy);

  sdp::SdpSetup subnetworks;  // each of 2 workers trains half of every block's hidden neurons
  subnetworks.model = model;
  subnetworks.train = settings;
  subnetworks.level = sdp::Level::Neuron;
  subnetworks.coverage = 0.5;
  const dist::RunResult sdp_result = api::train_sdp(subnetworks, 2, data, runs + "/sdp");
  std::printf("sdp on 2 workers: test accuracy %.2f%%\n", 100 * sdp_result.summary.test.accuracy);
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "own_network: %s\n", e.what());
  return 1;
}
