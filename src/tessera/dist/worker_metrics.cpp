#include "tessera/dist/worker_metrics.h"

namespace tessera::dist {

nlohmann::json gather_worker_metrics(ProcessGroup& group, const train::TrainSummary& s,
                                     int64_t step_comm_bytes) {
  // float64 holds every count exactly (below 2^53).
  const std::vector<double> mine = {static_cast<double>(s.peak_tensor_bytes),
                                    static_cast<double>(s.peak_rss_bytes),
                                    static_cast<double>(s.comm_bytes),
                                    static_cast<double>(s.train_samples),
                                    s.train_seconds,
                                    s.samples_per_second,
                                    static_cast<double>(s.steps),
                                    static_cast<double>(step_comm_bytes),
                                    static_cast<double>(s.param_bytes),
                                    static_cast<double>(s.grad_bytes),
                                    static_cast<double>(s.optimizer_state_bytes),
                                    static_cast<double>(s.train_peak_tensor_bytes),
                                    static_cast<double>(s.eval_peak_tensor_bytes)};
  std::vector<torch::Tensor> input = {torch::tensor(mine, torch::kDouble)};
  std::vector<std::vector<torch::Tensor>> gathered(1);
  for (int64_t r = 0; r < group.size(); ++r) gathered[0].push_back(torch::empty_like(input[0]));
  group.all_gather(gathered, input);
  nlohmann::json ranks = nlohmann::json::array();
  if (group.rank() != 0) return ranks;
  for (int64_t r = 0; r < group.size(); ++r) {
    const auto v = gathered[0][r];
    ranks.push_back({{"rank", r},
                     {"peak_tensor_bytes", static_cast<int64_t>(v[0].item<double>())},
                     {"peak_rss_bytes", static_cast<int64_t>(v[1].item<double>())},
                     {"comm_bytes", static_cast<int64_t>(v[2].item<double>())},
                     {"train_samples", static_cast<int64_t>(v[3].item<double>())},
                     {"train_seconds", v[4].item<double>()},
                     {"samples_per_second", v[5].item<double>()},
                     {"steps", static_cast<int64_t>(v[6].item<double>())},
                     {"step_comm_bytes", static_cast<int64_t>(v[7].item<double>())},
                     {"param_bytes", static_cast<int64_t>(v[8].item<double>())},
                     {"grad_bytes", static_cast<int64_t>(v[9].item<double>())},
                     {"optimizer_state_bytes", static_cast<int64_t>(v[10].item<double>())},
                     {"train_peak_tensor_bytes", static_cast<int64_t>(v[11].item<double>())},
                     {"eval_peak_tensor_bytes", static_cast<int64_t>(v[12].item<double>())}});
  }
  return ranks;
}

nlohmann::json summarize_run(ProcessGroup& group, const std::string& method,
                             const RunResult& result, bool data_parallel) {
  const nlohmann::json ranks = gather_worker_metrics(group, result.summary, result.step_comm_bytes);
  if (group.rank() != 0) return nullptr;
  nlohmann::json json = train::to_json(result.summary);
  json["dist"] = method;
  json["world_size"] = group.size();
  json[method] = result.details;
  double samples_per_second = 0.0;
  int64_t comm_bytes = 0;
  int64_t step_bytes = 0;
  for (const auto& r : ranks) {
    if (data_parallel || samples_per_second == 0.0)
      samples_per_second += r.at("samples_per_second").get<double>();
    comm_bytes += r.at("comm_bytes").get<int64_t>();
    step_bytes += r.at("step_comm_bytes").get<int64_t>();
  }
  json["ranks"] = ranks;
  json["total_samples_per_second"] = samples_per_second;
  json["total_comm_bytes"] = comm_bytes;
  // The bytes were counted in this process: a resumed run's over the steps since its checkpoint.
  const int64_t steps =
      result.summary.steps - (result.summary.extra.is_object()
                                  ? result.summary.extra.value("resumed_from_step", int64_t{0})
                                  : int64_t{0});
  json["comm_bytes_per_step"] = steps > 0 ? step_bytes / steps : 0;
  return json;
}

}  // namespace tessera::dist
