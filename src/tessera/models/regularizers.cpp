#include "tessera/models/regularizers.h"

#include <algorithm>
#include <sstream>
#include <vector>

#include "tessera/core/error.h"
#include "tessera/core/seeding.h"

namespace tessera::models {
namespace {

// FNV-1a: a stable hash of a layer's name (std::hash may differ between standard libraries).
uint64_t name_hash(const std::string& name) {
  uint64_t hash = 14695981039346656037ull;
  for (const unsigned char c : name) hash = (hash ^ c) * 1099511628211ull;
  return hash;
}

std::string format_number(double value) {
  std::ostringstream text;
  text << value;
  return text.str();
}

void check_probability(const char* flag, double p) {
  // Written so that NaN fails too.
  require(p >= 0.0 && p < 1.0, std::string(flag) + " must be in [0, 1), got " + format_number(p));
}

}  // namespace

StochasticLayer::StochasticLayer(double p) : p_(p), generator_(make_generator(0)) {
  check_probability("drop probability", p);
}

void StochasticLayer::reseed(uint64_t seed) {
  seed_ = seed;
  generator_ = make_generator(seed);
  device_generator_ = at::Generator();
}

at::Generator& StochasticLayer::generator_for(const torch::Device& device) {
  if (device.is_cpu()) return generator_;
  if (!device_generator_.defined() || device_generator_.device() != device) {
    // A private generator of the device's own kind (CUDA's Philox), cloned from the default one
    // so that no device-specific header is needed, and seeded like the CPU one.
    at::Generator global = at::globalContext().defaultGenerator(device);
    std::lock_guard<std::mutex> lock(global.mutex());
    device_generator_ = global.clone();
    device_generator_.set_current_seed(seed_);
  }
  return device_generator_;
}

torch::Tensor StochasticLayer::apply_mask(const torch::Tensor& x, at::IntArrayRef mask_shape) {
  if (!is_training() || p_ == 0.0) return x;
  const double keep = 1.0 - p_;
  at::Generator& generator = generator_for(x.device());
  torch::Tensor mask = torch::empty(mask_shape, x.options()).bernoulli_(keep, generator);
  return x * mask.div_(keep);
}

torch::Tensor DropoutImpl::forward(const torch::Tensor& x) {
  if (!channelwise_) return apply_mask(x, x.sizes());
  std::vector<int64_t> shape(static_cast<size_t>(x.dim()), 1);
  shape[0] = x.size(0);
  shape[1] = x.size(1);
  return apply_mask(x, shape);
}

torch::Tensor DropPathImpl::forward(const torch::Tensor& x) {
  std::vector<int64_t> shape(static_cast<size_t>(x.dim()), 1);
  shape[0] = x.size(0);
  return apply_mask(x, shape);
}

std::vector<uint8_t> StochasticLayer::generator_state() const {
  const torch::Tensor state = generator_.get_state().contiguous();
  const auto* bytes = state.data_ptr<uint8_t>();
  return std::vector<uint8_t>(bytes, bytes + state.numel());
}

void StochasticLayer::set_generator_state(const std::vector<uint8_t>& state) {
  torch::Tensor bytes = torch::empty({static_cast<int64_t>(state.size())}, torch::kUInt8);
  std::copy(state.begin(), state.end(), bytes.data_ptr<uint8_t>());
  generator_.set_state(bytes);
  device_generator_ = at::Generator();
}

nlohmann::json stochastic_layer_states(const torch::nn::Module& model) {
  nlohmann::json states = nlohmann::json::object();
  for (const auto& item : model.named_modules("", /*include_self=*/false))
    if (auto* layer = dynamic_cast<StochasticLayer*>(item.value().get()))
      states[item.key()] = layer->generator_state();
  return states;
}

void restore_stochastic_layer_states(torch::nn::Module& model, const nlohmann::json& states) {
  for (const auto& item : model.named_modules("", /*include_self=*/false))
    if (auto* layer = dynamic_cast<StochasticLayer*>(item.value().get())) {
      require(states.contains(item.key()),
              "checkpoint has no generator state for the stochastic layer '" + item.key() + "'");
      layer->set_generator_state(states.at(item.key()).get<std::vector<uint8_t>>());
    }
}

void seed_stochastic_layers(torch::nn::Module& model, uint64_t seed) {
  // Not include_self: that needs shared_from_this, which a module under construction lacks.
  for (const auto& item : model.named_modules("", /*include_self=*/false))
    if (auto* layer = dynamic_cast<StochasticLayer*>(item.value().get()))
      layer->reseed(mix_seed(seed, name_hash(item.key())));
}

uint64_t stochastic_layer_seed(uint64_t seed, int64_t rank, int64_t epoch) {
  return mix_seed(mix_seed(seed, static_cast<uint64_t>(rank)), static_cast<uint64_t>(epoch));
}

void check_regularizers(const ModelConfig& config, bool has_branches) {
  check_probability("--dropout", config.dropout);
  check_probability("--drop-path", config.drop_path);
  require(has_branches || config.drop_path == 0.0,
          "--drop-path: the " + config.arch +
              " model has no residual branches to drop (stochastic depth needs resnet, wrn or "
              "vit; use --dropout)");
}

std::string regularizer_summary(const ModelConfig& config) {
  std::string text;
  if (config.dropout > 0) text += ", dropout " + format_number(config.dropout);
  if (config.drop_path > 0) text += ", drop-path " + format_number(config.drop_path);
  return text;
}

}  // namespace tessera::models
