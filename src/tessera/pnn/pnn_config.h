// Settings of a PNN run: where to cut, the synthetic labels, the schedule, per-partition
// hyper-parameters and the recovery epochs.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tessera/pnn/sil.h"
#include "tessera/pnn/sil_space.h"
#include "tessera/train/trainer.h"

namespace tessera::pnn {

// Sequential: the paper's, one partition after another on the previous one's outputs. Parallel:
// ours, every partition at once on its own worker, later ones on the previous cut's labels.
enum class PnnSchedule { Sequential, Parallel };
// "sequential" / "parallel" -> the schedule; UsageError naming --pnn-schedule otherwise.
PnnSchedule parse_pnn_schedule(const std::string& name);
const char* schedule_name(PnnSchedule schedule);

struct PnnConfig {
  std::vector<int64_t> cuts;  // stage indices; empty: `partitions` balanced by measured memory
  int64_t partitions = 2;
  PnnSchedule schedule = PnnSchedule::Sequential;
  SilConfig sil;
  SilSpaceConfig sil_space;      // where the regression to the labels happens
  std::string sil_loss = "mse";  // mse | cosine
  double sil_noise = 0.1;        // parallel schedule: std of the noise on S_{i-1}[y] inputs
  // One value per partition, or empty for the common --epochs / --batch-size / --lr.
  std::vector<int64_t> partition_epochs;
  std::vector<int64_t> partition_batch_sizes;
  std::vector<double> partition_lrs;
  int64_t recovery_epochs = 1;
  double recovery_lr = 0.0;  // 0: the common learning rate / 10
  // Training batches over which the joined model's batch-norm statistics are re-estimated before
  // it is evaluated or recovered (0: keep each partition's, gathered on its labels' inputs).
  int64_t bn_batches = 0;
  std::string handover = "auto";  // sequential: memory | file | auto
};

// Throws UsageError naming the flag for anything impossible that does not need the model.
void validate(const PnnConfig& config);
nlohmann::json to_json(const PnnConfig& config);

// The training settings of partition `index` of `count`: the common ones with that partition's
// epochs, batch size and learning rate. UsageError if a per-partition list has the wrong length.
train::TrainConfig partition_train_config(const PnnConfig& config, const train::TrainConfig& common,
                                          int64_t index, int64_t count);

// The recovery epochs' settings: the common ones, recovery_epochs at recovery_lr (or lr / 10)
// with the common schedule spanning the recovery epochs, no warm-up.
train::TrainConfig recovery_train_config(const PnnConfig& config, const train::TrainConfig& common);

}  // namespace tessera::pnn
