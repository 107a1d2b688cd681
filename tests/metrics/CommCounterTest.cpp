#include "tessera/metrics/comm_counter.h"

#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "tessera/core/error.h"

namespace tessera::metrics {
namespace {

TEST(CommCounterTest, SumsPerOperationAndInTotal) {
  reset_comm_bytes();
  count_comm_bytes("all_reduce", 400);
  count_comm_bytes("handover", 1000);
  count_comm_bytes("all_reduce", 24);
  count_comm_bytes("broadcast", 0);
  EXPECT_EQ(total_comm_bytes(), 1424);
  const std::map<std::string, int64_t> expected = {
      {"all_reduce", 424}, {"broadcast", 0}, {"handover", 1000}};
  EXPECT_EQ(comm_bytes_by_op(), expected);
}

TEST(CommCounterTest, ResetClearsEverything) {
  count_comm_bytes("all_reduce", 8);
  reset_comm_bytes();
  EXPECT_EQ(total_comm_bytes(), 0);
  EXPECT_TRUE(comm_bytes_by_op().empty());
}

TEST(CommCounterTest, RejectsNegativeBytesAndEmptyNames) {
  reset_comm_bytes();
  EXPECT_THROW(count_comm_bytes("all_reduce", -1), Error);
  EXPECT_THROW(count_comm_bytes("", 5), Error);
  EXPECT_EQ(total_comm_bytes(), 0);
}

TEST(CommCounterTest, CountsFromManyThreadsWithoutLoss) {
  reset_comm_bytes();
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([t] {
      const std::string op = t % 2 == 0 ? "all_reduce" : "handover";
      for (int i = 0; i < 10000; ++i) count_comm_bytes(op, 3);
    });
  }
  for (auto& thread : threads) thread.join();
  // Two threads per operation, 10,000 counts of 3 bytes each.
  EXPECT_EQ(comm_bytes_by_op().at("all_reduce"), 2 * 10000 * 3);
  EXPECT_EQ(comm_bytes_by_op().at("handover"), 2 * 10000 * 3);
  EXPECT_EQ(total_comm_bytes(), 4 * 10000 * 3);
}

}  // namespace
}  // namespace tessera::metrics
