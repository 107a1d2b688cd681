// --precision bf16: autocast regions, fp32 master weights and state, the loss next to fp32's,
// checkpoints that cross precisions, every model family, and the refusal on CPUs without bf16.
#include <gtest/gtest.h>

#include <ATen/autocast_mode.h>

#include <cmath>
#include <cstdlib>
#include <optional>
#include <string>

#include "../test_support.h"
#include "../text_support.h"
#include "tessera/core/error.h"
#include "tessera/kernels/bf16_kernel.h"
#include "tessera/models/staged_model.h"
#include "tessera/train/autocast_scope.h"
#include "tessera/train/checkpoint.h"
#include "tessera/train/precision.h"
#include "tessera/train/trainer.h"

using namespace tessera;

namespace {

using tessera::testing::fresh_dir;
using tessera::testing::synthetic_8x8;

// Sets TESSERA_CPU_BF16 for the lifetime of the object, restoring what was there before.
class ForcedBf16Detection {
 public:
  explicit ForcedBf16Detection(const char* value) {
    if (const char* old = std::getenv("TESSERA_CPU_BF16")) previous_ = old;
    setenv("TESSERA_CPU_BF16", value, 1);
  }
  ~ForcedBf16Detection() {
    if (previous_)
      setenv("TESSERA_CPU_BF16", previous_->c_str(), 1);
    else
      unsetenv("TESSERA_CPU_BF16");
  }

 private:
  std::optional<std::string> previous_;
};

// Every bf16 test runs on both bf16 kernels (--bf16-kernel); this sets one and restores the other.
class Bf16KernelScope {
 public:
  explicit Bf16KernelScope(kernels::Bf16Kernel kernel) : previous_(kernels::bf16_kernel()) {
    kernels::set_bf16_kernel(kernel);
  }
  ~Bf16KernelScope() { kernels::set_bf16_kernel(previous_); }

 private:
  kernels::Bf16Kernel previous_;
};
constexpr kernels::Bf16Kernel kBf16Kernels[] = {kernels::Bf16Kernel::Native,
                                                kernels::Bf16Kernel::Fp32Units};

models::StagedModel precision_mlp(const data::Dataset& data, uint64_t seed) {
  models::ModelConfig config;
  config.input_shape = data.sample_shape();
  config.num_classes = data.num_classes;
  config.hidden = {64, 64};
  torch::manual_seed(seed);
  return models::build_model(config);
}

train::TrainConfig precision_config(train::Precision precision) {
  train::TrainConfig config;
  config.epochs = 1;
  config.batch_size = 64;
  config.seed = 3;
  config.quiet = true;
  config.optimizer.name = "adam";
  config.optimizer.lr = 1e-3;
  config.precision = precision;
  return config;
}

// The losses of the first `steps` steps on the first batches of `data`, in order.
std::vector<double> first_losses(train::Trainer& trainer, const data::Dataset& data,
                                 int64_t steps) {
  data::BatchIterator batches(data, data::in_order(64));
  std::vector<double> losses;
  data::Batch batch;
  while (static_cast<int64_t>(losses.size()) < steps && batches.next(batch))
    losses.push_back(trainer.train_step(batch));
  return losses;
}

}  // namespace

TEST(Precision, ParsesItsNamesAndRefusesOthers) {
  EXPECT_EQ(train::parse_precision("fp32"), train::Precision::Fp32);
  EXPECT_EQ(train::parse_precision("bf16"), train::Precision::Bf16);
  EXPECT_STREQ(train::precision_name(train::Precision::Bf16), "bf16");
  try {
    train::parse_precision("fp8");
    FAIL() << "fp8 accepted";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("--precision"), std::string::npos) << e.what();
  }
}

TEST(Precision, Bf16IsRefusedOnACpuWithoutNativeBf16) {
  const auto data = synthetic_8x8();
  ForcedBf16Detection no_bf16("0");
  EXPECT_FALSE(train::cpu_has_native_bf16());
  try {
    train::Trainer trainer(precision_mlp(data.train, 1), std::make_shared<train::Classification>(),
                           precision_config(train::Precision::Bf16), nullptr);
    FAIL() << "bf16 accepted without native bf16";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("avx512_bf16"), std::string::npos) << e.what();
  }
  // fp32 does not care.
  train::Trainer fp32(precision_mlp(data.train, 1), std::make_shared<train::Classification>(),
                      precision_config(train::Precision::Fp32), nullptr);
  ForcedBf16Detection garbage("yes");
  EXPECT_THROW(train::cpu_has_native_bf16(), UsageError);
}

