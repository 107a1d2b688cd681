// `tessera eval --checkpoint FILE...`: rebuilds the model recorded in a checkpoint and evaluates
// it; several checkpoints are evaluated as an ensemble (the mean of their predicted distributions),
// e.g. the workers' subnetworks that `tessera train --dist sdp --sdp-eval ensemble` saves.
#include <cstdio>
#include <iostream>

#include "tessera/cli/checked_flags.h"
#include "tessera/cli/commands.h"
#include "tessera/cli/options.h"
#include "tessera/core/error.h"
#include "tessera/data/load.h"
#include "tessera/metrics/language_model.h"
#include "tessera/models/staged_model.h"
#include "tessera/sdp/subnet_ensemble.h"
#include "tessera/train/model_file.h"
#include "tessera/train/run_directory.h"
#include "tessera/train/trainer.h"

namespace tessera::cli {

namespace {

// The model of one checkpoint, checked to be a whole model (a partition cannot classify alone).
models::StagedModel load_whole_model(const std::string& checkpoint) {
  models::StagedModel model = train::load_model(checkpoint).model;
  if (!model->is_full())
    throw UsageError("checkpoint " + checkpoint + " holds a partition, not a whole model");
  return model;
}

void check_fits(const data::TrainTest& data, const std::string& data_name,
                const models::ModelConfig& config, const std::string& checkpoint) {
  if (data.test.sample_shape() != config.input_shape || data.test.num_classes != config.num_classes)
    throw UsageError("data set " + data_name + " (" + to_string(data.test.sample_shape()) + ", " +
                     std::to_string(data.test.num_classes) +
                     " classes) does not fit the model of " + checkpoint + " (" +
                     to_string(config.input_shape) + ", " + std::to_string(config.num_classes) +
                     " classes)");
}

}  // namespace

int eval_command(const Args& raw_args) {
  const Args args = expand_config_files(raw_args);
  CommonOptions options;
  std::vector<std::string> checkpoints;
  std::string output;
  auto app = make_app("Evaluate a checkpoint (loss and top-1 accuracy on the test split).",
                      "tessera eval");
  app->add_option("--checkpoint", checkpoints,
                  "checkpoint file written by train, or a safetensors file written by export; "
                  "several (repeated or listed): evaluated as an ensemble, the mean of their "
                  "predicted distributions")
      ->required();
  app->add_option("--output", output, "also write the result to this JSON file");
  add_data_flags(*app, options);
  add_runtime_flags(*app, options);
  app->add_option("--batch-size", options.train.eval_batch_size, "evaluation batch size")
      ->capture_default_str()
      ->check(integer_in(1));
  if (!parse(*app, args)) return 0;
  options.finish();
  configure_threads(options.threads);

  std::vector<models::StagedModel> models;
  for (const auto& checkpoint : checkpoints) models.push_back(load_whole_model(checkpoint));
  const models::ModelConfig& config = models.front()->config();
  if (config.arch == "llama" && app->count("--data") == 0) {  // its text, in its windows
    options.data.name = "text";
    if (app->count("--seq-len") == 0) options.data.seq_len = config.input_shape.at(0);
    if (app->count("--batch-size") == 0) options.train.eval_batch_size = 64;  // as in training
  }

  const data::TrainTest data = data::load_dataset(options.data);
  for (size_t k = 0; k < models.size(); ++k)
    check_fits(data, options.data.name, models[k]->config(), checkpoints[k]);
  options.train.quiet = true;
  std::vector<std::unique_ptr<train::Trainer>> members;
  for (auto& model : models)
    members.push_back(std::make_unique<train::Trainer>(
        model, std::make_shared<train::Classification>(), options.train, nullptr));
  train::Trainer::OutputCombiner ensemble;
  if (members.size() > 1)
    ensemble = [&members](const torch::Tensor& outputs, const data::Batch& batch) {
      std::vector<torch::Tensor> all = {outputs};
      for (size_t k = 1; k < members.size(); ++k) all.push_back(members[k]->predict(batch));
      return sdp::log_mean_probabilities(all);
    };
  const train::EvalResult result = members.front()->evaluate(data.test, ensemble);
  const std::string of_ensemble =
      members.size() > 1 ? ", an ensemble of " + std::to_string(members.size()) + " models" : "";
  std::printf("test accuracy %.2f%%  test loss %.4f  (%lld samples%s)\n", 100.0 * result.accuracy,
              result.loss, static_cast<long long>(result.samples), of_ensemble.c_str());
  nlohmann::json json = {{"checkpoint", checkpoints.size() == 1 ? nlohmann::json(checkpoints[0])
                                                                : nlohmann::json(checkpoints)},
                         {"test_accuracy", result.accuracy},
                         {"test_loss", result.loss},
                         {"samples", result.samples}};
  if (data.test.windows) {  // a language model: per byte, on the validation windows
    json["test_bits_per_byte"] = metrics::bits_per_token(result.loss);
    std::printf("validation %.4f bits/byte\n", json["test_bits_per_byte"].get<double>());
  }
  if (!output.empty()) train::write_json_file(output, json);
  return 0;
}

}  // namespace tessera::cli
