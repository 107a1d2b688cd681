#include "tessera/metrics/comm_counter.h"

#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "tessera/core/error.h"
#include "tessera/metrics/measurement_scope.h"

namespace tessera::metrics {
namespace {

TEST(CommCounterTest, SumsPerOperationAndInTotal) {
  count_comm_bytes("all_reduce", 100);  // before the scope: not its bytes
  const MeasurementScope measured;
  const int64_t before = total_comm_bytes();
  count_comm_bytes("all_reduce", 400);
  count_comm_bytes("handover", 1000);
  count_comm_bytes("all_reduce", 24);
  count_comm_bytes("broadcast", 0);
  EXPECT_EQ(total_comm_bytes() - before, 1424);
  EXPECT_EQ(measured.comm_bytes(), 1424);
  EXPECT_EQ(measured.comm_bytes_by_op().at("all_reduce"), 424);
  EXPECT_EQ(measured.comm_bytes_by_op().at("broadcast"), 0);
  EXPECT_EQ(measured.comm_bytes_by_op().at("handover"), 1000);
}

TEST(CommCounterTest, RejectsNegativeBytesAndEmptyNames) {
  const MeasurementScope measured;
  EXPECT_THROW(count_comm_bytes("all_reduce", -1), Error);
  EXPECT_THROW(count_comm_bytes("", 5), Error);
  EXPECT_EQ(measured.comm_bytes(), 0);
}

TEST(CommCounterTest, CountsFromManyThreadsWithoutLoss) {
  const MeasurementScope measured;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([t] {
      const std::string op = t % 2 == 0 ? "all_reduce" : "handover";
      for (int i = 0; i < 10000; ++i) count_comm_bytes(op, 3);
    });
  }
  for (auto& thread : threads) thread.join();
  // Two threads per operation, 10,000 counts of 3 bytes each.
  EXPECT_EQ(measured.comm_bytes_by_op().at("all_reduce"), 2 * 10000 * 3);
  EXPECT_EQ(measured.comm_bytes_by_op().at("handover"), 2 * 10000 * 3);
  EXPECT_EQ(measured.comm_bytes(), 4 * 10000 * 3);
}

}  // namespace
}  // namespace tessera::metrics
