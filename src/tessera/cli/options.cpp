#include "tessera/cli/options.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <sstream>
#include <thread>

#include "tessera/cli/checked_flags.h"
#include "tessera/core/error.h"
#include "tessera/kernels/bf16_kernel.h"
#include "tessera/kernels/matmul_backend.h"
#include "tessera/metrics/language_model.h"
#include "tessera/metrics/timer.h"
#include "tessera/train/run_directory.h"

namespace tessera::cli {

namespace {
// Far more workers than a Gloo group of CPU processes can hold; --rank and --world-size beyond it
// are typing mistakes.
constexpr int64_t kMaxWorldSize = 1 << 16;

// Parses every comma-separated item of `text` with `parse_item`; UsageError naming `flag` and
// `what` the items should be otherwise.
template <typename T, typename Parse>
std::vector<T> parse_list(const std::string& text, const std::string& flag, const char* what,
                          Parse parse_item) {
  std::vector<T> values;
  std::stringstream stream(text);
  std::string item;
  while (std::getline(stream, item, ',')) {
    try {
      size_t used = 0;
      values.push_back(parse_item(item, &used));
      require(used == item.size(), "");
    } catch (const std::exception&) {
      throw UsageError(flag + ": '" + text + "' is not a comma-separated list of " + what);
    }
  }
  require(!values.empty(), flag + ": empty list");
  return values;
}
}  // namespace

std::vector<int64_t> parse_int_list(const std::string& text, const std::string& flag) {
  return parse_list<int64_t>(text, flag, "integers", [](const std::string& item, size_t* used) {
    return static_cast<int64_t>(std::stoll(item, used));
  });
}

std::vector<double> parse_double_list(const std::string& text, const std::string& flag) {
  return parse_list<double>(text, flag, "numbers", [](const std::string& item, size_t* used) {
    return std::stod(item, used);
  });
}

void CommonOptions::finish() {
  model.hidden = parse_int_list(lists.hidden, "--hidden");
  data.synthetic_shape = parse_int_list(lists.synthetic_shape, "--synthetic-shape");
  check_model_flags(model);
  train.precision = train::parse_precision(precision);
  train.loss_scale = train::parse_loss_scale(loss_scale, loss_scale_init, train.precision);
  // Before any data is loaded: a CPU without native bf16 is refused at once.
  train::require_precision_supported(train.precision, train::parse_device(train.device));
  kernels::set_matmul_backend(kernels::parse_matmul_backend(matmul_kernel));
  kernels::set_bf16_kernel(kernels::parse_bf16_kernel(bf16_kernel));
}

void check_model_flags(const models::ModelConfig& model) {
  require(!model.tie_embeddings || model.arch == "llama",
          "--tie-embeddings is for --model llama (the " + model.arch +
              " family has no token embedding to tie)");
  if (model.arch != "vit" && model.arch != "llama") return;
  require(model.embed_dim % model.num_heads == 0,
          "--heads " + std::to_string(model.num_heads) + " must divide --embed-dim " +
              std::to_string(model.embed_dim) + " (" + model.arch +
              " splits the embedding among the heads)");
  require(model.arch != "llama" || (model.embed_dim / model.num_heads) % 2 == 0,
          "--embed-dim / --heads = " + std::to_string(model.embed_dim / model.num_heads) +
              " must be even for llama (rotary embeddings rotate pairs of a head's entries)");
}

void check_dist_flags(const DistFlags& dist, const train::TrainConfig& train) {
  const dist::DistConfig& c = dist.config;
  require(c.rank < 0 || c.world_size < 0 || c.rank < c.world_size,
          "--rank " + std::to_string(c.rank) + " must be below --world-size " +
              std::to_string(c.world_size));
  require(dist.comm_precision == "fp32" || dist.mode == "ddp" || dist.mode == "sdp",
          "--comm-precision " + dist.comm_precision +
              " is for --dist ddp and --dist sdp (the gradients they average)");
  require(dist.sdp_eval == "assembled" || dist.mode == "sdp",
          "--sdp-eval " + dist.sdp_eval + " is for --dist sdp (its workers' subnetworks)");
  require(dist.mode != "pipeline" || dist.micro_batches <= train.batch_size,
          "--micro-batches " + std::to_string(dist.micro_batches) +
              " must not exceed --batch-size " + std::to_string(train.batch_size) +
              " (a micro-batch holds at least one sample)");
}

void add_data_flags(CLI::App& app, CommonOptions& o) {
  app.add_option("--data", o.data.name,
                 "data set: fashion-mnist, mnist, emnist, cifar10, cifar100, synthetic, text "
                 "(byte-level language modelling; the default with --model llama)")
      ->capture_default_str();
  app.add_option("--data-path", o.data.path,
                 "text: the corpus, a UTF-8 file or a directory of them (default: "
                 "/usr/share/games/fortunes, Debian's fortunes package)");
  app.add_option(
         "--seq-len", o.data.seq_len,
         "text: tokens (bytes) per training window (default: " + std::to_string(kLlamaSeqLen) +
             " with --model llama, else " + std::to_string(o.data.seq_len) + ")")
      ->check(integer_in(1, 1 << 20));
  app.add_option("--text-val-fraction", o.data.text_validation_fraction,
                 "text: fraction of the documents held out for validation")
      ->capture_default_str()
      ->check(fraction_open());
  app.add_option("--data-dir", o.data.dir, "directory of the data files (default: per data set)");
  app.add_option("--emnist-split", o.data.emnist_split, "EMNIST split")->capture_default_str();
  app.add_option("--cifar100-labels", o.data.cifar100_labels, "fine or coarse")
      ->capture_default_str();
  app.add_option("--synthetic-train", o.data.synthetic_train, "synthetic training samples")
      ->capture_default_str()
      ->check(integer_in(1));
  app.add_option("--synthetic-test", o.data.synthetic_test, "synthetic test samples")
      ->capture_default_str()
      ->check(integer_in(1));
  app.add_option("--synthetic-classes", o.data.synthetic_classes, "synthetic classes")
      ->capture_default_str()
      ->check(integer_in(2, 1 << 20));
  app.add_option("--synthetic-shape", o.lists.synthetic_shape,
                 "synthetic sample shape, e.g. 1,28,28")
      ->capture_default_str()
      ->check(list_of(integer_in(1, 1 << 20)));
  app.add_option("--synthetic-seed", o.data.synthetic_seed, "synthetic data seed")
      ->capture_default_str()
      ->check(seed_value());
  app.add_option("--limit-train", o.data.limit_train,
                 "use only the first N training samples (0: all; text: N windows per epoch)")
      ->check(integer_in(0));
  app.add_option("--limit-test", o.data.limit_test,
                 "use only the first N test samples (0: all; text: N windows)")
      ->check(integer_in(0));
}

void add_model_flags(CLI::App& app, CommonOptions& o) {
  app.add_option("--model", o.model.arch, "architecture: mlp, resnet, wrn, vit, llama")
      ->capture_default_str();
  app.add_option("--hidden", o.lists.hidden, "mlp hidden widths, comma-separated")
      ->capture_default_str()
      ->check(list_of(integer_in(1, 1 << 20)));
  app.add_option("--activation", o.model.activation, "mlp activation: relu, gelu, tanh")
      ->capture_default_str();
  app.add_option("--depth", o.model.depth, "resnet/wrn depth, vit/llama blocks (0: default)")
      ->check(integer_in(0, 10000));
  app.add_option("--width", o.model.width,
                 "resnet width multiplier / wrn widen factor (0: default)")
      ->check(real_in({0.0, 1024.0, false, false}));
  app.add_option("--patch-size", o.model.patch_size, "vit patch size")
      ->capture_default_str()
      ->check(integer_in(1, 1 << 16));
  app.add_option("--embed-dim", o.model.embed_dim, "vit/llama embedding width")
      ->capture_default_str()
      ->check(integer_in(1, 1 << 20));
  app.add_option("--heads", o.model.num_heads, "vit/llama attention heads")
      ->capture_default_str()
      ->check(integer_in(1, 1 << 16));
  app.add_option("--mlp-dim", o.model.mlp_dim,
                 "vit MLP / llama SwiGLU hidden width (llama's default: 320)")
      ->capture_default_str()
      ->check(integer_in(1, 1 << 22));
  app.add_option("--pool", o.model.pool, "vit pooling: cls or mean")->capture_default_str();
  app.add_option(
         "--dropout", o.model.dropout,
         "dropout probability on the units neuron-level SDP masks: mlp hidden neurons, "
         "resnet/wrn blocks' inner channels (channel-wise), vit MLP hidden units; in [0, 1)")
      ->capture_default_str()
      ->check(probability_below_one());
  app.add_option("--drop-path", o.model.drop_path,
                 "stochastic depth: per-sample drop probability of every residual branch "
                 "(resnet/wrn blocks, vit attention and MLP sublayers; not mlp); in [0, 1)")
      ->capture_default_str()
      ->check(probability_below_one());
  app.add_flag("--tie-embeddings", o.model.tie_embeddings,
               "llama: the output head multiplies by the token embedding's weight instead of its "
               "own (vocabulary x width fewer parameters; not with PNN or a pipeline)");
}

void add_train_flags(CLI::App& app, CommonOptions& o) {
  auto& t = o.train;
  app.add_option("--epochs", t.epochs, "training epochs")
      ->capture_default_str()
      ->check(integer_in(0, 1000000));
  app.add_option("--batch-size", t.batch_size, "mini-batch size (per worker)")
      ->capture_default_str()
      ->check(integer_in(1));
  app.add_option("--eval-batch-size", t.eval_batch_size, "evaluation batch size")
      ->capture_default_str()
      ->check(integer_in(1));
  app.add_option("--optimizer", t.optimizer.name, "sgd, adam, adamw")->capture_default_str();
  app.add_option("--lr", t.optimizer.lr, "learning rate")
      ->capture_default_str()
      ->check(positive_real());
  app.add_option("--weight-decay", t.optimizer.weight_decay, "weight decay")
      ->capture_default_str()
      ->check(non_negative_real());
  app.add_option("--momentum", t.optimizer.momentum, "sgd momentum")
      ->capture_default_str()
      ->check(probability_below_one());
  app.add_flag("--nesterov", t.optimizer.nesterov, "sgd: Nesterov momentum");
  app.add_option("--beta1", t.optimizer.beta1, "adam/adamw beta1")
      ->capture_default_str()
      ->check(probability_below_one());
  app.add_option("--beta2", t.optimizer.beta2, "adam/adamw beta2")
      ->capture_default_str()
      ->check(probability_below_one());
  app.add_option("--eps", t.optimizer.eps, "adam/adamw epsilon")
      ->capture_default_str()
      ->check(positive_real());
  // The CLI's default: the measured best for conventional, DDP and PNN training (see
  // apply_measured_defaults for SDP's). The library's TrainConfig keeps a constant rate.
  t.schedule.name = "cosine";
  app.add_option("--schedule", t.schedule.name,
                 "constant, step, cosine (default: cosine, measured best for conventional, DDP "
                 "and PNN training; constant under --dist sdp, measured better there; see "
                 "docs/results.md, Defaults)");
  app.add_option("--warmup-steps", t.schedule.warmup_steps, "linear warm-up steps")
      ->capture_default_str()
      ->check(integer_in(0));
  app.add_option("--step-every", t.schedule.step_every_epochs, "step schedule: epochs per decay")
      ->capture_default_str()
      ->check(integer_in(0, 1000000));
  app.add_option("--gamma", t.schedule.gamma, "step schedule: decay factor")
      ->capture_default_str()
      ->check(positive_real());
  app.add_option("--min-lr-ratio", t.schedule.min_lr_ratio, "cosine: final lr / lr")
      ->capture_default_str()
      ->check(real_in({0.0, 1.0, false, false}));
  app.add_option("--clip-grad-norm", t.clip_grad_norm, "clip the gradient norm (0: off)")
      ->capture_default_str()
      ->check(non_negative_real());
  app.add_flag("--drop-last", t.drop_last, "drop the last partial batch of an epoch");
  app.add_option("--augment-crop", t.augmentation.crop_padding,
                 "random-crop padding in pixels (0: off)")
      ->capture_default_str()
      ->check(integer_in(0, 1024));
  app.add_flag("--augment-flip", t.augmentation.horizontal_flip, "random horizontal flips");
  app.add_option("--seed", t.seed, "seed for initialisation, shuffling, augmentation")
      ->capture_default_str()
      ->check(seed_value());
  app.add_option("--checkpoint-every", t.checkpoint_every, "epochs between checkpoints (0: at end)")
      ->capture_default_str()
      ->check(integer_in(0, 1000000));
  app.add_option("--checkpoint-every-steps", t.checkpoint_every_steps,
                 "also checkpoint every K optimizer steps, mid-epoch, so that a restart "
                 "(tessera launch --max-restarts) loses at most K steps (0: off)")
      ->capture_default_str()
      ->check(integer_in(0));
  app.add_option("--log-every", t.log_every, "steps between log records")
      ->capture_default_str()
      ->check(integer_in(1));
  app.add_option("--nonfinite", t.nonfinite,
                 "a step whose loss or gradient is not finite (NaN or inf): stop (end the run "
                 "with an error naming the epoch, step and rank; the last checkpoint is kept) or "
                 "skip (no update, as a gradient scaler does; counted in summary.json)")
      ->capture_default_str()
      ->check(CLI::IsMember({"stop", "skip"}));
  app.add_option("--nonfinite-max-skips", t.nonfinite_max_skips,
                 "skip: stop with an error after this many non-finite steps in a row")
      ->capture_default_str()
      ->check(integer_in(1));
  app.add_option("--evals-per-epoch", t.evals_per_epoch,
                 "test evaluations per epoch, evenly spaced (for accuracy-versus-FLOPs curves)")
      ->capture_default_str()
      ->check(integer_in(1, 1000000));
}

void add_runtime_flags(CLI::App& app, CommonOptions& o) {
  app.add_option("--device", o.train.device, "cpu, cuda or cuda:N")->capture_default_str();
  app.add_option("--threads", o.threads, "intra-op threads (0: cores / local workers)")
      ->check(integer_in(0, 4096));
  app.add_option("--precision", o.precision,
                 "fp32, bf16 or fp16: bf16/fp16 compute under autocast with fp32 weights, "
                 "optimizer state and loss (bf16 needs a CPU with avx512_bf16/amx_bf16, or CUDA; "
                 "fp16 needs CUDA and scales the loss)")
      ->capture_default_str();
  app.add_option("--matmul-kernel", o.matmul_kernel,
                 "auto, blas or onednn: the kernel of fp32 linear layers on a CPU (auto: oneDNN "
                 "where built and the CPU has AVX-512, else the BLAS libtorch links)")
      ->capture_default_str();
  app.add_option("--bf16-kernel", o.bf16_kernel,
                 "auto, native or fp32-units: how --precision bf16 multiplies on a CPU (linear, "
                 "attention, convolution); both round operands to bf16 and sum in fp32. native: "
                 "the CPU's bf16 instructions; fp32-units: the fp32 kernel on the widened "
                 "operands (auto: native where the CPU lists amx_bf16, else fp32-units)")
      ->capture_default_str();
  app.add_option("--loss-scale", o.loss_scale,
                 "auto (dynamic under fp16, off otherwise), off or dynamic: the loss is scaled "
                 "before backward, the gradients unscaled before the step, a step whose scaled "
                 "gradients overflow is skipped with the scale halved; it doubles after 2000 clean "
                 "steps")
      ->capture_default_str();
  app.add_option("--loss-scale-init", o.loss_scale_init,
                 "the dynamic loss scale's first value, a power of two")
      ->capture_default_str();
  app.add_flag("--quiet", o.train.quiet, "no progress output");
}

DistMode parse_dist_mode(const std::string& name) {
  if (name == "none") return DistMode::None;
  if (name == "ddp") return DistMode::Ddp;
  if (name == "pipeline") return DistMode::Pipeline;
  if (name == "sdp") return DistMode::Sdp;
  throw UsageError("--dist must be none, ddp, pipeline or sdp, got '" + name + "'");
}

const char* mode_name(DistMode mode) {
  switch (mode) {
    case DistMode::None:
      return "none";
    case DistMode::Ddp:
      return "ddp";
    case DistMode::Pipeline:
      return "pipeline";
    case DistMode::Sdp:
      return "sdp";
  }
  return "?";
}

void add_dist_flags(CLI::App& app, DistFlags& d) {
  app.add_option("--dist", d.mode,
                 "none, ddp (data parallel), pipeline (model parallel) or sdp (subnetwork data "
                 "parallel); workers come from `tessera launch` or torchrun")
      ->capture_default_str();
  app.add_option("--dist-init", d.config.init,
                 "env (MASTER_ADDR/MASTER_PORT) or file:PATH (one host)")
      ->capture_default_str();
  app.add_option("--dist-iface", d.config.iface,
                 "network interface for Gloo (default: loopback for a local master)");
  app.add_option("--dist-timeout", d.config.timeout_seconds,
                 "seconds before a missing or dead worker is an error")
      ->capture_default_str()
      ->check(real_in({0.0, 7 * 24 * 3600.0, true, false}));
  app.add_option("--rank", d.config.rank, "this worker's rank (default: $RANK)")
      ->check(integer_in(0, kMaxWorldSize - 1));
  app.add_option("--world-size", d.config.world_size, "number of workers (default: $WORLD_SIZE)")
      ->check(integer_in(1, kMaxWorldSize));
  app.add_option("--bucket-mb", d.bucket_mb, "ddp: gradient all-reduce bucket size in MiB")
      ->capture_default_str()
      ->check(real_in({0.0, 65536.0, true, false}));
  app.add_flag("--no-overlap", d.no_overlap,
               "ddp: all-reduce after backward instead of overlapping it (for comparison)");
  app.add_option("--comm-precision", d.comm_precision,
                 "ddp, sdp: gradients on the wire, fp32 or bf16 (half the bytes; summed in fp32 at "
                 "each hop, sample counts kept in fp32)")
      ->capture_default_str()
      ->check(CLI::IsMember({"fp32", "bf16"}));
  app.add_option("--micro-batches", d.micro_batches, "pipeline: micro-batches per batch")
      ->capture_default_str()
      ->check(integer_in(1, 1 << 20));
  app.add_option("--sdp-level", d.sdp_level,
                 "sdp: block (residual branches) or neuron (neurons, channels, heads)")
      ->capture_default_str();
  app.add_option("--coverage", d.coverage,
                 "sdp: fraction of the units each worker holds; coverage x workers must be whole")
      ->capture_default_str()
      ->check(real_in({0.0, 1.0, true, false}));
  app.add_option("--sdp-masking", d.sdp_masking,
                 "sdp: forward (each worker builds only its subnetwork) or backward (each "
                 "worker runs the full model forward; gradients, optimizer state and updates only "
                 "for its subnetwork, other units refreshed from a holder after every step)")
      ->capture_default_str();
  app.add_option("--sdp-sync", d.sdp_sync,
                 "sdp: grads (average held entries' gradients among their holders before each "
                 "step; measured better with Adam) or params (average the parameters after it, "
                 "the seed article's wording)")
      ->capture_default_str();
  app.add_flag("--sdp-rescale,!--no-sdp-rescale", d.sdp_rescale,
               "sdp: scale masked units' outputs by the coverage in the assembled model (as "
               "dropout / stochastic depth do at test time); default: on under forward masking "
               "(measured better), off under backward masking (which refuses it)");
  app.add_option("--sdp-rescale-factor", d.sdp_rescale_factor,
                 "sdp, with --sdp-rescale: multiply masked units' outputs by this instead of the "
                 "coverage (0: the coverage)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1e6));
  app.add_option("--sdp-redraw-epochs", d.sdp_redraw_epochs,
                 "sdp, forward masking: draw a new plan every N epochs; each worker then gets "
                 "the units it newly holds, with their optimizer state, from an old holder (0: "
                 "one plan for the whole run, as in the seed article)")
      ->capture_default_str()
      ->check(integer_in(0, 1000000));
  app.add_option("--sdp-redraw-steps", d.sdp_redraw_steps,
                 "sdp, forward masking: the same every N optimizer steps (0: not by steps)")
      ->capture_default_str()
      ->check(integer_in(0));
  app.add_option("--sdp-eval", d.sdp_eval,
                 "sdp: what evaluations measure: assembled (the full model rebuilt from the "
                 "subnetworks on rank 0, the model saved) or ensemble (forward masking: the "
                 "workers' subnetworks together, the mean of their predicted distributions; no "
                 "worker builds the full model; inference costs workers x coverage full models)")
      ->capture_default_str();
  app.add_option("--sdp-bn-batches", d.sdp_bn_batches,
                 "sdp: training batches over which rank 0 re-estimates the assembled model's "
                 "batch-norm statistics (0: keep those of each entry's lowest-ranked holder; with "
                 "backward masking rank 0's own)")
      ->capture_default_str()
      ->check(integer_in(0));
}

void apply_measured_defaults(const CLI::App& app, DistFlags& dist, train::TrainConfig& train) {
  if (dist.mode == "sdp" && app.count("--schedule") == 0) train.schedule.name = "constant";
  if (app.count("--sdp-rescale") == 0) dist.sdp_rescale = dist.sdp_masking == "forward";
}

namespace {
std::string scalar_text(const nlohmann::json& value, const std::string& key,
                        const std::string& origin) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_boolean()) return value.get<bool>() ? "true" : "false";
  if (value.is_number()) return value.dump();
  throw UsageError(origin + ": value of '" + key + "' must be a string, number, boolean or list");
}
}  // namespace

