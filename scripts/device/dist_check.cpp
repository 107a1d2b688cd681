// Device check (not part of the build): tessera::dist against the device machine's libtorch 2.x:
// Gloo collectives on two rank threads, and NCCL + the gradient reducer on one CUDA rank.
#include <cstdio>
#include <filesystem>
#include <thread>

#include "tessera/dist/gradient_reducer.h"
#include "tessera/dist/process_group.h"

using namespace tessera;

int main() {
  const auto dir = std::filesystem::temp_directory_path() / "tessera_probe";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::vector<std::thread> threads;
  for (int rank = 0; rank < 2; ++rank)
    threads.emplace_back([&, rank] {
      dist::Store store = dist::Store::file((dir / "gloo").string(), 2, std::chrono::seconds(30));
      dist::ProcessGroup group(store, rank, 2, {});
      std::vector<torch::Tensor> t = {torch::full({3}, rank + 1.0), torch::ones({2, 2})};
      group.all_reduce(t);
      auto sub = group.new_group({1});
      std::printf("gloo rank %d: %s %s sub=%d\n", rank,
                  t[0].sum().item<double>() == 9 ? "ok" : "BAD",
                  t[1].sum().item<double>() == 8 ? "ok" : "BAD", sub.has_value() ? 1 : 0);
    });
  for (auto& t : threads) t.join();
  if (!torch::cuda::is_available()) {
    std::printf("no cuda\n");
    return 0;
  }
  dist::GroupOptions options;
  options.device = "cuda";
  dist::Store store = dist::Store::file((dir / "nccl").string(), 1, std::chrono::seconds(30));
  dist::ProcessGroup group(store, 0, 1, options);
  torch::nn::Linear layer(8, 4);
  layer->to(torch::kCUDA);
  dist::GradientReducer reducer(group, layer->parameters(), {1024, true});
  auto x = torch::randn({16, 8}, torch::kCUDA);
  layer->zero_grad();
  reducer.prepare(16);
  layer->forward(x).pow(2).mean().backward();
  const auto expected = layer->weight.grad().clone();
  reducer.finish();
  std::printf("nccl reducer: %s (buckets %lld)\n",
              torch::allclose(layer->weight.grad(), expected) ? "ok" : "BAD",
              static_cast<long long>(reducer.stats().buckets));
  return 0;
}
