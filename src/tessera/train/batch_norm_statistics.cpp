#include "tessera/train/batch_norm_statistics.h"

#include <type_traits>
#include <vector>

#include "tessera/data/batches.h"
#include "tessera/models/regularizers.h"

namespace tessera::train {

int64_t recompute_batch_norm_statistics(models::StagedModel& model, const data::Dataset& dataset,
                                        int64_t batches, int64_t batch_size, uint64_t seed,
                                        const torch::Device& device) {
  std::vector<torch::nn::BatchNorm2dImpl*> norms;
  for (const auto& module : model->modules())
    if (auto* bn = dynamic_cast<torch::nn::BatchNorm2dImpl*>(module.get())) norms.push_back(bn);
  if (norms.empty() || batches <= 0) return 0;
  // c10::optional in libtorch 1.x, std::optional in 2.x.
  using Momentum = std::decay_t<decltype(norms[0]->options.momentum())>;
  std::vector<Momentum> momenta;
  for (auto* bn : norms) {
    momenta.push_back(bn->options.momentum());
    bn->options.momentum(Momentum{});  // cumulative average over the batches below
    bn->reset_running_stats();
  }
  torch::NoGradGuard no_grad;
  model->train();
  // The statistics are for the network as it runs at test time: dropout and drop-path off.
  for (const auto& module : model->modules())
    if (auto* layer = dynamic_cast<models::StochasticLayer*>(module.get())) layer->eval();
  data::BatchOptions options;
  options.batch_size = batch_size;
  options.seed = seed;
  data::BatchIterator iterator(dataset, options);
  iterator.start_epoch(0);
  data::Batch batch;
  int64_t samples = 0;
  for (int64_t b = 0; b < batches && iterator.next(batch); ++b) {
    samples += batch.labels.size(0);
    model->forward(batch.inputs.to(device));
  }
  for (size_t i = 0; i < norms.size(); ++i) norms[i]->options.momentum(momenta[i]);
  model->eval();
  return samples;
}

}  // namespace tessera::train
