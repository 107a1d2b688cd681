// Command-line flags shared by the subcommands, bound to the settings structs, plus `--config
// FILE.json` (every flag may also come from a JSON object keyed by the flag's long name).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "tessera/data/load.h"
#include "tessera/dist/rendezvous.h"
#include "tessera/models/model_config.h"
#include "tessera/train/trainer.h"

namespace tessera::cli {

// String forms of list-valued flags, parsed after CLI11 has run (see finish()).
struct ListFlags {
  std::string hidden = "1024,1024,1024,1024,1024";
  std::string synthetic_shape = "1,28,28";
};

struct CommonOptions {
  data::DataConfig data;
  models::ModelConfig model;
  train::TrainConfig train;
  ListFlags lists;
  std::string run_dir;
  int64_t threads = 0;              // 0: cores / local workers
  std::string precision = "fp32";   // --precision, parsed into train.precision by finish()
  std::string loss_scale = "auto";  // --loss-scale, parsed into train.loss_scale by finish()
  double loss_scale_init = 65536.0;
  std::string matmul_kernel = "auto";  // --matmul-kernel, applied process-wide by finish()
  std::string bf16_kernel = "auto";    // --bf16-kernel, applied process-wide by finish()
  // Parses the list flags into data/model and --precision / --loss-scale into train, checks the
  // model flags' consistency (check_model_flags) and sets the process's matmul and bf16 kernels.
  // Throws UsageError for a malformed list, inconsistent flags, an unknown precision or one the
  // device cannot compute in, or a kernel this build lacks.
  void finish();
};

// --dist: how `train` runs across workers, parsed once from the flag.
enum class DistMode { None, Ddp, Pipeline, Sdp };
DistMode parse_dist_mode(const std::string& name);  // UsageError naming the choices otherwise
const char* mode_name(DistMode mode);

// How `train` runs across workers (--dist ...); rank and world size come from the environment.
struct DistFlags {
  std::string mode = "none";  // none, ddp, pipeline, sdp (parse_dist_mode)
  dist::DistConfig config;
  double bucket_mb = 4.0;               // ddp: gradient bucket size
  bool no_overlap = false;              // ddp: reduce after backward instead of during it
  std::string comm_precision = "fp32";  // ddp, sdp: gradients on the wire (fp32 | bf16)
  int64_t micro_batches = 4;            // pipeline: micro-batches per batch
  // sdp: subnetwork data parallelism (see sdp/).
  std::string sdp_level = "block";
  double coverage = 0.5;
  std::string sdp_masking = "forward";
  std::string sdp_sync = "grads";  // measured better than params with Adam (docs/results.md)
  bool sdp_rescale = false;  // unless given: on under forward masking (apply_measured_defaults)
  double sdp_rescale_factor = 0;  // 0: the coverage
  int64_t sdp_bn_batches = 100;
  int64_t sdp_redraw_epochs = 0;  // 0: one plan for the whole run
  int64_t sdp_redraw_steps = 0;   // the same in optimizer steps
  std::string sdp_eval = "assembled";
};

// Consistency of flags with each other, checked right after parsing (the ranges of single flags
// are checked by the validators of checked_flags.h as they are parsed). UsageError naming the
// flags otherwise. The model's: vit/llama heads divide the embedding (llama: into even widths).
void check_model_flags(const models::ModelConfig& model);
// The dist flags': --rank below --world-size; for a pipeline --micro-batches at most --batch-size.
void check_dist_flags(const DistFlags& dist, const train::TrainConfig& train);

void add_data_flags(CLI::App& app, CommonOptions& options);
void add_model_flags(CLI::App& app, CommonOptions& options);
void add_train_flags(CLI::App& app, CommonOptions& options);
void add_runtime_flags(CLI::App& app, CommonOptions& options);
void add_dist_flags(CLI::App& app, DistFlags& flags);

// After parsing `app` (which has the train and dist flags), gives the flags whose measured best
// depends on the method their value, unless the command line or a --config file set them:
// --schedule constant under --dist sdp (cosine otherwise), --sdp-rescale under forward masking.
// docs/results.md, "Defaults", has the measurements.
void apply_measured_defaults(const CLI::App& app, DistFlags& dist, train::TrainConfig& train);

// Settings whose defaults depend on the model family, applied after parsing to the flags not
// given (on the command line or in --config). llama: --data text, --mlp-dim 320, windows of
// kLlamaSeqLen bytes in batches of kLlamaBatchSize, kLlamaEpochs epochs, AdamW at lr 2e-3 (weight
// decay 0.01), cosine schedule to 0.1 lr after 100 warm-up steps, gradient clipping at 1,
// evaluation batch 64 (docs/results.md, "Language model", has the runs that chose them). Other
// families keep the flags' defaults.
constexpr int64_t kLlamaEpochs = 3;
constexpr int64_t kLlamaSeqLen = 64;
constexpr int64_t kLlamaBatchSize = 64;
void apply_family_defaults(const CLI::App& app, CommonOptions& options);

// Loads options.data, reports it on stderr if `verbose`, and fits options.model to it (sample
// shape and number of classes).
data::TrainTest load_data_for_model(CommonOptions& options, bool verbose);

// Expands `--config FILE.json` in `args` into the flags it holds, placed before the other
// arguments so that flags given on the command line win. Throws UsageError for an unreadable
// file, a non-object, or a value that is not a scalar or a list of scalars.
std::vector<std::string> expand_config_files(const std::vector<std::string>& args);

// The arguments a run directory's config.json records: `args` without --resume (a resumed run
// reads them back and continues).
std::vector<std::string> recorded_args(const std::vector<std::string>& args);

// Converts a JSON object {"epochs": 3, "hidden": [64, 64]} to ["--epochs=3", "--hidden=64,64"].
std::vector<std::string> json_to_flags(const nlohmann::json& object, const std::string& origin);

// "64,64" -> {64, 64}; throws UsageError naming `flag` for anything else.
std::vector<int64_t> parse_int_list(const std::string& text, const std::string& flag);
std::vector<double> parse_double_list(const std::string& text, const std::string& flag);

// Sets libtorch's intra-op thread count (0: hardware threads / LOCAL_WORLD_SIZE) and returns it.
int64_t configure_threads(int64_t requested);

// A CLI11 app whose options keep the last value given (so command-line flags override the ones
// expanded from --config files).
std::unique_ptr<CLI::App> make_app(const std::string& description, const std::string& name);

// Runs CLI11 on the arguments; on a parse error prints it with the usage hint and throws
// UsageError (exit code 2). Returns false if --help was printed (caller should exit 0).
bool parse(CLI::App& app, std::vector<std::string> args);

}  // namespace tessera::cli