TEST(Precision, AutocastScopeComputesLinearInBf16AndNestsAndRestores) {
  torch::manual_seed(0);
  torch::nn::Linear linear(8, 4);
  const torch::Tensor x = torch::randn({3, 8});
  const torch::Device cpu(torch::kCPU);
  EXPECT_EQ(linear(x).scalar_type(), torch::kFloat);
  {
    train::AutocastScope outer(train::Precision::Bf16, cpu);
    EXPECT_EQ(linear(x).scalar_type(), torch::kBFloat16);
    {
      train::AutocastScope inner(train::Precision::Bf16, cpu);
      EXPECT_EQ(linear(x).scalar_type(), torch::kBFloat16);
    }
    EXPECT_TRUE(at::autocast::is_cpu_enabled());  // the inner scope left the outer one on
    EXPECT_EQ(linear(x).scalar_type(), torch::kBFloat16);
    {
      train::AutocastScope off(train::Precision::Fp32, cpu);  // fp32: no effect
      EXPECT_EQ(linear(x).scalar_type(), torch::kBFloat16);
    }
  }
  EXPECT_FALSE(at::autocast::is_cpu_enabled());
  EXPECT_EQ(linear(x).scalar_type(), torch::kFloat);
  EXPECT_EQ(linear->weight.scalar_type(), torch::kFloat);
}

TEST(Precision, AutocastSeesTheWeightsAnOptimizerStepChanged) {
  // The outermost scope clears the cache of cast weights, so the next step's forward uses the
  // updated weights, not a stale bf16 copy.
  torch::manual_seed(0);
  torch::nn::Linear linear(8, 4);
  const torch::Tensor x = torch::randn({3, 8});
  const torch::Device cpu(torch::kCPU);
  torch::Tensor before;
  {
    train::AutocastScope autocast(train::Precision::Bf16, cpu);
    before = linear(x).to(torch::kFloat);
  }
  {
    torch::NoGradGuard no_grad;
    linear->weight.add_(1.0);
  }
  train::AutocastScope autocast(train::Precision::Bf16, cpu);
  const torch::Tensor after = linear(x).to(torch::kFloat);
  EXPECT_GT((after - before).abs().max().item<double>(), 0.5);
}

namespace {
// fp32 and bf16 trainers side by side: losses, master weights, gradients and state.
void expect_bf16_keeps_fp32_state_and_follows_fp32() {
  const auto data = synthetic_8x8();
  train::Trainer fp32(precision_mlp(data.train, 1), std::make_shared<train::Classification>(),
                      precision_config(train::Precision::Fp32), nullptr);
  train::Trainer bf16(precision_mlp(data.train, 1), std::make_shared<train::Classification>(),
                      precision_config(train::Precision::Bf16), nullptr);
  const auto initial = tessera::testing::snapshot(bf16.model());
  const std::vector<double> reference = first_losses(fp32, data.train, 8);
  const std::vector<double> mixed = first_losses(bf16, data.train, 8);
  ASSERT_EQ(mixed.size(), reference.size());
  for (size_t s = 0; s < reference.size(); ++s)
    EXPECT_NEAR(mixed[s], reference[s], 0.02 * reference[s]) << "step " << s;
  EXPECT_LT(mixed.back(), mixed.front());  // it learns

  const auto params = bf16.model()->parameters();
  for (size_t k = 0; k < params.size(); ++k) {
    EXPECT_EQ(params[k].scalar_type(), torch::kFloat);
    EXPECT_EQ(params[k].grad().scalar_type(), torch::kFloat);
    EXPECT_FALSE(params[k].equal(initial[k])) << "parameter " << k << " did not move";
  }
  for (const auto& entry : bf16.optimizer().state()) {
    const auto& adam = static_cast<const torch::optim::AdamParamState&>(*entry.second);
    EXPECT_EQ(adam.exp_avg().scalar_type(), torch::kFloat);
    EXPECT_EQ(adam.exp_avg_sq().scalar_type(), torch::kFloat);
  }
  const train::EvalResult eval32 = fp32.evaluate(data.test);
  const train::EvalResult eval16 = bf16.evaluate(data.test);
  EXPECT_NEAR(eval16.loss, eval32.loss, 0.05 * eval32.loss);
}
}  // namespace

TEST(Precision, Bf16KeepsFp32MasterWeightsGradientsAndStateAndFollowsFp32Losses) {
  ForcedBf16Detection native("1");  // bf16 works (emulated) on any CPU; the test needs no avx512
  for (const kernels::Bf16Kernel kernel : kBf16Kernels) {
    SCOPED_TRACE(kernels::bf16_kernel_name(kernel));
    Bf16KernelScope scope(kernel);
    expect_bf16_keeps_fp32_state_and_follows_fp32();
  }
}

