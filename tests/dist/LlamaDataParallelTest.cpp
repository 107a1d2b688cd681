// DDP on the language model: two workers with batch b equal one worker with batch 2b.
#include <gtest/gtest.h>

#include <cmath>

#include "../test_support.h"
#include "../text_support.h"
#include "rank_threads.h"
#include "tessera/data/load.h"
#include "tessera/dist/data_parallel.h"
#include "tessera/metrics/memory_tracker.h"
#include "tessera/models/staged_model.h"
#include "tessera/train/trainer.h"

using namespace tessera;

namespace llama_ddp_test {

using tessera::testing::fresh_dir;
using tessera::testing::sample_records;
using tessera::testing::sgd_config;
using tessera::testing::snapshot;
using tessera::testing::text_data_config;
using tessera::testing::tiny_llama;
using tessera::testing::write_fortune_file;

TEST(LlamaDataParallel, TwoRanksWithBatchBEqualOneWorkerWithBatch2B) {
  metrics::install_memory_tracker();
  const std::string dir = fresh_dir("dist_llama_ddp");
  write_fortune_file(dir + "/corpus", sample_records(300));
  data::DataConfig data_config = text_data_config(dir + "/corpus", 16);
  data_config.limit_train = 48;
  const data::TrainTest data = data::load_dataset(data_config);

  torch::manual_seed(7);
  models::StagedModel single_model = models::build_model(tiny_llama(16));
  train::Trainer single(single_model, std::make_shared<train::Classification>(),
                        sgd_config(8, 0, 1), nullptr);
  const train::TrainSummary single_summary = single.fit(data.train, &data.test);

  std::vector<std::vector<torch::Tensor>> parameters(2);
  std::vector<models::StagedModel> replicas;
  for (int r = 0; r < 2; ++r) {
    // Rank 0 starts as the single worker; rank 1 differs until the broadcast.
    torch::manual_seed(7 + 60 * r);
    replicas.push_back(models::build_model(tiny_llama(16)));
  }
  const bool ran = test::run_ranks(2, "llama_ddp", [&](dist::ProcessGroup& group) {
    const int64_t rank = group.rank();
    train::Trainer trainer(replicas[rank], std::make_shared<train::Classification>(),
                           sgd_config(4, rank, 2), nullptr);
    trainer.set_worker_sync(std::make_shared<dist::DataParallel>(group, dist::ReducerOptions{}));
    trainer.fit(data.train, nullptr);
    parameters[rank] = snapshot(replicas[rank]);
  });
  if (!ran) GTEST_SKIP() << "no process group on this machine";
  const auto expected = snapshot(single_model);
  ASSERT_EQ(parameters[0].size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_TRUE(torch::allclose(parameters[0][i], expected[i], 1e-4, 1e-5))
        << "parameter " << i << " differs by "
        << (parameters[0][i] - expected[i]).abs().max().item<double>();
    EXPECT_TRUE(torch::equal(parameters[0][i], parameters[1][i]));
  }
  // The language-model figures reach the summary.
  EXPECT_TRUE(single_summary.extra.contains("test_bits_per_byte"));
  EXPECT_NEAR(single_summary.extra["test_bits_per_byte"].get<double>(),
              single_summary.test.loss / std::log(2.0), 1e-9);
  EXPECT_EQ(single_summary.extra["seq_len"].get<int64_t>(), 16);
}

}  // namespace llama_ddp_test
