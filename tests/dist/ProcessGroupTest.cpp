#include <gtest/gtest.h>

#include <functional>
#include <mutex>
#include <optional>
#include <string>

#include "rank_threads.h"
#include "tessera/core/error.h"
#include "tessera/core/seeding.h"
#include "tessera/metrics/comm_counter.h"
#include "tessera/metrics/measurement_scope.h"

using namespace tessera;

#define RUN_RANKS_OR_SKIP(world, name, ...)       \
  if (!test::run_ranks(world, name, __VA_ARGS__)) \
  GTEST_SKIP() << "no process group on this "     \
                  "machine"

namespace {

// Two ranks join; rank 0 runs `operation`, which rank 1 never takes part in, with a 1.5 s
// timeout. Returns the message of the Error it threw ("" if none), or nullopt where no group
// could be formed.
std::optional<std::string> rank0_failure_without_its_peer(
    const std::string& name, const std::function<void(dist::ProcessGroup&)>& operation) {
  std::string message;
  std::mutex mutex;
  const bool ran = test::run_ranks(
      2, name,
      [&](dist::ProcessGroup& group) {
        if (group.rank() != 0) return;
        try {
          operation(group);
        } catch (const Error& e) {
          std::lock_guard<std::mutex> lock(mutex);
          message = e.what();
        }
      },
      /*timeout_seconds=*/1.5);
  if (!ran) return std::nullopt;
  return message;
}

}  // namespace

TEST(ProcessGroup, AllReduceSumsListsOfTensorsOfDifferentShapes) {
  RUN_RANKS_OR_SKIP(3, "allreduce", [](dist::ProcessGroup& group) {
    const double r = static_cast<double>(group.rank());
    std::vector<torch::Tensor> tensors = {torch::full({2, 3}, r + 1.0),
                                          torch::full({4}, 10.0 * (r + 1.0)),
                                          torch::arange(5, torch::kFloat) * (r + 1.0)};
    group.all_reduce(tensors);
    EXPECT_TRUE(torch::equal(tensors[0], torch::full({2, 3}, 6.0)));  // 1 + 2 + 3
    EXPECT_TRUE(torch::equal(tensors[1], torch::full({4}, 60.0)));
    EXPECT_TRUE(torch::equal(tensors[2], torch::arange(5, torch::kFloat) * 6.0));
    std::vector<torch::Tensor> max = {torch::tensor({r, -r})};
    group.all_reduce(max, dist::ReduceOp::Max);
    EXPECT_TRUE(torch::equal(max[0], torch::tensor({2.0, 0.0})));
  });
}

TEST(ProcessGroup, AsyncAllReduceCompletesOnWait) {
  RUN_RANKS_OR_SKIP(2, "async", [](dist::ProcessGroup& group) {
    std::vector<torch::Tensor> a = {torch::full({1000}, 1.0)};
    std::vector<torch::Tensor> b = {torch::full({3}, static_cast<double>(group.rank()))};
    dist::Work first = group.all_reduce_async(a);
    dist::Work second = group.all_reduce_async(b);
    second.wait();
    first.wait();
    first.wait();  // waiting twice is harmless
    EXPECT_TRUE(torch::equal(a[0], torch::full({1000}, 2.0)));
    EXPECT_TRUE(torch::equal(b[0], torch::full({3}, 1.0)));
  });
}

TEST(ProcessGroup, BroadcastAllGatherSendRecvAndBarrier) {
  RUN_RANKS_OR_SKIP(3, "p2p", [](dist::ProcessGroup& group) {
    const int64_t rank = group.rank();
    std::vector<torch::Tensor> b = {torch::full({2}, static_cast<float>(rank)),
                                    torch::full({3, 1}, static_cast<float>(-rank))};
    group.broadcast(b, 1);
    EXPECT_TRUE(torch::equal(b[0], torch::full({2}, 1.0f)));
    EXPECT_TRUE(torch::equal(b[1], torch::full({3, 1}, -1.0f)));

    std::vector<torch::Tensor> inputs = {torch::full({2}, static_cast<float>(rank))};
    std::vector<std::vector<torch::Tensor>> outputs(1);
    for (int r = 0; r < 3; ++r) outputs[0].push_back(torch::empty({2}));
    group.all_gather(outputs, inputs);
    for (int r = 0; r < 3; ++r)
      EXPECT_TRUE(torch::equal(outputs[0][r], torch::full({2}, static_cast<float>(r))));

    // A ring: every rank sends to the next and receives from the previous.
    std::vector<torch::Tensor> out = {torch::full({4}, static_cast<float>(rank))};
    std::vector<torch::Tensor> in = {torch::empty({4})};
    if (rank % 2 == 0) {
      group.send(out, (rank + 1) % 3, 7);
      group.recv(in, (rank + 2) % 3, 7);
    } else {
      group.recv(in, (rank + 2) % 3, 7);
      group.send(out, (rank + 1) % 3, 7);
    }
    EXPECT_TRUE(torch::equal(in[0], torch::full({4}, static_cast<float>((rank + 2) % 3))));
    group.barrier();
  });
}

