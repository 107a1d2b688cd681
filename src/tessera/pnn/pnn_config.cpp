#include "tessera/pnn/pnn_config.h"

#include "tessera/core/error.h"
#include "tessera/pnn/partition_objective.h"

namespace tessera::pnn {

PnnSchedule parse_pnn_schedule(const std::string& name) {
  if (name == "sequential") return PnnSchedule::Sequential;
  if (name == "parallel") return PnnSchedule::Parallel;
  throw UsageError("unknown --pnn-schedule '" + name + "' (known: sequential, parallel)");
}

const char* schedule_name(PnnSchedule schedule) {
  return schedule == PnnSchedule::Sequential ? "sequential" : "parallel";
}

void validate(const PnnConfig& config) {
  require(!config.cuts.empty() || config.partitions >= 2, "--partitions must be at least 2");
  validate(config.sil);
  validate(config.sil_space);
  PartitionTargets targets;
  targets.loss = config.sil_loss;
  targets.input_noise = config.sil_noise;
  validate(targets);
  for (const int64_t e : config.partition_epochs)
    require(e >= 0, "--partition-epochs must be non-negative");
  for (const int64_t b : config.partition_batch_sizes)
    require(b >= 1, "--partition-batch-size must be at least 1");
  for (const double lr : config.partition_lrs) require(lr > 0, "--partition-lr must be positive");
  require(config.recovery_epochs >= 0, "--recovery-epochs must be non-negative");
  require(config.recovery_lr >= 0, "--recovery-lr must be non-negative (0: lr / 10)");
  require(config.bn_batches >= 0, "--pnn-bn-batches must be non-negative (0: off)");
  require(config.handover == "memory" || config.handover == "file" || config.handover == "auto",
          "unknown --handover '" + config.handover + "' (known: memory, file, auto)");
}

nlohmann::json to_json(const PnnConfig& c) {
  return {{"cuts", c.cuts},
          {"partitions", c.partitions},
          {"schedule", schedule_name(c.schedule)},
          {"sil", c.sil.generator},
          {"sil_kappa", c.sil.kappa},
          {"sil_seed", c.sil.seed},
          {"sil_space", c.sil_space.kind},
          {"sil_space_size", c.sil_space.size},
          {"sil_loss", c.sil_loss},
          {"sil_noise", c.sil_noise},
          {"partition_epochs", c.partition_epochs},
          {"partition_batch_sizes", c.partition_batch_sizes},
          {"partition_lrs", c.partition_lrs},
          {"recovery_epochs", c.recovery_epochs},
          {"recovery_lr", c.recovery_lr},
          {"bn_batches", c.bn_batches},
          {"handover", c.handover}};
}

namespace {
template <typename T>
T pick(const std::vector<T>& values, T common, int64_t index, int64_t count, const char* flag) {
  if (values.empty()) return common;
  require(static_cast<int64_t>(values.size()) == count,
          std::string(flag) + " needs one value per partition (" + std::to_string(count) +
              "), got " + std::to_string(values.size()));
  return values[static_cast<size_t>(index)];
}
}  // namespace

train::TrainConfig partition_train_config(const PnnConfig& config, const train::TrainConfig& common,
                                          int64_t index, int64_t count) {
  train::TrainConfig train = common;
  train.epochs = pick(config.partition_epochs, common.epochs, index, count, "--partition-epochs");
  train.batch_size =
      pick(config.partition_batch_sizes, common.batch_size, index, count, "--partition-batch-size");
  train.optimizer.lr =
      pick(config.partition_lrs, common.optimizer.lr, index, count, "--partition-lr");
  // Crops and flips are for images: a later partition's inputs are activations or SIL rows.
  if (index > 0) train.augmentation = {};
  return train;
}

train::TrainConfig recovery_train_config(const PnnConfig& config,
                                         const train::TrainConfig& common) {
  train::TrainConfig train = common;
  train.epochs = config.recovery_epochs;
  train.optimizer.lr = config.recovery_lr > 0 ? config.recovery_lr : common.optimizer.lr / 10;
  // The common schedule's shape over the recovery epochs: after a cosine run has annealed the
  // partitions, a constant lr / 10 with a fresh optimizer would undo part of that annealing
  // (measured: -0.3 points on the default MLP); a cosine recovery anneals again.
  train.schedule.warmup_steps = 0;
  return train;
}

}  // namespace tessera::pnn
