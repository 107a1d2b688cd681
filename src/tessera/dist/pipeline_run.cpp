#include "tessera/dist/pipeline_run.h"

#include "tessera/dist/pipeline.h"

namespace tessera::dist {

RunResult run_pipeline(const PipelineSetup& setup, ProcessGroup& group,
                       const data::TrainTest& data) {
  PipelineTrainer pipeline(group, setup.model, std::make_shared<train::Classification>(),
                           setup.train, setup.micro_batches, setup.run);
  pipeline.set_restart_dir(setup.restart_dir);
  if (setup.resume) pipeline.resume();
  RunResult result;
  result.summary = pipeline.fit(data.train, &data.test);
  result.step_comm_bytes = pipeline.step_comm_bytes();
  nlohmann::json stages = nlohmann::json::array();
  for (const auto& [begin, end] : split_stages(setup.model, group.size()))
    stages.push_back({begin, end});
  result.details = {{"micro_batches", setup.micro_batches}, {"stages", stages}};
  return result;
}

}  // namespace tessera::dist
