#include "tessera/metrics/measurement_scope.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "tessera/metrics/comm_counter.h"
#include "tessera/metrics/memory_tracker.h"

namespace tessera::metrics {
namespace {

constexpr int64_t kMiB = 1 << 20;

torch::Tensor mebibytes(int64_t n) {
  return at::empty({n * kMiB / 4}, torch::kFloat32);
}

class MeasurementScopeTest : public ::testing::Test {
 protected:
  void SetUp() override { install_memory_tracker(); }
};

TEST_F(MeasurementScopeTest, AnInnerScopeMeasuresItselfAndCountsInTheOuterOne) {
  const int64_t base = live_tensor_bytes();
  const MeasurementScope outer;
  mebibytes(8);  // allocated and freed at once: the outer peak is 8 MiB above base
  {
    const MeasurementScope inner;
    EXPECT_EQ(inner.peak_tensor_bytes(), base);  // it restarted the counter
    mebibytes(4);
    EXPECT_EQ(inner.peak_tensor_bytes() - base, 4 * kMiB);
    EXPECT_EQ(outer.peak_tensor_bytes() - base, 8 * kMiB);  // kept across the restart
  }
  EXPECT_EQ(outer.peak_tensor_bytes() - base, 8 * kMiB);
  {
    const MeasurementScope inner;
    mebibytes(16);
    EXPECT_EQ(inner.peak_tensor_bytes() - base, 16 * kMiB);
  }
  // The inner scope's larger peak is the outer one's too.
  EXPECT_EQ(outer.peak_tensor_bytes() - base, 16 * kMiB);
  mebibytes(2);
  EXPECT_EQ(outer.peak_tensor_bytes() - base, 16 * kMiB);
}

TEST_F(MeasurementScopeTest, ThreeLevelsAndLiveTensorsAcrossTheBoundary) {
  const int64_t base = live_tensor_bytes();
  const MeasurementScope outer;
  torch::Tensor kept = mebibytes(4);  // live through the inner scopes
  {
    const MeasurementScope middle;
    {
      const MeasurementScope inner;
      mebibytes(1);
      EXPECT_EQ(inner.peak_tensor_bytes() - base, 5 * kMiB);
    }
    EXPECT_EQ(middle.peak_tensor_bytes() - base, 5 * kMiB);
  }
  kept = torch::Tensor();
  EXPECT_EQ(outer.peak_tensor_bytes() - base, 5 * kMiB);
}

TEST_F(MeasurementScopeTest, BytesAreTheGrowthSinceOpeningInnerScopesIncluded) {
  count_comm_bytes("send", 7);
  const MeasurementScope outer;
  count_comm_bytes("send", 100);
  {
    const MeasurementScope inner;
    count_comm_bytes("all_reduce", 20);
    EXPECT_EQ(inner.comm_bytes(), 20);
    EXPECT_EQ(inner.comm_bytes_by_op().at("send"), 0);
  }
  EXPECT_EQ(outer.comm_bytes(), 120);
  EXPECT_EQ(outer.comm_bytes_by_op().at("send"), 100);
  EXPECT_EQ(outer.comm_bytes_by_op().at("all_reduce"), 20);
}

}  // namespace
}  // namespace tessera::metrics
