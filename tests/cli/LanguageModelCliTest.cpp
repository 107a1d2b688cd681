// `tessera train --model llama` on a tiny text corpus, then `eval` and `generate` from its
// checkpoint, as a user would run them.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "../command_output.h"
#include "../test_support.h"
#include "../text_support.h"
#include "tessera/cli/options.h"

namespace language_model_cli_test {

using tessera::testing::fresh_dir;
using tessera::testing::read_json;
using tessera::testing::run_command;
using tessera::testing::sample_records;
using tessera::testing::write_fortune_file;

tessera::testing::CommandResult run_tessera(const std::string& args) {
  return run_command(std::string(TESSERA_BINARY) + " " + args + " 2>&1");
}

TEST(LanguageModelCli, TrainEvalAndGenerate) {
  const std::string dir = fresh_dir("cli_llama");
  write_fortune_file(dir + "/corpus", sample_records(300));
  const std::string data = "--data-path " + dir + "/corpus --seq-len 16";
  auto r = run_tessera("train --model llama " + data +
                       " --depth 2 --embed-dim 16 --heads 2 --mlp-dim 24 --epochs 2 --threads 1 "
                       "--quiet --run-dir " +
                       dir + "/run");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("bits/byte"), std::string::npos) << r.output;
  const auto summary = read_json(dir + "/run/summary.json");
  for (const char* key :
       {"test_bits_per_byte", "test_perplexity", "tokens_per_second", "test_unigram_bits_per_byte"})
    EXPECT_TRUE(summary.contains(key)) << key;
  // The llama defaults apply to flags not given: AdamW, cosine, kLlamaBatchSize.
  const auto config = read_json(dir + "/run/config.json");
  EXPECT_EQ(config["train"]["optimizer"]["name"], "adamw");
  EXPECT_EQ(config["train"]["schedule"]["name"], "cosine");
  EXPECT_EQ(config["train"]["batch_size"], tessera::cli::kLlamaBatchSize);
  EXPECT_EQ(config["data"], "text");
  // Two epochs of a tiny model already beat a uniform guess over 256 bytes (8 bits).
  EXPECT_LT(summary["test_bits_per_byte"].get<double>(), 8.0);

  // eval finds the data (text, the checkpoint's window) by itself.
  r = run_tessera("eval --checkpoint " + dir + "/run/checkpoint.pt --data-path " + dir +
                  "/corpus --output " + dir + "/eval.json");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NEAR(read_json(dir + "/eval.json")["test_loss"].get<double>(),
              summary["test_loss"].get<double>(), 1e-5);

  const std::string generate =
      "generate --checkpoint " + dir +
      "/run/checkpoint.pt --prompt Record --tokens 40 --seed 3 --threads 1";
  r = run_tessera(generate);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(r.output.rfind("Record", 0), 0u) << r.output;
  EXPECT_GE(r.output.size(), 6u + 40u);
  EXPECT_EQ(run_tessera(generate).output, r.output);  // the same seed, the same text

  // Exported to safetensors, the model evaluates and generates exactly as from its checkpoint.
  const std::string exported = dir + "/model.safetensors";
  const auto e = run_tessera("export --checkpoint " + dir + "/run/checkpoint.pt --out " + exported);
  ASSERT_EQ(e.code, 0) << e.output;
  EXPECT_EQ(run_tessera("generate --checkpoint " + exported +
                        " --prompt Record --tokens 40 --seed 3 --threads 1")
                .output,
            r.output);
  const auto x = run_tessera("eval --checkpoint " + exported + " --data-path " + dir +
                             "/corpus --output " + dir + "/eval_exported.json");
  ASSERT_EQ(x.code, 0) << x.output;
  EXPECT_EQ(read_json(dir + "/eval_exported.json")["test_loss"],
            read_json(dir + "/eval.json")["test_loss"]);

  r = run_tessera("generate --checkpoint " + dir + "/missing.pt");
  EXPECT_NE(r.code, 0);
}

