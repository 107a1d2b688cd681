// Every numeric flag of every subcommand is checked where CLI11 parses it (checked_flags.h): a
// value that is not finite, not a number, out of range or inconsistent with another flag is a
// usage error (exit code 2) naming the flag and the accepted range, given on the command line or
// in a --config file. Driven through tessera's real entry point (cli::main), in-process: the
// table is long and parsing fails before anything loads.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "../command_output.h"
#include "../test_support.h"
#include "tessera/cli/main.h"

namespace flag_validation_test {

struct Outcome {
  int code = 0;
  std::string errors;
};

// Runs `tessera <args...>` in this process and captures its stderr.
Outcome tessera_main(std::vector<std::string> args) {
  args.insert(args.begin(), "tessera");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  ::testing::internal::CaptureStderr();
  Outcome outcome;
  outcome.code = tessera::cli::main(static_cast<int>(argv.size()), argv.data());
  outcome.errors = ::testing::internal::GetCapturedStderr();
  return outcome;
}

// The arguments a subcommand needs besides the flag under test, before it.
std::vector<std::string> base(const std::string& command) {
  if (command == "pnn-worker") return {"pnn-worker", "--partition", "0"};
  if (command == "eval" || command == "generate") return {command, "--checkpoint", "absent.pt"};
  return {command};
}

std::vector<std::string> with_flag(const std::string& command, const std::string& flag,
                                   const std::string& value) {
  // --flag=value: "-1" as a separate argument would read as a short flag of its own.
  std::vector<std::string> args = base(command);
  args.push_back(flag + "=" + value);
  if (command == "launch") args.insert(args.end(), {"--", "true"});
  return args;
}

// Kinds of flags and values each must refuse.
const std::vector<std::string> kNotPositive = {"inf", "-inf", "nan", "0", "-1", "abc", "1e400"};
const std::vector<std::string> kNotNonNegative = {"inf", "nan", "-1", "-1e-9", "x"};
const std::vector<std::string> kNotBelowOne = {"1", "1.5", "-0.1", "nan", "inf"};
const std::vector<std::string> kNotCount = {"0",   "-1",  "1.5", "1e30",
                                            "nan", "inf", "",    "99999999999999999999"};
const std::vector<std::string> kNotCountOrZero = {"-1", "2.5", "1e30", "nan", "0x10"};
const std::vector<std::string> kNotSeed = {"-1", "1.5", "nan", "99999999999999999999"};

struct FlagCase {
  std::vector<std::string> commands;
  std::string flag;
  std::vector<std::string> bad;
};

std::vector<FlagCase> cases() {
  const std::vector<std::string> trains = {"train", "pnn", "pnn-worker"};
  const std::vector<std::string> all = {"train", "pnn", "pnn-worker", "eval"};
  const std::vector<std::string> pnns = {"pnn", "pnn-worker"};
  return {
      // data (eval reads a data set too)
      {all, "--seq-len", kNotCount},
      {all, "--text-val-fraction", {"0", "1", "-0.5", "nan", "inf"}},
      {all, "--synthetic-train", kNotCount},
      {all, "--synthetic-test", kNotCount},
      {all, "--synthetic-classes", {"1", "0", "-2", "2.5", "1e30"}},
      {all, "--synthetic-shape", {"1,0,8", "1,-8", "1,8,x", "1,,8", "8,", "nan", "1e30"}},
      {all, "--synthetic-seed", kNotSeed},
      {all, "--limit-train", kNotCountOrZero},
      {all, "--limit-test", kNotCountOrZero},
      // model
      {trains, "--hidden", {"64,0", "-1", "64,1.5", "nan", "1e30", "64,,64"}},
      {trains, "--depth", {"-1", "1.5", "1e30"}},
      {trains, "--width", {"-1", "inf", "nan", "1e30"}},
      {trains, "--patch-size", kNotCount},
      {trains, "--embed-dim", kNotCount},
      {trains, "--heads", kNotCount},
      {trains, "--mlp-dim", kNotCount},
      {trains, "--dropout", kNotBelowOne},
      {trains, "--drop-path", kNotBelowOne},
      // training
      {trains, "--epochs", kNotCountOrZero},
      {trains, "--batch-size", kNotCount},
      {trains, "--eval-batch-size", kNotCount},
      {trains, "--lr", kNotPositive},
      {trains, "--weight-decay", kNotNonNegative},
      {trains, "--momentum", kNotBelowOne},
      {trains, "--beta1", kNotBelowOne},
      {trains, "--beta2", kNotBelowOne},
      {trains, "--eps", kNotPositive},
      {trains, "--warmup-steps", kNotCountOrZero},
      {trains, "--step-every", kNotCountOrZero},
      {trains, "--gamma", kNotPositive},
      {trains, "--min-lr-ratio", {"1.01", "-0.1", "nan", "inf"}},
      {trains, "--clip-grad-norm", kNotNonNegative},
      {trains, "--augment-crop", {"-1", "1.5", "1e30", "2000"}},
      {trains, "--seed", kNotSeed},
      {trains, "--checkpoint-every", kNotCountOrZero},
      {trains, "--log-every", kNotCount},
      {trains, "--evals-per-epoch", kNotCount},
      {trains, "--nonfinite", {"ignore", "", "STOP"}},
      {trains, "--nonfinite-max-skips", kNotCount},
      {{"train", "pnn", "pnn-worker", "eval", "generate"}, "--threads", {"-1", "1.5", "1e30"}},
      // dist (train)
      {{"train"}, "--dist-timeout", {"0", "-1", "inf", "nan", "1e30"}},
      {{"train"}, "--rank", {"-1", "1.5", "1e30", "70000"}},
      {{"train"}, "--world-size", {"0", "-1", "1e30", "70000"}},
      {{"train"}, "--bucket-mb", {"0", "-1", "inf", "nan", "1e30"}},
      {{"train"}, "--micro-batches", kNotCount},
      {{"train"}, "--coverage", {"0", "1.5", "-0.5", "nan", "inf"}},
      {{"train"}, "--sdp-redraw-epochs", kNotCountOrZero},
      {{"train"}, "--sdp-redraw-steps", kNotCountOrZero},
      {{"train"}, "--sdp-bn-batches", kNotCountOrZero},
      // pnn and its workers
      {pnns, "--cuts", {"0", "-1", "3,x", "nan", "1e30"}},
      {pnns, "--partitions", {"1", "0", "-2", "1e30"}},
      {pnns, "--sil-kappa", kNotPositive},
      {pnns, "--sil-seed", kNotSeed},
      {pnns, "--sil-noise", kNotNonNegative},
      {pnns, "--sil-space-size", kNotCount},
      {pnns, "--partition-epochs", {"1,-1", "nan", "1.5"}},
      {pnns, "--partition-batch-size", {"64,0", "nan", "-1"}},
      {pnns, "--partition-lr", {"0.1,inf", "nan", "0.1,0", "-0.1", "0.1,1e400"}},
      {pnns, "--recovery-epochs", kNotCountOrZero},
      {pnns, "--recovery-lr", kNotNonNegative},
      // launch
      {{"launch"}, "--nproc-per-node", kNotCount},
      {{"launch"}, "--nnodes", kNotCount},
      {{"launch"}, "--node-rank", {"-1", "1.5", "1e30"}},
      {{"launch"}, "--master-port", {"-1", "65536", "1e30", "nan"}},
      {{"launch"}, "--grace", {"-1", "inf", "nan", "1e30"}},
      // eval and generate
      {{"eval"}, "--batch-size", kNotCount},
      {{"generate"}, "--tokens", {"-1", "1.5", "1e30", "nan"}},
      {{"generate"}, "--temperature", {"-1", "inf", "nan", "1e30"}},
      {{"generate"}, "--top-k", {"-1", "1.5", "1e30"}},
      {{"generate"}, "--seed", kNotSeed},
  };
}

std::string write_config(const std::string& dir, const std::string& name, const std::string& json) {
  const std::string path = dir + "/" + name;
  std::ofstream(path) << json;
  return path;
}

TEST(FlagValidation, EveryNumericFlagRefusesBadValuesNamingTheFlag) {
  int checked = 0;
  for (const FlagCase& c : cases())
    for (const std::string& command : c.commands)
      for (const std::string& value : c.bad) {
        const Outcome o = tessera_main(with_flag(command, c.flag, value));
        EXPECT_EQ(o.code, 2) << command << " " << c.flag << " '" << value << "': " << o.errors;
        EXPECT_NE(o.errors.find(c.flag), std::string::npos)
            << command << " " << c.flag << " '" << value << "': " << o.errors;
        ++checked;
      }
  EXPECT_GT(checked, 500);
}

TEST(FlagValidation, TheMessageGivesTheAcceptedRangeAndTheValue) {
  Outcome o = tessera_main({"train", "--lr", "inf"});
  EXPECT_NE(o.errors.find("--lr: must be a finite number > 0, got 'inf'"), std::string::npos)
      << o.errors;
  o = tessera_main({"train", "--coverage", "1.5"});
  EXPECT_NE(o.errors.find("--coverage: must be a finite number in (0, 1], got '1.5'"),
            std::string::npos)
      << o.errors;
  o = tessera_main({"launch", "--master-port", "65536", "--", "true"});
  EXPECT_NE(o.errors.find("must be an integer in [0, 65535], got '65536'"), std::string::npos)
      << o.errors;
  o = tessera_main({"train", "--hidden", "64,0"});
  EXPECT_NE(o.errors.find("--hidden: item '0' of '64,0' must be an integer in [1, 1048576]"),
            std::string::npos)
      << o.errors;
}

TEST(FlagValidation, TheBinaryRefusesANonFiniteLearningRateAtParseTime) {
  for (const char* value : {"inf", "nan", "-inf", "1e400"}) {
    const auto r = tessera::testing::run_command(std::string(TESSERA_BINARY) + " train --lr " +
                                                 value + " --data synthetic 2>&1");
    EXPECT_EQ(r.code, 2) << value << ": " << r.output;
    EXPECT_NE(r.output.find("--lr: must be a finite number > 0"), std::string::npos) << r.output;
    EXPECT_EQ(r.output.find("data:"), std::string::npos) << "loaded data first: " << r.output;
  }
}

TEST(FlagValidation, ConfigFileValuesAreCheckedLikeFlags) {
  const std::string dir = tessera::testing::fresh_dir("cli_flag_config");
  const std::vector<std::pair<std::string, std::string>> bad = {
      {R"({"lr": "inf"})", "--lr"},
      {R"({"lr": "nan"})", "--lr"},
      {R"({"lr": -0.1})", "--lr"},
      {R"({"momentum": 1})", "--momentum"},
      {R"({"hidden": [64, 0]})", "--hidden"},
      {R"({"epochs": -1})", "--epochs"},
      {R"({"epochs": 1.5})", "--epochs"},
      {R"({"batch_size": 1e30})", "--batch-size"},
      {R"({"coverage": 0})", "--coverage"},
      {R"({"nonfinite": "ignore"})", "--nonfinite"},
  };
  int index = 0;
  for (const auto& [json, flag] : bad) {
    const std::string path = write_config(dir, "c" + std::to_string(index++) + ".json", json);
    for (const char* command : {"train", "pnn"}) {
      const Outcome o = tessera_main({command, "--config", path});
      EXPECT_EQ(o.code, 2) << json << ": " << o.errors;
      EXPECT_NE(o.errors.find(flag), std::string::npos) << json << ": " << o.errors;
    }
  }
}

TEST(FlagValidation, InconsistentFlagsAreRefusedBeforeAnythingLoads) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> bad = {
      {{"train", "--model", "vit", "--embed-dim", "128", "--heads", "3"}, "--heads 3 must divide"},
      {{"pnn", "--model", "vit", "--embed-dim", "100", "--heads", "8"}, "--heads 8 must divide"},
      {{"train", "--model", "llama", "--embed-dim", "96", "--heads", "32"}, "must be even"},
      {{"train", "--rank", "2", "--world-size", "2"}, "--rank 2 must be below --world-size 2"},
      {{"train", "--dist", "pipeline", "--batch-size", "4", "--micro-batches", "8"},
       "--micro-batches 8 must not exceed --batch-size 4"},
      {{"train", "--dist", "sdp", "--sdp-redraw-epochs", "1", "--sdp-redraw-steps", "5"},
       "--sdp-redraw-epochs and --sdp-redraw-steps"},
      {{"train", "--optimizer", "sgd", "--momentum", "0", "--nesterov"},
       "--nesterov needs a positive --momentum"},
      {{"launch", "--nnodes", "2", "--node-rank", "2", "--", "true"}, "--node-rank"},
      {{"train", "--model", "vit", "--tie-embeddings"}, "--tie-embeddings is for --model llama"},
      {{"train", "--comm-precision", "bf16"}, "--comm-precision bf16 is for --dist ddp"},
      {{"train", "--dist", "sdp", "--sdp-sync", "params", "--comm-precision", "bf16"},
       "--sdp-sync grads"},
      {{"pnn", "--model", "llama", "--tie-embeddings"}, "--tie-embeddings: PNN puts"},
      {{"train", "--model", "llama", "--tie-embeddings", "--dist", "pipeline"},
       "--tie-embeddings: the pipeline puts"},
      {{"train", "--precision", "fp16"}, "--precision fp16 needs a CUDA device"},
      {{"pnn", "--precision", "fp16"}, "--precision fp16 needs a CUDA device"},
      {{"train", "--loss-scale", "static"}, "--loss-scale must be auto, off or dynamic"},
      {{"train", "--matmul-kernel", "mkl"}, "--matmul-kernel must be auto, blas or onednn"},
      {{"pnn", "--matmul-kernel", ""}, "--matmul-kernel must be auto, blas or onednn"},
      {{"train", "--bf16-kernel", "amx"}, "--bf16-kernel must be auto, native or fp32-units"},
      {{"pnn", "--bf16-kernel", "bf16"}, "--bf16-kernel must be auto, native or fp32-units"},
      {{"train", "--loss-scale", "dynamic", "--loss-scale-init", "1000"},
       "--loss-scale-init must be a positive power of two"},
  };
  for (const auto& [args, message] : bad) {
    const Outcome o = tessera_main(args);
    EXPECT_EQ(o.code, 2) << args[1] << ": " << o.errors;
    EXPECT_NE(o.errors.find(message), std::string::npos) << o.errors;
  }
}

