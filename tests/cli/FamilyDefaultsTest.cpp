// cli::apply_family_defaults: with --model llama the flags a user did not give take the language
// model's defaults (the ones docs/results.md measured), the flags given keep their values, and
// other families keep the flags' own defaults.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tessera/cli/options.h"

namespace family_defaults_test {

using tessera::cli::CommonOptions;

// Parses `flags` as `tessera train` does and applies the family defaults.
CommonOptions parsed(const std::vector<std::string>& flags) {
  CommonOptions options;
  auto app = tessera::cli::make_app("test", "tessera train");
  tessera::cli::add_data_flags(*app, options);
  tessera::cli::add_model_flags(*app, options);
  tessera::cli::add_train_flags(*app, options);
  EXPECT_TRUE(tessera::cli::parse(*app, flags));
  tessera::cli::apply_family_defaults(*app, options);
  return options;
}

TEST(FamilyDefaults, LlamaGetsTheMeasuredLanguageModelSettings) {
  const auto o = parsed({"--model", "llama"});
  EXPECT_EQ(o.data.name, "text");
  EXPECT_EQ(o.data.seq_len, tessera::cli::kLlamaSeqLen);
  EXPECT_EQ(o.train.batch_size, tessera::cli::kLlamaBatchSize);
  EXPECT_EQ(o.train.epochs, tessera::cli::kLlamaEpochs);
  EXPECT_EQ(o.train.optimizer.name, "adamw");
  EXPECT_EQ(o.train.schedule.name, "cosine");
}

TEST(FamilyDefaults, GivenFlagsWinOverTheFamilyDefaults) {
  const auto o = parsed({"--model", "llama", "--seq-len", "128", "--batch-size", "8", "--epochs",
                         "1", "--optimizer", "sgd"});
  EXPECT_EQ(o.data.seq_len, 128);
  EXPECT_EQ(o.train.batch_size, 8);
  EXPECT_EQ(o.train.epochs, 1);
  EXPECT_EQ(o.train.optimizer.name, "sgd");
}

TEST(FamilyDefaults, OtherFamiliesKeepTheFlagDefaults) {
  const CommonOptions untouched;
  const auto o = parsed({"--model", "mlp"});
  EXPECT_EQ(o.data.name, untouched.data.name);
  EXPECT_EQ(o.data.seq_len, untouched.data.seq_len);
  EXPECT_EQ(o.train.batch_size, untouched.train.batch_size);
  EXPECT_EQ(o.train.epochs, untouched.train.epochs);
}

}  // namespace family_defaults_test
