#include "tessera/pnn/join.h"

#include "tessera/core/error.h"
#include "tessera/train/checkpoint.h"

namespace tessera::pnn {

void copy_partition_into(models::StagedModel& full, models::StagedModel& partition) {
  torch::NoGradGuard no_grad;
  auto full_params = full->named_parameters();
  auto full_buffers = full->named_buffers();
  const auto copy = [&](const std::string& name, const torch::Tensor& source,
                        torch::OrderedDict<std::string, torch::Tensor>& into) {
    torch::Tensor* target = into.find(name);
    if (target == nullptr) throw Error("join: the full model has no tensor named " + name);
    if (!target->sizes().equals(source.sizes()))
      throw Error("join: " + name + " is " + to_string(Shape(source.sizes().vec())) +
                  " in the partition but " + to_string(Shape(target->sizes().vec())) +
                  " in the full model");
    target->copy_(source);
  };
  for (const auto& item : partition->named_parameters())
    copy(item.key(), item.value(), full_params);
  for (const auto& item : partition->named_buffers()) copy(item.key(), item.value(), full_buffers);
}

models::StagedModel join_checkpoints(const models::ModelConfig& config,
                                     const std::vector<std::string>& partition_checkpoints) {
  models::StagedModel full = models::build_model(config);
  int64_t next_stage = 0;
  for (const std::string& path : partition_checkpoints) {
    const nlohmann::json meta = train::read_checkpoint_meta(path);
    const int64_t begin = meta.at("begin_stage").get<int64_t>();
    const int64_t end = meta.at("end_stage").get<int64_t>();
    if (begin != next_stage)
      throw Error("join: " + path + " holds stages " + std::to_string(begin) + "-" +
                  std::to_string(end - 1) + " but stage " + std::to_string(next_stage) +
                  " comes next");
    models::StagedModel partition(full->config(), begin, end);
    train::load_checkpoint(path, *partition, nullptr);
    copy_partition_into(full, partition);
    next_stage = end;
  }
  const int64_t stages = full->end_stage();
  if (next_stage != stages)
    throw Error("join: the partitions end at stage " + std::to_string(next_stage) + " of " +
                std::to_string(stages));
  return full;
}

}  // namespace tessera::pnn