std::vector<std::string> recorded_args(const std::vector<std::string>& args) {
  std::vector<std::string> recorded;
  for (const auto& a : args)
    if (a != "--resume") recorded.push_back(a);
  return recorded;
}

std::vector<std::string> json_to_flags(const nlohmann::json& object, const std::string& origin) {
  if (!object.is_object()) throw UsageError(origin + ": expected a JSON object of flags");
  std::vector<std::string> flags;
  for (const auto& [key, value] : object.items()) {
    std::string text;
    if (value.is_array()) {
      for (const auto& item : value)
        text += (text.empty() ? "" : ",") + scalar_text(item, key, origin);
    } else {
      text = scalar_text(value, key, origin);
    }
    std::string name = key;
    std::replace(name.begin(), name.end(), '_', '-');
    flags.push_back("--" + name + "=" + text);
  }
  return flags;
}

void apply_family_defaults(const CLI::App& app, CommonOptions& o) {
  if (o.model.arch != "llama") return;
  const auto unset = [&](const char* flag) { return app.count(flag) == 0; };
  if (unset("--data")) o.data.name = "text";
  if (unset("--mlp-dim")) o.model.mlp_dim = 320;
  if (unset("--seq-len")) o.data.seq_len = kLlamaSeqLen;
  auto& t = o.train;
  if (unset("--epochs")) t.epochs = kLlamaEpochs;
  if (unset("--batch-size")) t.batch_size = kLlamaBatchSize;
  if (unset("--eval-batch-size")) t.eval_batch_size = 64;
  if (unset("--optimizer")) t.optimizer.name = "adamw";
  if (unset("--lr")) t.optimizer.lr = 2e-3;
  if (unset("--weight-decay")) t.optimizer.weight_decay = 0.01;
  if (unset("--schedule")) t.schedule.name = "cosine";
  if (unset("--warmup-steps")) t.schedule.warmup_steps = 100;
  if (unset("--min-lr-ratio")) t.schedule.min_lr_ratio = 0.1;
  if (unset("--clip-grad-norm")) t.clip_grad_norm = 1.0;
}

