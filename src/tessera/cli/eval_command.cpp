// `tessera eval --checkpoint FILE`: rebuilds the model recorded in a checkpoint and evaluates it.
#include <cstdio>
#include <iostream>

#include "tessera/cli/checked_flags.h"
#include "tessera/cli/commands.h"
#include "tessera/cli/options.h"
#include "tessera/core/error.h"
#include "tessera/data/load.h"
#include "tessera/metrics/language_model.h"
#include "tessera/models/staged_model.h"
#include "tessera/train/model_file.h"
#include "tessera/train/run_directory.h"
#include "tessera/train/trainer.h"

namespace tessera::cli {

int eval_command(const Args& raw_args) {
  const Args args = expand_config_files(raw_args);
  CommonOptions options;
  std::string checkpoint;
  std::string output;
  auto app = make_app("Evaluate a checkpoint (loss and top-1 accuracy on the test split).",
                      "tessera eval");
  app->add_option("--checkpoint", checkpoint,
                  "checkpoint file written by train, or a safetensors file written by export")
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

  train::LoadedModel loaded = train::load_model(checkpoint);
  models::StagedModel model = loaded.model;
  if (!model->is_full())
    throw UsageError("checkpoint " + checkpoint + " holds a partition, not a whole model");
  const models::ModelConfig& config = model->config();
  if (config.arch == "llama" && app->count("--data") == 0) {  // its text, in its windows
    options.data.name = "text";
    if (app->count("--seq-len") == 0) options.data.seq_len = config.input_shape.at(0);
    if (app->count("--batch-size") == 0) options.train.eval_batch_size = 64;  // as in training
  }

  const data::TrainTest data = data::load_dataset(options.data);
  if (data.test.sample_shape() != config.input_shape || data.test.num_classes != config.num_classes)
    throw UsageError(
        "data set " + options.data.name + " (" + to_string(data.test.sample_shape()) + ", " +
        std::to_string(data.test.num_classes) + " classes) does not fit the checkpoint's model (" +
        to_string(config.input_shape) + ", " + std::to_string(config.num_classes) + " classes)");
  options.train.quiet = true;
  train::Trainer trainer(model, std::make_shared<train::Classification>(), options.train, nullptr);
  const train::EvalResult result = trainer.evaluate(data.test);
  std::printf("test accuracy %.2f%%  test loss %.4f  (%lld samples)\n", 100.0 * result.accuracy,
              result.loss, static_cast<long long>(result.samples));
  nlohmann::json json = {{"checkpoint", checkpoint},
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