TEST(FlagValidation, ValuesAtTheEdgesOfTheirRangesAreAccepted) {
  const std::string dir = tessera::testing::fresh_dir("cli_flag_good");
  const std::vector<std::string> train = {"train",
                                          "--data",
                                          "synthetic",
                                          "--synthetic-train",
                                          "64",
                                          "--synthetic-test",
                                          "32",
                                          "--synthetic-shape",
                                          "1,4,4",
                                          "--synthetic-classes",
                                          "2",
                                          "--synthetic-seed",
                                          "18446744073709551615",
                                          "--hidden",
                                          "8",
                                          "--batch-size",
                                          "32",
                                          "--eval-batch-size",
                                          "1",
                                          "--epochs",
                                          "1",
                                          "--momentum",
                                          "0",
                                          "--beta1",
                                          "0",
                                          "--beta2",
                                          "0.999999",
                                          "--eps",
                                          "1e-30",
                                          "--weight-decay",
                                          "0",
                                          "--min-lr-ratio",
                                          "1",
                                          "--clip-grad-norm",
                                          "0",
                                          "--warmup-steps",
                                          "0",
                                          "--step-every",
                                          "0",
                                          "--gamma",
                                          "1e-9",
                                          "--dropout",
                                          "0.999",
                                          "--limit-train",
                                          "0",
                                          "--limit-test",
                                          "0",
                                          "--checkpoint-every",
                                          "0",
                                          "--log-every",
                                          "1",
                                          "--evals-per-epoch",
                                          "1",
                                          "--seed",
                                          "0",
                                          "--nonfinite",
                                          "skip",
                                          "--nonfinite-max-skips",
                                          "1",
                                          "--coverage",
                                          "1",
                                          "--bucket-mb",
                                          "0.001",
                                          "--dist-timeout",
                                          "0.5",
                                          "--threads",
                                          "1",
                                          "--quiet",
                                          "--run-dir",
                                          dir + "/run"};
  Outcome o = tessera_main(train);
  ASSERT_EQ(o.code, 0) << o.errors;
  o = tessera_main({"eval", "--checkpoint", dir + "/run/checkpoint.pt", "--data", "synthetic",
                    "--synthetic-train", "64", "--synthetic-test", "32", "--synthetic-shape",
                    "1,4,4", "--synthetic-classes", "2", "--batch-size", "1", "--threads", "1"});
  EXPECT_EQ(o.code, 0) << o.errors;
  // Past the flags, generate refuses the checkpoint itself (an mlp), not a value.
  o = tessera_main({"generate", "--checkpoint", dir + "/run/checkpoint.pt", "--tokens", "0",
                    "--temperature", "0", "--top-k", "0", "--seed", "18446744073709551615",
                    "--threads", "1"});
  EXPECT_NE(o.errors.find("generate needs a language model"), std::string::npos) << o.errors;
  o = tessera_main({"launch", "-n", "1", "--grace", "0", "--master-port", "0", "--", "true"});
  EXPECT_EQ(o.code, 0) << o.errors;
}

}  // namespace flag_validation_test
