#include "tessera/metrics/memory_tracker.h"

#include <sys/mman.h>

#include <thread>
#include <vector>

#include <c10/core/CPUAllocator.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "tessera/core/error.h"
#include "tessera/metrics/measurement_scope.h"

namespace tessera::metrics {
namespace {

constexpr int64_t kFloatBytes = 4;
constexpr int64_t kFourMiB = 1024 * 1024 * kFloatBytes;  // [1024, 1024] float32

class MemoryTrackerTest : public ::testing::Test {
 protected:
  void SetUp() override { install_memory_tracker(); }
};

TEST_F(MemoryTrackerTest, InstallIsIdempotent) {
  EXPECT_TRUE(memory_tracker_installed());
  const c10::Allocator* installed = c10::GetCPUAllocator();
  install_memory_tracker();
  EXPECT_EQ(c10::GetCPUAllocator(), installed);
}

TEST_F(MemoryTrackerTest, CountsAllocationFreeAndPeak) {
  const int64_t before = live_tensor_bytes();
  int64_t peak_with_tensor = 0;
  {
    torch::Tensor t = at::empty({1024, 1024}, torch::kFloat32);
    EXPECT_EQ(live_tensor_bytes() - before, kFourMiB);
    peak_with_tensor = peak_tensor_bytes();
    EXPECT_GE(peak_with_tensor, before + kFourMiB);
  }
  EXPECT_EQ(live_tensor_bytes(), before);
  EXPECT_EQ(peak_tensor_bytes(), peak_with_tensor);  // freeing does not lower the peak
  const MeasurementScope measured;                   // restarts the counter
  EXPECT_EQ(peak_tensor_bytes(), live_tensor_bytes());
  EXPECT_EQ(measured.peak_tensor_bytes(), live_tensor_bytes());
}

TEST_F(MemoryTrackerTest, CountsFactoriesOpsAndCopies) {
  const int64_t before = live_tensor_bytes();
  torch::Tensor zeros = torch::zeros({256, 64});  // 16,384 floats
  EXPECT_EQ(live_tensor_bytes() - before, 256 * 64 * kFloatBytes);
  torch::Tensor doubles = torch::ones({100}, torch::kFloat64);  // 100 * 8 bytes
  EXPECT_EQ(live_tensor_bytes() - before, 256 * 64 * kFloatBytes + 100 * 8);
  torch::Tensor product = torch::matmul(zeros.t(), zeros);  // [64, 64] result
  EXPECT_EQ(live_tensor_bytes() - before, (256 * 64 + 64 * 64) * kFloatBytes + 100 * 8);
  torch::Tensor view = zeros.view({64, 256});  // shares storage: no allocation
  torch::Tensor copy = view.clone();           // a second [256, 64]
  EXPECT_EQ(live_tensor_bytes() - before, (2 * 256 * 64 + 64 * 64) * kFloatBytes + 100 * 8);
  zeros = torch::Tensor();  // `view` still holds the storage
  EXPECT_EQ(live_tensor_bytes() - before, (2 * 256 * 64 + 64 * 64) * kFloatBytes + 100 * 8);
  view = torch::Tensor();
  doubles = torch::Tensor();
  product = torch::Tensor();
  copy = torch::Tensor();
  EXPECT_EQ(live_tensor_bytes(), before);
}

TEST_F(MemoryTrackerTest, FromBlobDoesNotAllocate) {
  std::vector<float> buffer(4096, 1.0f);
  const int64_t before = live_tensor_bytes();
  torch::Tensor wrapped = torch::from_blob(buffer.data(), {4096});
  EXPECT_EQ(live_tensor_bytes(), before);
  EXPECT_FLOAT_EQ(wrapped.sum().item<float>(), 4096.0f);
}

TEST_F(MemoryTrackerTest, LinearForwardBackwardRaisesPeak) {
  torch::manual_seed(0);
  torch::nn::Linear linear(256, 512);
  torch::Tensor input = torch::randn({64, 256});
  const MeasurementScope measured;
  const int64_t base = live_tensor_bytes();
  ASSERT_EQ(measured.peak_tensor_bytes(), base);

  torch::Tensor output = linear->forward(input);  // [64, 512] activations
  torch::Tensor loss = output.square().mean();
  loss.backward();
  const int64_t output_bytes = 64 * 512 * kFloatBytes;
  const int64_t grad_bytes = (512 * 256 + 512) * kFloatBytes;  // weight and bias gradients
  // While the weight gradient was computed, the output was live too.
  EXPECT_GE(measured.peak_tensor_bytes() - base, output_bytes + grad_bytes);
  // Afterwards the output, the gradients and the scalar loss remain; the graph's saved tensors
  // were released by backward().
  EXPECT_EQ(live_tensor_bytes() - base, output_bytes + grad_bytes + kFloatBytes);
  EXPECT_TRUE(linear->weight.grad().defined());
}

TEST_F(MemoryTrackerTest, ThreadSafeUnderConcurrentAllocations) {
  const int64_t before = live_tensor_bytes();
  const MeasurementScope measured;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([] {
      for (int i = 0; i < 500; ++i) {
        torch::Tensor a = at::empty({1000 + i}, torch::kFloat32);
        torch::Tensor b = at::empty({64}, torch::kFloat64);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(live_tensor_bytes(), before);
  // At least one thread held its largest pair at some point; at most all four did at once.
  EXPECT_GE(measured.peak_tensor_bytes() - before, 1000 * kFloatBytes + 64 * 8);
  EXPECT_LE(measured.peak_tensor_bytes() - before, 4 * (1499 * kFloatBytes + 64 * 8));
}

TEST_F(MemoryTrackerTest, RejectsUnknownDevicesAndCudaWithoutCuda) {
  EXPECT_THROW(live_tensor_bytes("tpu"), UsageError);
  EXPECT_THROW(peak_tensor_bytes(""), UsageError);
#ifndef TESSERA_WITH_CUDA
  EXPECT_THROW(live_tensor_bytes("cuda"), UsageError);
  EXPECT_THROW(MeasurementScope("cuda:0"), UsageError);
  try {
    peak_tensor_bytes("cuda");
    FAIL() << "expected UsageError";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("cuda"), std::string::npos);
  }
#endif
}

TEST(MemoryTrackerRssTest, ReadsProcessResidentSetSize) {
  const int64_t before = current_rss_bytes();
  // 16 MiB of fresh anonymous pages (mmap, not malloc, which may hand back memory that is already
  // resident), each touched to make it resident.
  constexpr size_t kBlock = 16 << 20;
  void* mapped = mmap(nullptr, kBlock, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(mapped, MAP_FAILED);
  volatile char* pages = static_cast<char*>(mapped);
  for (size_t i = 0; i < kBlock; i += 4096) pages[i] = 1;
  const int64_t after = current_rss_bytes();
  EXPECT_GE(after - before, static_cast<int64_t>(kBlock) * 3 / 4);
  EXPECT_GE(peak_rss_bytes(), after);
  EXPECT_EQ(after % 1024, 0);  // reported in kB
  munmap(mapped, kBlock);
}

}  // namespace
}  // namespace tessera::metrics

// mkldnn convolutions allocate through raw_allocate/raw_deallocate, which need a deleter that
// works from the data pointer alone; they aborted libtorch with the first version of the tracker.
TEST(MemoryTrackerRaw, ConvolutionsRunAndAreCounted) {
  tessera::metrics::install_memory_tracker();
  const int64_t before = tessera::metrics::live_tensor_bytes();
  {
    torch::nn::Conv2d conv(torch::nn::Conv2dOptions(3, 16, 3).padding(1));
    auto x = torch::randn({8, 3, 32, 32}, torch::requires_grad());
    conv->forward(x).sum().backward();
    EXPECT_GT(tessera::metrics::live_tensor_bytes(), before);
    void* raw = c10::GetCPUAllocator()->raw_allocate(1000);
    EXPECT_GE(tessera::metrics::live_tensor_bytes(), before + 1000);
    c10::GetCPUAllocator()->raw_deallocate(raw);
  }
  EXPECT_EQ(tessera::metrics::live_tensor_bytes(), before);
}
