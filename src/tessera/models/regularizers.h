// The model zoo's stochastic regularisers, the baselines SDP is compared with at the same keep
// rate: dropout on the units neuron-level SDP masks (`--dropout`) and stochastic depth on the
// residual branches block-level SDP masks (`--drop-path`). Each layer draws from its own
// generators (one per device kind), never the global ones, so a run depends only on its seed: the
// Trainer reseeds every layer at the start of each epoch (seed_stochastic_layers).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "tessera/models/model_config.h"

namespace tessera::models {

// A layer that draws random masks in training mode and is the identity in eval mode.
class StochasticLayer : public torch::nn::Module {
 public:
  // Drop probability p in [0, 1); kept values are scaled by 1 / (1 - p) (inverted dropout).
  explicit StochasticLayer(double p);
  void reseed(uint64_t seed);
  double p() const { return p_; }
  // The CPU generator's state (bytes), and setting it back: a run resumed mid-epoch draws the
  // masks the uninterrupted run would have.
  std::vector<uint8_t> generator_state() const;
  void set_generator_state(const std::vector<uint8_t>& state);

 protected:
  // x * mask, the mask of `mask_shape` holding 0 (dropped) or 1 / (1 - p) (kept), broadcast
  // over x. Drawn on x's device from this layer's generator for it (a GPU draws its own masks:
  // drawing them on the CPU and copying cost the default MLP two thirds of its CUDA throughput).
  torch::Tensor apply_mask(const torch::Tensor& x, at::IntArrayRef mask_shape);

 private:
  at::Generator& generator_for(const torch::Device& device);

  double p_;
  uint64_t seed_ = 0;
  at::Generator generator_;         // CPU
  at::Generator device_generator_;  // another device's, made on first use after each reseed
};

// Drops single values (shape-wise as x), or with `channelwise` whole channels of a
// [batch, channels, ...] tensor (dropout2d / feature dropout).
class DropoutImpl : public StochasticLayer {
 public:
  DropoutImpl(double p, bool channelwise) : StochasticLayer(p), channelwise_(channelwise) {}
  torch::Tensor forward(const torch::Tensor& x);

 private:
  bool channelwise_;
};
TORCH_MODULE(Dropout);

// Stochastic depth on a residual branch's output [batch, ...]: each sample's branch is dropped
// with probability p (timm's drop_path). The caller adds the skip path.
class DropPathImpl : public StochasticLayer {
 public:
  explicit DropPathImpl(double p) : StochasticLayer(p) {}
  torch::Tensor forward(const torch::Tensor& x);
};
TORCH_MODULE(DropPath);

// Reseeds every StochasticLayer inside `model` from `seed` and the layer's module name, so a
// layer draws the same masks whether it sits in the full model or in a partition of it.
void seed_stochastic_layers(torch::nn::Module& model, uint64_t seed);

// The seed of one worker's layers for one epoch: distinct per worker, so data-parallel workers
// draw independent masks, and per epoch, so a run resumed after epoch e draws what it would have.
uint64_t stochastic_layer_seed(uint64_t seed, int64_t rank, int64_t epoch);

// Every StochasticLayer's CPU generator state by module name (a JSON object; empty without such
// layers), and restoring it into a model of the same structure (UsageError if a layer is missing).
nlohmann::json stochastic_layer_states(const torch::nn::Module& model);
void restore_stochastic_layer_states(torch::nn::Module& model, const nlohmann::json& states);

// Throws UsageError unless config.dropout and config.drop_path are in [0, 1), and unless
// drop_path is 0 for an architecture without residual branches (`has_branches` false).
void check_regularizers(const ModelConfig& config, bool has_branches);

// ", dropout 0.5, drop-path 0.25" for the nonzero ones; empty when both are off.
std::string regularizer_summary(const ModelConfig& config);

}  // namespace tessera::models