TEST(LanguageModelCli, PnnBothSchedulesJoinIntoAModelThatGenerates) {
  const std::string dir = fresh_dir("cli_llama_pnn");
  write_fortune_file(dir + "/corpus", sample_records(300));
  auto r = run_tessera("pnn --model llama --data-path " + dir +
                       "/corpus --seq-len 16 --depth 2 --embed-dim 16 --heads 2 --mlp-dim 24 "
                       "--cuts 2 --epochs 1 --recovery-epochs 1 --limit-train 64 --threads 1 "
                       "--quiet --pnn-schedule sequential,parallel --run-dir " +
                       dir + "/pnn");
  ASSERT_EQ(r.code, 0) << r.output;
  for (const char* schedule : {"sequential", "parallel"}) {
    const auto summary = read_json(dir + "/pnn/" + schedule + "/summary.json");
    EXPECT_GT(summary["test_loss"].get<double>(), 0.0) << schedule;
    // Bits per byte beside the loss, and a loss at every curve point (quality against FLOPs).
    EXPECT_NEAR(summary["test_bits_per_byte"].get<double>(),
                summary["test_loss"].get<double>() / std::log(2.0), 1e-9)
        << schedule;
    EXPECT_TRUE(summary.contains("joined_test_bits_per_byte")) << schedule;
    for (const auto& point : summary["curve"]) EXPECT_GT(point["loss"].get<double>(), 0.0);
    const auto g = run_tessera("generate --checkpoint " + dir + "/pnn/" + schedule +
                               "/checkpoint.pt --prompt Record --tokens 10 --threads 1");
    EXPECT_EQ(g.code, 0) << g.output;
  }
}

// Data parallel, pipeline and SDP (block and neuron level, both maskings) runs of the language
// model; every checkpoint is an ordinary one that generate reads.
TEST(LanguageModelCli, DistributedRunsReportBitsPerByteAndTheirCheckpointsGenerate) {
  const std::string dir = fresh_dir("cli_llama_dist");
  write_fortune_file(dir + "/corpus", sample_records(300));
  const std::string binary = TESSERA_BINARY;
  const std::string model = " train --model llama --data-path " + dir +
                            "/corpus --seq-len 16 --depth 2 --embed-dim 16 --heads 2 "
                            "--mlp-dim 24 --epochs 1 --limit-train 128 --threads 1 --quiet ";
  const std::vector<std::pair<std::string, std::string>> runs = {
      {"ddp", "--dist ddp"},
      {"pipeline", "--dist pipeline --micro-batches 2"},
      {"sdp_block", "--dist sdp --sdp-level block --coverage 0.5"},
      {"sdp_neuron", "--dist sdp --sdp-level neuron --coverage 0.5 --sdp-masking backward"},
      {"sdp_tied", "--dist sdp --sdp-level neuron --coverage 0.5 --tie-embeddings"},
  };
  for (const auto& [name, flags] : runs) {
    const auto r = run_command("timeout -s KILL 180 " + binary + " launch -n 2 -- " + binary +
                               model + flags + " --run-dir " + dir + "/" + name + " 2>&1");
    ASSERT_EQ(r.code, 0) << name << ": " << r.output;
    const auto summary = read_json(dir + "/" + name + "/summary.json");
    ASSERT_TRUE(summary.contains("test_bits_per_byte")) << name;
    EXPECT_NEAR(summary["test_bits_per_byte"].get<double>(),
                summary["test_loss"].get<double>() / std::log(2.0), 1e-9)
        << name;
    // Two steps from the initialisation: about a uniform guess over 256 bytes (8 bits).
    EXPECT_GT(summary["test_bits_per_byte"].get<double>(), 4.0) << name;
    EXPECT_LT(summary["test_bits_per_byte"].get<double>(), 9.0) << name;
    const auto g = run_tessera("generate --checkpoint " + dir + "/" + name +
                               "/checkpoint.pt --prompt Record --tokens 10 --threads 1");
    EXPECT_EQ(g.code, 0) << name << ": " << g.output;
  }
}

}  // namespace language_model_cli_test
