// Training throughput of the model zoo on this machine, and the achieved FLOP/s as a fraction of
// the measured matmul peak (both measured in the same run). Run by hand:
//   ./build/throughput [--threads N] [--seconds S]
// It prints a Markdown table for docs/benchmarks.md.
#include <cstdio>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "tessera/metrics/flops.h"
#include "tessera/metrics/timer.h"
#include "tessera/models/staged_model.h"
#include "tessera/train/optimizer.h"

using namespace tessera;

namespace {

// Best sustained single-precision GEMM rate over a few sizes.
double matmul_peak_flops(double seconds) {
  double best = 0;
  for (int64_t n : {512, 1024, 2048}) {
    auto a = torch::randn({n, n});
    auto b = torch::randn({n, n});
    auto c = torch::mm(a, b);  // warm-up
    int64_t reps = 0;
    metrics::Timer timer;
    while (timer.seconds() < seconds / 3) {
      c = torch::mm(a, b);
      ++reps;
    }
    best = std::max(best, 2.0 * n * n * n * reps / timer.seconds());
  }
  return best;
}

struct Case {
  std::string label;
  models::ModelConfig config;
  int64_t batch_size;
};

models::ModelConfig make(const std::string& arch, tessera::Shape input) {
  models::ModelConfig config;
  config.arch = arch;
  config.input_shape = std::move(input);
  config.num_classes = 10;
  return config;
}

void bench_case(const Case& c, double seconds, double peak) {
  torch::manual_seed(0);
  auto model = models::build_model(c.config);
  train::OptimizerConfig opt;
  auto optimizer = train::make_optimizer(model->parameters(), opt);
  auto x = torch::randn(with_batch(c.batch_size, c.config.input_shape));
  auto y = torch::randint(0, 10, {c.batch_size}, torch::kLong);
  auto step = [&] {
    optimizer->zero_grad();
    torch::nn::functional::cross_entropy(model->forward(x), y).backward();
    optimizer->step();
  };
  step();  // warm-up: lazily allocated optimizer state, BLAS buffers
  int64_t steps = 0;
  metrics::Timer timer;
  while (timer.seconds() < seconds) {
    step();
    ++steps;
  }
  const double elapsed = timer.seconds();
  const double samples_per_second = static_cast<double>(steps * c.batch_size) / elapsed;
  const double flops = static_cast<double>(metrics::training_flops(model->forward_flops()));
  const double achieved = flops * samples_per_second;
  std::printf("| %s | %lld | %.2fM | %.1f | %.0f | %.1f | %.0f%% |\n", c.label.c_str(),
              static_cast<long long>(c.batch_size),
              static_cast<double>(models::parameter_count(*model)) / 1e6, flops / 1e6,
              samples_per_second, achieved / 1e9, 100.0 * achieved / peak);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("Training throughput of the model zoo", "throughput");
  int threads = 2;
  double seconds = 10;
  app.add_option("--threads", threads, "intra-op threads")->capture_default_str();
  app.add_option("--seconds", seconds, "measuring time per model")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  at::set_num_threads(threads);

  const double peak = matmul_peak_flops(seconds);
  std::printf("threads %d, fp32 matmul peak %.1f GFLOP/s\n\n", threads, peak / 1e9);
  std::printf("| model | batch | params | train MFLOP/sample | samples/s | GFLOP/s | of peak |\n");
  std::printf("|---|---|---|---|---|---|---|\n");

  auto resnet = make("resnet", {1, 28, 28});
  resnet.depth = 20;
  auto resnet18 = make("resnet", {3, 32, 32});
  resnet18.depth = 18;
  resnet18.width = 0.25;
  auto vit = make("vit", {1, 28, 28});
  vit.depth = 6;
  const std::vector<Case> cases = {
      {"mlp 784-1024x5-10 (PNN default)", make("mlp", {1, 28, 28}), 128},
      {"resnet20 (1x28x28)", resnet, 128},
      {"resnet18 w0.25 (3x32x32)", resnet18, 128},
      {"vit 6x128, patch 4 (1x28x28)", vit, 128},
  };
  for (const auto& c : cases) bench_case(c, seconds, peak);
  return 0;
}