TEST(Precision, CheckpointsCrossPrecisions) {
  ForcedBf16Detection native("1");
  const auto data = synthetic_8x8();
  const std::string dir = fresh_dir("train_precision_checkpoints");
  for (const auto& [written, read] : {std::pair{train::Precision::Bf16, train::Precision::Fp32},
                                      std::pair{train::Precision::Fp32, train::Precision::Bf16}}) {
    train::Trainer writer(precision_mlp(data.train, 1), std::make_shared<train::Classification>(),
                          precision_config(written), nullptr);
    first_losses(writer, data.train, 3);
    const std::string path = dir + "/" + train::precision_name(written) + ".pt";
    train::save_checkpoint(path, *writer.model(), &writer.optimizer(), writer.checkpoint_meta());
    train::Trainer reader(precision_mlp(data.train, 2), std::make_shared<train::Classification>(),
                          precision_config(read), nullptr);
    reader.resume(path);
    const auto expected = writer.model()->parameters();
    const auto loaded = reader.model()->parameters();
    for (size_t k = 0; k < loaded.size(); ++k) {
      EXPECT_EQ(loaded[k].scalar_type(), torch::kFloat);
      EXPECT_TRUE(loaded[k].equal(expected[k])) << "parameter " << k;
    }
    // Training goes on from the loaded state in the reader's precision.
    const std::vector<double> more = first_losses(reader, data.train, 2);
    for (const double loss : more) EXPECT_TRUE(std::isfinite(loss));
  }
}

TEST(Precision, EveryModelFamilyTrainsInBf16NextToFp32) {
  ForcedBf16Detection native("1");
  data::DataConfig images;
  images.name = "synthetic";
  images.synthetic_train = 64;
  images.synthetic_test = 16;
  images.synthetic_classes = 4;
  images.synthetic_shape = {3, 8, 8};
  images.synthetic_seed = 1;
  const auto data = data::load_dataset(images);
  std::vector<models::ModelConfig> configs(3);
  configs[0].arch = "resnet";  // convolutions and batch norm
  configs[0].depth = 8;
  configs[0].width = 0.25;
  configs[1].arch = "wrn";
  configs[1].depth = 10;
  configs[1].width = 1;
  configs[2].arch = "vit";  // attention, layer norm, GELU
  configs[2].depth = 1;
  configs[2].embed_dim = 32;
  configs[2].mlp_dim = 32;
  configs[2].patch_size = 4;
  for (auto& config : configs) {
    config.input_shape = {3, 8, 8};
    config.num_classes = 4;
    for (const kernels::Bf16Kernel kernel : kBf16Kernels) {
      SCOPED_TRACE(config.arch + " on " + kernels::bf16_kernel_name(kernel));
      Bf16KernelScope scope(kernel);
      std::vector<double> losses[2];
      for (const auto precision : {train::Precision::Fp32, train::Precision::Bf16}) {
        torch::manual_seed(4);
        train::Trainer trainer(models::build_model(config),
                               std::make_shared<train::Classification>(),
                               precision_config(precision), nullptr);
        losses[precision == train::Precision::Bf16] = first_losses(trainer, data.train, 1);
      }
      ASSERT_EQ(losses[1].size(), 1u);
      EXPECT_NEAR(losses[1][0], losses[0][0], 0.03 * losses[0][0]);
    }
  }
}

TEST(Precision, TheLanguageModelTrainsInBf16NextToFp32) {
  ForcedBf16Detection native("1");
  const std::string dir = fresh_dir("train_precision_llama");
  tessera::testing::write_fortune_file(dir + "/corpus", tessera::testing::sample_records(300));
  const auto data = data::load_dataset(tessera::testing::text_data_config(dir + "/corpus", 16));
  for (const kernels::Bf16Kernel kernel : kBf16Kernels) {
    SCOPED_TRACE(kernels::bf16_kernel_name(kernel));
    Bf16KernelScope scope(kernel);
    std::vector<double> losses[2];
    for (const auto precision : {train::Precision::Fp32, train::Precision::Bf16}) {
      torch::manual_seed(4);
      train::Trainer trainer(models::build_model(tessera::testing::tiny_llama(16)),
                             std::make_shared<train::Classification>(), precision_config(precision),
                             nullptr);
      losses[precision == train::Precision::Bf16] = first_losses(trainer, data.train, 2);
    }
    ASSERT_EQ(losses[1].size(), 2u);
    for (size_t s = 0; s < 2; ++s) EXPECT_NEAR(losses[1][s], losses[0][s], 0.02 * losses[0][s]);
  }
}
