#include "tessera/pnn/pnn_run.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "tessera/core/error.h"
#include "tessera/core/seeding.h"
#include "tessera/dist/live_progress.h"
#include "tessera/metrics/flops.h"
#include "tessera/metrics/language_model.h"
#include "tessera/metrics/measurement_scope.h"
#include "tessera/metrics/timer.h"
#include "tessera/models/architecture.h"
#include "tessera/models/staged_model.h"
#include "tessera/pnn/handover.h"
#include "tessera/pnn/join.h"
#include "tessera/train/batch_norm_statistics.h"
#include "tessera/train/checkpoint.h"
#include "tessera/train/nonfinite.h"
#include "tessera/train/run_directory.h"

namespace tessera::pnn {

PartitionPlan choose_plan(const PnnSetup& setup, std::vector<int64_t>* stage_bytes) {
  models::require_cuttable(setup.model, "PNN");
  if (!setup.pnn.cuts.empty()) return plan_from_cuts(setup.model, setup.pnn.cuts);
  const std::vector<int64_t> bytes = measure_stage_memory(
      setup.model, setup.train.batch_size, setup.train.optimizer, setup.train.device);
  if (stage_bytes != nullptr) *stage_bytes = bytes;
  return plan_balanced(bytes, setup.pnn.partitions);
}

std::string plan_path(const std::string& run_dir) {
  return run_dir + "/plan.json";
}

namespace {

// One sample's activation shape at each cut of `plan`. A language model classifies every
// position: its label rows are one position's activation ([D] of [T, D]), and a position's
// synthetic label is S[the byte it must predict].
std::vector<Shape> cut_shapes(const PnnSetup& setup, const PartitionPlan& plan) {
  const models::Architecture& arch = models::architecture(setup.model.arch);
  const bool per_position =
      arch.boundary_shape(setup.model, arch.num_stages(setup.model)).size() > 1;
  std::vector<Shape> shapes;
  for (const int64_t cut : plan.cuts()) {
    Shape shape = arch.boundary_shape(setup.model, cut);
    if (per_position) shape.erase(shape.begin());
    shapes.push_back(shape);
  }
  return shapes;
}

}  // namespace

std::vector<std::shared_ptr<const SilSpace>> make_sil_spaces(const PnnSetup& setup,
                                                             const PartitionPlan& plan) {
  std::vector<std::shared_ptr<const SilSpace>> spaces;
  const std::vector<Shape> shapes = cut_shapes(setup, plan);
  // Seeded by (SIL seed, cut), apart from the labels' own draws: every worker of the parallel
  // schedule builds the same map.
  for (size_t k = 0; k < shapes.size(); ++k)
    spaces.push_back(std::make_shared<const SilSpace>(
        setup.pnn.sil_space, shapes[k], mix_seed(setup.pnn.sil.seed, 0x5ace0000 + k)));
  return spaces;
}

namespace {

std::vector<torch::Tensor> sils_in(const PnnSetup& setup,
                                   const std::vector<std::shared_ptr<const SilSpace>>& spaces) {
  std::vector<torch::Tensor> sils;
  for (size_t k = 0; k < spaces.size(); ++k)
    sils.push_back(make_sil(setup.pnn.sil, setup.model.num_classes, spaces[k]->reduced_shape(),
                            static_cast<int64_t>(k)));
  return sils;
}

}  // namespace

std::vector<torch::Tensor> make_sils(const PnnSetup& setup, const PartitionPlan& plan) {
  return sils_in(setup, make_sil_spaces(setup, plan));
}

nlohmann::json to_json(const PnnResult& r) {
  nlohmann::json curve = nlohmann::json::array();
  for (const auto& point : r.curve)
    curve.push_back({{"flops", point.flops},
                     {"accuracy", point.accuracy},
                     {"loss", point.loss},
                     {"phase", point.phase},
                     {"elapsed_seconds", point.elapsed_seconds}});
  nlohmann::json json = {{"schedule", schedule_name(r.schedule)},
                         {"cuts", r.plan.cuts()},
                         {"partitions", r.partitions},
                         {"joined_test_accuracy", r.joined.accuracy},
                         {"joined_test_loss", r.joined.loss},
                         {"test_accuracy", r.recovered.accuracy},
                         {"test_loss", r.recovered.loss},
                         {"recovery", r.recovery},
                         {"curve", curve},
                         {"train_flops", r.train_flops},
                         {"handover_bytes", r.handover_bytes},
                         {"partition_comm_bytes", r.partition_comm_bytes},
                         {"max_partition_peak_tensor_bytes", r.max_partition_peak_tensor_bytes},
                         {"wall_seconds", r.wall_seconds},
                         {"checkpoint", r.checkpoint}};
  if (r.language_model) {
    json["joined_test_bits_per_byte"] = metrics::bits_per_token(r.joined.loss);
    json["test_bits_per_byte"] = metrics::bits_per_token(r.recovered.loss);
  }
  return json;
}

namespace {

std::string partition_dir(const PnnSetup& setup, int64_t index) {
  return setup.run_dir + "/partition" + std::to_string(index);
}

// The synthetic labels of every cut and the spaces they live in.
struct CutLabels {
  std::vector<torch::Tensor> sils;
  std::vector<std::shared_ptr<const SilSpace>> spaces;
};

CutLabels make_cut_labels(const PnnSetup& setup, const PartitionPlan& plan) {
  CutLabels labels;
  labels.spaces = make_sil_spaces(setup, plan);
  labels.sils = sils_in(setup, labels.spaces);
  return labels;
}

PartitionJob make_job(const PnnSetup& setup, const PartitionPlan& plan, const CutLabels& labels,
                      int64_t index, bool parallel,
                      const metrics::RunClock& clock = metrics::RunClock::since_process_start()) {
  PartitionJob job;
  job.clock = clock;
  job.index = index;
  job.plan = plan;
  job.model = setup.model;
  job.train = partition_train_config(setup.pnn, setup.train, index, plan.size());
  if (parallel && index > 0) {
    // The previous cut's labels as activations: in a reduced space, the least-norm activation
    // that maps to them.
    const auto k = static_cast<size_t>(index) - 1;
    job.targets.input_sil = labels.spaces[k]->lift(labels.sils[k]);
    job.targets.input_noise = setup.pnn.sil_noise;
  }
  if (index + 1 < plan.size()) {
    job.targets.target_sil = labels.sils[static_cast<size_t>(index)];
    job.targets.target_space = labels.spaces[static_cast<size_t>(index)];
  }
  job.targets.loss = setup.pnn.sil_loss;
  job.targets.seed = mix_seed(setup.train.seed, 0x5150 + static_cast<uint64_t>(index));
  job.run_dir = partition_dir(setup, index);
  job.keep_snapshots = parallel;
  return job;
}

train::EvalResult evaluate_model(models::StagedModel model, const data::Dataset& test,
                                 const train::TrainConfig& config) {
  train::Trainer trainer(model, std::make_shared<train::Classification>(), config, nullptr);
  return trainer.evaluate(test);
}

// The model the partitions' checkpoints at `paths` make, with its batch-norm statistics measured on
// itself over --pnn-bn-batches training batches when asked: under the parallel schedule each
// partition gathered them on its labels, not on the partition before it.
models::StagedModel join_for_evaluation(const PnnSetup& setup,
                                        const std::vector<std::string>& paths,
                                        const data::Dataset& train) {
  models::StagedModel joined = join_checkpoints(setup.model, paths);
  if (setup.pnn.bn_batches > 0)
    train::recompute_batch_norm_statistics(
        joined, train, setup.pnn.bn_batches, setup.train.batch_size,
        mix_seed(setup.train.seed, 0xB47C), train::parse_device(setup.train.device));
  return joined;
}

// A partition that trains on SIL rows needs only the labels: no copy of the inputs.
data::Dataset labels_only(const data::Dataset& dataset) {
  data::Dataset out = dataset;
  out.inputs = torch::empty({dataset.size(), 0});
  return out;
}

int64_t json_int(const nlohmann::json& report, const char* key) {
  return report.at(key).get<int64_t>();
}

void train_sequentially(const PnnSetup& setup, const PartitionPlan& plan, const CutLabels& labels,
                        const data::TrainTest& data, const metrics::RunClock& clock,
                        PnnResult& result) {
  data::Dataset train = data.train;
  data::Dataset test = data.test;
  int64_t flops = 0;
  const metrics::MeasurementScope measured;  // the hand-overs' bytes
  for (int64_t i = 0; i < plan.size(); ++i) {
    PartitionOutcome outcome =
        train_partition(make_job(setup, plan, labels, i, false, clock), train, &test);
    result.partitions.push_back(outcome.report);
    const bool last = i + 1 == plan.size();
    if (last) {
      // The last partition ran on the handed-over test set, so its test accuracy is the joined
      // model's: one curve point per evaluation.
      const int64_t per_sample = metrics::training_flops(json_int(outcome.report, "forward_flops"));
      for (const auto& point : outcome.report.at("history"))
        result.curve.push_back({flops + per_sample * point.at("train_samples").get<int64_t>(),
                                point.at("test_accuracy").get<double>(),
                                point.at("test_loss").get<double>(), "partitions",
                                point.at("elapsed_seconds").get<double>()});
    }
    flops += json_int(outcome.report, "train_flops");
    if (last) break;
    HandoverOptions handover;
    handover.store = setup.pnn.handover;
    handover.batch_size = setup.train.eval_batch_size;
    handover.device = setup.train.device;
    handover.file = partition_dir(setup, i) + "/handover-train.bin";
    data::Dataset next_train = hand_over(outcome.model, train, handover);
    handover.file = partition_dir(setup, i) + "/handover-test.bin";
    test = hand_over(outcome.model, test, handover);
    train = std::move(next_train);
    flops += json_int(outcome.report, "forward_flops") * train.size();
    // Only one partition is resident at a time.
    outcome.model = nullptr;
  }
  result.handover_bytes = measured.comm_bytes();
  result.train_flops = flops;
}

void train_in_parallel(const PnnSetup& setup, const PartitionPlan& plan,
                       const data::TrainTest& data, const metrics::RunClock& clock,
                       PnnResult& result) {
  if (!setup.worker_command) throw Error("the parallel schedule needs a way to start workers");
  std::vector<dist::WorkerCommand> commands;
  for (int64_t i = 0; i < plan.size(); ++i) commands.push_back(setup.worker_command(i));
  dist::LaunchOptions options;
  options.label = "partition";
  // The workers' clocks start with their processes, about now.
  const double launched_at = clock.seconds();
  options.live_progress = dist::is_live_terminal(options.stderr_fd);
  const dist::LaunchResult launched = dist::launch_workers(commands, options);
  if (!launched.ok()) throw Error("parallel PNN: " + launched.failure);

  std::vector<std::vector<int64_t>> samples;  // per partition, per evaluation
  std::vector<std::vector<double>> elapsed;   // the same, each worker's elapsed_seconds
  std::vector<int64_t> per_sample;
  for (int64_t i = 0; i < plan.size(); ++i) {
    const nlohmann::json report = train::read_json_file(partition_dir(setup, i) + "/summary.json");
    result.partitions.push_back(report);
    result.train_flops += json_int(report, "train_flops");
    per_sample.push_back(metrics::training_flops(json_int(report, "forward_flops")));
    samples.emplace_back();
    elapsed.emplace_back();
    for (const auto& point : report.at("history")) {
      samples.back().push_back(point.at("train_samples").get<int64_t>());
      elapsed.back().push_back(point.at("elapsed_seconds").get<double>());
    }
    if (samples.back().empty())
      throw Error("parallel PNN: partition " + std::to_string(i) +
                  " recorded no evaluation (0 epochs?)");
  }
  // The joined model after each evaluation point: partition i's snapshot of that point (or its
  // last one, if it trains fewer epochs).
  size_t points = 0;
  for (const auto& s : samples) points = std::max(points, s.size());
  for (size_t k = 0; k < points; ++k) {
    std::vector<std::string> paths;
    int64_t flops = 0;
    double ready = 0.0;  // the joined model exists once its slowest partition got there
    for (int64_t i = 0; i < plan.size(); ++i) {
      const size_t at = std::min(k, samples[static_cast<size_t>(i)].size() - 1);
      paths.push_back(snapshot_path(partition_dir(setup, i), static_cast<int64_t>(at)));
      flops += per_sample[static_cast<size_t>(i)] * samples[static_cast<size_t>(i)][at];
      ready = std::max(ready, elapsed[static_cast<size_t>(i)][at]);
    }
    const train::EvalResult joined =
        evaluate_model(join_for_evaluation(setup, paths, data.train), data.test, setup.train);
    result.curve.push_back(
        {flops, joined.accuracy, joined.loss, "partitions", launched_at + ready});
  }
  for (int64_t i = 0; i < plan.size(); ++i)
    for (size_t k = 0; k < samples[static_cast<size_t>(i)].size(); ++k)
      std::filesystem::remove(snapshot_path(partition_dir(setup, i), static_cast<int64_t>(k)));
}

void join_and_recover(const PnnSetup& setup, const PartitionPlan& plan, const data::TrainTest& data,
                      const metrics::RunClock& clock, PnnResult& result) {
  std::vector<std::string> checkpoints;
  for (int64_t i = 0; i < plan.size(); ++i)
    checkpoints.push_back(partition_dir(setup, i) + "/checkpoint.pt");
  models::StagedModel joined = join_for_evaluation(setup, checkpoints, data.train);
  result.joined = evaluate_model(joined, data.test, setup.train);
  result.recovered = result.joined;
  const int64_t before_recovery = result.train_flops;
  if (setup.pnn.recovery_epochs > 0) {
    train::RunDirectory run(setup.run_dir + "/recovery", /*resume=*/false);
    train::Trainer trainer(joined, std::make_shared<train::Classification>(),
                           recovery_train_config(setup.pnn, setup.train), &run);
    trainer.set_run_clock(clock);
    train::TrainSummary summary;
    try {
      summary = trainer.fit(data.train, &data.test);
    } catch (const train::NonfiniteError& e) {  // --nonfinite: in recovery, not a partition
      throw train::NonfiniteError(std::string("recovery of the joined model: ") + e.what());
    }
    result.recovered = summary.test;
    result.recovery = train::to_json(summary);
    run.write_json("summary.json", result.recovery);
    result.train_flops += summary.train_flops;
    const int64_t per_sample = metrics::training_flops(joined->forward_flops());
    for (const auto& point : summary.history)
      result.curve.push_back({before_recovery + per_sample * point.train_samples,
                              point.test.accuracy, point.test.loss, "recovery",
                              point.elapsed_seconds});
  }
  result.checkpoint = setup.run_dir + "/checkpoint.pt";
  train::save_checkpoint(result.checkpoint, *joined, nullptr,
                         {{"model", models::to_json(joined->config())},
                          {"begin_stage", 0},
                          {"end_stage", joined->end_stage()},
                          {"epoch", setup.pnn.recovery_epochs},
                          {"step", 0},
                          {"pnn_schedule", schedule_name(setup.pnn.schedule)}});
}

}  // namespace

PnnResult run_pnn(const PnnSetup& setup, const data::TrainTest& data) {
  validate(setup.pnn);
  metrics::Timer wall;
  const metrics::RunClock clock;  // the curve's elapsed_seconds
  PnnResult result;
  result.schedule = setup.pnn.schedule;
  result.language_model = data.train.windows != nullptr;
  require(setup.plan.size() >= 1, "run_pnn: no partition plan (see choose_plan)");
  models::require_cuttable(setup.model, "PNN");
  result.plan = setup.plan;
  std::filesystem::create_directories(setup.run_dir);
  train::write_json_file(plan_path(setup.run_dir), to_json(result.plan));
  const CutLabels labels = make_cut_labels(setup, result.plan);
  torch::save(labels.sils, setup.run_dir + "/sil.pt");

  if (setup.pnn.schedule == PnnSchedule::Sequential)
    train_sequentially(setup, result.plan, labels, data, clock, result);
  else
    train_in_parallel(setup, result.plan, data, clock, result);
  for (const auto& report : result.partitions) {
    result.max_partition_peak_tensor_bytes =
        std::max(result.max_partition_peak_tensor_bytes, json_int(report, "peak_tensor_bytes"));
    result.partition_comm_bytes += json_int(report, "comm_bytes");
  }
  join_and_recover(setup, result.plan, data, clock, result);
  result.wall_seconds = wall.seconds();
  train::write_json_file(setup.run_dir + "/summary.json", to_json(result));
  return result;
}

void run_parallel_worker(const PnnSetup& setup, int64_t index, const data::TrainTest& data) {
  const PartitionPlan& plan = setup.plan;
  require(index >= 0 && index < plan.size(), "--partition " + std::to_string(index) +
                                                 " is not a partition (0.." +
                                                 std::to_string(plan.size() - 1) + ")");
  const PartitionJob job =
      make_job(setup, plan, make_cut_labels(setup, plan), index, /*parallel=*/true);
  if (index == 0) {
    train_partition(job, data.train, &data.test);
  } else {
    const data::Dataset train = labels_only(data.train);
    const data::Dataset test = labels_only(data.test);
    train_partition(job, train, &test);
  }
}

}  // namespace tessera::pnn