data::TrainTest load_data_for_model(CommonOptions& options, bool verbose) {
  metrics::Timer load_timer;
  data::TrainTest data = data::load_dataset(options.data);
  if (verbose && data.train.windows) {
    const auto& tokens = data.test.windows->tokens;
    std::fprintf(
        stderr,
        "data: text %lld train / %lld validation windows of %lld bytes (%lld / %lld bytes; "
        "unigram %.3f bits/byte on validation) (%.1f s)\n",
        static_cast<long long>(data.train.size()), static_cast<long long>(data.test.size()),
        static_cast<long long>(options.data.seq_len),
        static_cast<long long>(data.train.windows->tokens.size(0)),
        static_cast<long long>(tokens.size(0)), metrics::unigram_bits(tokens),
        load_timer.seconds());
  } else if (verbose)
    std::fprintf(stderr, "data: %s %lld train / %lld test samples, %lld classes (%.1f s)\n",
                 options.data.name.c_str(), static_cast<long long>(data.train.size()),
                 static_cast<long long>(data.test.size()),
                 static_cast<long long>(data.train.num_classes), load_timer.seconds());
  options.model.input_shape = data.train.sample_shape();
  options.model.num_classes = data.train.num_classes;
  return data;
}

std::vector<std::string> expand_config_files(const std::vector<std::string>& args) {
  std::vector<std::string> from_files;
  std::vector<std::string> rest;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string path;
    if (args[i] == "--config") {
      require(i + 1 < args.size(), "--config needs a file name");
      path = args[++i];
    } else if (args[i].rfind("--config=", 0) == 0) {
      path = args[i].substr(9);
    } else {
      rest.push_back(args[i]);
      continue;
    }
    nlohmann::json object;
    try {
      object = train::read_json_file(path);
    } catch (const Error& e) {
      throw UsageError(std::string("--config: ") + e.what());
    }
    for (auto& flag : json_to_flags(object, path)) from_files.push_back(std::move(flag));
  }
  from_files.insert(from_files.end(), rest.begin(), rest.end());
  return from_files;
}