TEST(ProcessGroup, SubGroupsReduceOnlyAmongTheirMembers) {
  RUN_RANKS_OR_SKIP(4, "subgroups", [](dist::ProcessGroup& group) {
    const int64_t rank = group.rank();
    // Every rank creates both groups in the same order; non-members get nothing.
    std::optional<dist::ProcessGroup> even = group.new_group({0, 2});
    std::optional<dist::ProcessGroup> upper = group.new_group({1, 2, 3});
    EXPECT_EQ(even.has_value(), rank == 0 || rank == 2);
    EXPECT_EQ(upper.has_value(), rank >= 1);
    if (even) {
      EXPECT_EQ(even->size(), 2);
      EXPECT_EQ(even->rank(), rank / 2);
      std::vector<torch::Tensor> t = {torch::full({3}, static_cast<float>(rank + 1))};
      even->all_reduce(t);
      EXPECT_TRUE(torch::equal(t[0], torch::full({3}, 4.0f)));  // ranks 0 and 2: 1 + 3
    }
    if (upper) {
      EXPECT_EQ(upper->rank(), rank - 1);
      std::vector<torch::Tensor> t = {torch::full({2}, static_cast<float>(rank + 1))};
      upper->all_reduce(t);
      EXPECT_TRUE(torch::equal(t[0], torch::full({2}, 9.0f)));  // 2 + 3 + 4
      std::vector<torch::Tensor> b = {torch::full({1}, static_cast<float>(rank))};
      upper->broadcast(b, 2);  // group rank 2 is global rank 3
      EXPECT_TRUE(torch::equal(b[0], torch::full({1}, 3.0f)));
    }
    group.barrier();
  });
}

TEST(ProcessGroup, CountsTheBytesEachRankSends) {
  const metrics::MeasurementScope measured;
  RUN_RANKS_OR_SKIP(2, "bytes", [](dist::ProcessGroup& group) {
    std::vector<torch::Tensor> t = {torch::ones({1000})};  // 4000 bytes
    group.all_reduce(t);
    std::vector<torch::Tensor> b = {torch::ones({10})};
    group.broadcast(b, 0);
    if (group.rank() == 0) {
      group.send(t, 1);
    } else {
      group.recv(t, 0);
    }
  });
  const auto by_op = measured.comm_bytes_by_op();
  // Two ranks, each sending 2 (W - 1) / W x 4000 for a ring all-reduce.
  EXPECT_EQ(by_op.at("all_reduce"), 2 * 4000);
  EXPECT_EQ(by_op.at("broadcast"), 40);  // the root sends to the one other rank
  EXPECT_EQ(by_op.at("send"), 4000);
}

