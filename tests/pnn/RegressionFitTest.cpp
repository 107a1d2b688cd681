#include "tessera/pnn/regression_fit.h"

#include <gtest/gtest.h>

#include "../test_support.h"
#include "tessera/core/error.h"
#include "tessera/pnn/partition_training.h"
#include "tessera/pnn/sil.h"

namespace tessera::pnn {
namespace {

using tessera::testing::fresh_dir;
using tessera::testing::mlp_6x6;
using tessera::testing::synthetic_6x6;

// The job of partition 0 of mlp_6x6 cut after stage 2, regressing uniform SIL rows.
PartitionJob first_partition_job(const std::string& run_dir) {
  PartitionJob job;
  job.model = mlp_6x6();
  job.plan = plan_from_cuts(job.model, {2});
  job.train.epochs = 6;
  job.train.batch_size = 32;
  job.train.optimizer.name = "adam";
  job.train.optimizer.lr = 3e-3;
  job.train.quiet = true;
  job.targets.target_sil = make_sil({}, job.model.num_classes, {12}, 0);
  job.run_dir = run_dir;
  return job;
}

TEST(RegressionFit, ATrainedPartitionFitsItsLabelsAndIsReported) {
  const auto data = synthetic_6x6(1024);
  const PartitionOutcome outcome =
      train_partition(first_partition_job(fresh_dir("pnn_fit_trained")), data.train, nullptr);
  const auto& fit = outcome.report.at("regression_fit");
  EXPECT_GT(fit.at("r_squared").get<double>(), 0.5) << fit;
  EXPECT_GT(fit.at("output_spread").get<double>(), 0.01) << fit;
  EXPECT_EQ(fit.at("units"), 12);
  EXPECT_EQ(fit.at("samples"), 1024);
}

TEST(RegressionFit, ConstantOutputsAreACollapseNamedWithWhatToChange) {
  const auto data = synthetic_6x6(256);
  const PartitionJob job = first_partition_job(fresh_dir("pnn_fit_dead"));
  models::StagedModel model(job.model, 0, 2);
  {
    torch::NoGradGuard no_grad;
    for (auto& p : model->parameters()) p.zero_();  // every output is ReLU(0) = 0
  }
  PartitionObjective objective(job.targets, torch::kCPU);
  const RegressionFit fit =
      measure_regression_fit(model, objective, job.targets.target_sil, data.train, torch::kCPU);
  EXPECT_EQ(fit.constant_units, 12);
  EXPECT_EQ(fit.output_spread, 0.0);
  EXPECT_LE(fit.r_squared, 0.0);
  EXPECT_TRUE(collapsed(fit));
  try {
    check_regression_fit(fit, 0, "mse");
    FAIL() << "a collapsed partition passed";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("partition 0 collapsed"), std::string::npos) << message;
    EXPECT_NE(message.find("R^2 against its synthetic labels"), std::string::npos) << message;
    EXPECT_NE(message.find("12 of 12 output units constant"), std::string::npos) << message;
    EXPECT_NE(message.find("--sil-kappa"), std::string::npos) << message;
  }
}

TEST(RegressionFit, APoorFitOfVariedOutputsIsAWarningNotACollapse) {
  RegressionFit varied_but_unfit;
  varied_but_unfit.output_spread = 0.5;
  varied_but_unfit.r_squared = -2.0;
  EXPECT_FALSE(collapsed(varied_but_unfit));
  EXPECT_TRUE(poor_fit(varied_but_unfit, "mse"));
  // The cosine loss ignores the outputs' scale, so R^2 says nothing there.
  EXPECT_FALSE(poor_fit(varied_but_unfit, "cosine"));
  EXPECT_NO_THROW(check_regression_fit(varied_but_unfit, 1, "mse"));
  varied_but_unfit.r_squared = 0.5;
  EXPECT_FALSE(poor_fit(varied_but_unfit, "mse"));
}

}  // namespace
}  // namespace tessera::pnn