int64_t configure_threads(int64_t requested) {
  require(requested >= 0, "--threads must be non-negative");
  int64_t threads = requested;
  if (threads == 0) {
    int64_t local_workers = 1;
    if (const char* env = std::getenv("LOCAL_WORLD_SIZE"))
      local_workers = std::max(1, std::atoi(env));
    threads = std::max<int64_t>(1, std::thread::hardware_concurrency() / local_workers);
  }
  at::set_num_threads(static_cast<int>(threads));
  return threads;
}

std::unique_ptr<CLI::App> make_app(const std::string& description, const std::string& name) {
  auto app = std::make_unique<CLI::App>(description, name);
  app->option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app->set_help_flag("-h,--help", "print this help and exit");
  app->footer(
      "Every flag may also come from --config FILE.json, a JSON object keyed by flag name\n"
      "(e.g. {\"epochs\": 3, \"hidden\": [256, 256]}); flags on the command line override it.");
  return app;
}

bool parse(CLI::App& app, std::vector<std::string> args) {
  std::reverse(args.begin(), args.end());  // CLI11 takes a reversed vector
  try {
    app.parse(args);
  } catch (const CLI::CallForHelp&) {
    std::cout << app.help();
    return false;
  } catch (const CLI::ParseError& e) {
    throw UsageError(std::string(e.what()) + " (see " + app.get_name() + " --help)");
  }
  return true;
}

}  // namespace tessera::cli