TEST(ProcessGroup, Bf16AllReduceIsTheSumToBf16PrecisionIdenticalOnEveryRankAtHalfTheBytes) {
  for (const int64_t world : {2, 3}) {
    const metrics::MeasurementScope measured;
    std::mutex mutex;
    std::vector<torch::Tensor> results(static_cast<size_t>(world));
    RUN_RANKS_OR_SKIP(world, "bf16_" + std::to_string(world), [&](dist::ProcessGroup& group) {
      // 1001 values (not a multiple of the ranks: unequal chunks) spanning 12 orders of
      // magnitude, and a list of two tensors of different shapes; two rings in flight at once.
      // A generator of its own: the ranks are threads, the global one would be shared.
      auto values = [&](int64_t rank, uint64_t seed) {
        at::Generator generator = make_generator(seed + 10 * static_cast<uint64_t>(rank));
        return torch::randn({1001}, generator) *
               torch::pow(10.0, torch::randint(-6, 6, {1001}, generator));
      };
      std::vector<torch::Tensor> list = {values(group.rank(), 1).narrow(0, 0, 1000).view({10, 100}),
                                         values(group.rank(), 2).narrow(0, 0, 7)};
      std::vector<torch::Tensor> single = {values(group.rank(), 3)};
      dist::Work first = group.all_reduce_bf16_async(list);
      dist::Work second = group.all_reduce_bf16_async(single);
      second.wait();
      first.wait();
      torch::Tensor exact = torch::zeros({1001}, torch::kDouble);
      for (int64_t r = 0; r < group.size(); ++r) exact += values(r, 3).to(torch::kDouble);
      // Each hop rounds a partial sum to bf16 (8 bits: relative 2^-8), at most world of them.
      const torch::Tensor error = (single[0].to(torch::kDouble) - exact).abs();
      const torch::Tensor bound = 4e-3 * static_cast<double>(world) * [&] {
        torch::Tensor largest = torch::zeros({1001}, torch::kDouble);
        for (int64_t r = 0; r < group.size(); ++r)
          largest = torch::maximum(largest, values(r, 3).abs().to(torch::kDouble));
        return largest * static_cast<double>(group.size());
      }();
      EXPECT_TRUE((error <= bound).all().item<bool>())
          << "largest error ratio " << (error / bound).max().item<double>();
      EXPECT_FALSE(torch::equal(single[0], exact.to(torch::kFloat)));  // it is not fp32
      EXPECT_EQ(list[0].sizes(), (torch::IntArrayRef{10, 100}));
      std::lock_guard<std::mutex> lock(mutex);
      results[static_cast<size_t>(group.rank())] = single[0];
    });
    for (int64_t r = 1; r < world; ++r)
      EXPECT_TRUE(torch::equal(results[0], results[static_cast<size_t>(r)])) << "rank " << r;
    // Each rank sends 2 (W - 1) / W x the bf16 payload: 2 bytes a value, 1007 + 1001 values.
    EXPECT_EQ(measured.comm_bytes_by_op().at("all_reduce"),
              world * (dist::all_reduce_bytes(2 * 1007, world) +
                       dist::all_reduce_bytes(2 * 1001, world)));
  }
}

TEST(ProcessGroup, ABf16AllReduceWithAMissingPeerTimesOutNamingTheRank) {
  const auto message = rank0_failure_without_its_peer("bf16_timeout", [](dist::ProcessGroup& g) {
    std::vector<torch::Tensor> t = {torch::ones({64})};
    g.all_reduce_bf16_async(t).wait();
  });
  if (!message) GTEST_SKIP() << "no process group on this machine";
  EXPECT_NE(message->find("rank 0: bf16 all_reduce hop"), std::string::npos) << *message;
}

TEST(ProcessGroup, RejectsBadRanksAndMixedLists) {
  const std::string path = test::fresh_store_path("bad");
  dist::Store store = dist::Store::file(path, 1, std::chrono::seconds(5));
  EXPECT_THROW(dist::ProcessGroup(store, 1, 1, {}), UsageError);
  EXPECT_THROW(dist::ProcessGroup(store, 0, 0, {}), UsageError);
  dist::ProcessGroup group(store, 0, 1, {});
  std::vector<torch::Tensor> mixed = {torch::ones({2}), torch::ones({2}, torch::kLong)};
  EXPECT_THROW(group.all_reduce(mixed), Error);
  const std::vector<int64_t> twice = {0, 0};
  EXPECT_THROW(group.new_group(twice), UsageError);
}

TEST(ProcessGroup, ACollectiveWithAMissingPeerTimesOutWithAMessage) {
  // Rank 1 joins, then never takes part in rank 0's all-reduce: rank 0 must give up within its
  // timeout and say which operation failed, instead of hanging.
  const auto start = std::chrono::steady_clock::now();
  const auto failure = rank0_failure_without_its_peer("timeout", [](dist::ProcessGroup& g) {
    std::vector<torch::Tensor> t = {torch::ones({4})};
    g.all_reduce(t);
  });
  if (!failure) GTEST_SKIP() << "no process group on this machine";
  const std::string& message = *failure;
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_NE(message.find("rank 0: all_reduce"), std::string::npos) << message;
  EXPECT_LT(seconds, 20.0);
}
