// Training throughput of the model zoo on this machine, in fp32 and (on a CPU with native bf16)
// in bf16 under autocast, and the achieved FLOP/s as a fraction of the measured GEMM peak of the
// same precision: the best of the kernels available (the BLAS libtorch links, through torch::mm;
// oneDNN's inner product, through at::mkldnn_linear on oneDNN-layout tensors; and for fp32 oneDNN's
// matmul on plain tensors, the kernel of --matmul-kernel onednn, for bf16 on operands widened to
// fp32 as --bf16-kernel fp32-units computes), all measured in the same run. The models run on the
// kernels `tessera train` would pick (--matmul-kernel auto, --bf16-kernel auto).
// Run by hand:
//   ./build/throughput [--threads N] [--seconds S] [--precision fp32|bf16|both]
// It prints Markdown tables for docs/benchmarks.md.
#include <cstdio>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "tessera/kernels/onednn_matmul.h"
#include "tessera/kernels/onednn_product.h"
#include "tessera/metrics/flops.h"
#include "tessera/metrics/timer.h"
#include "tessera/models/staged_model.h"
#include "tessera/train/autocast_scope.h"
#include "tessera/train/optimizer.h"
#include "tessera/train/precision.h"

using namespace tessera;

namespace {

// The best rate of `gemm` (2 n^3 FLOPs per call) sustained over seconds / 3 for each n.
template <typename Gemm>
double best_rate(double seconds, Gemm gemm) {
  double best = 0;
  for (int64_t n : {512, 1024, 2048}) {
    auto run = gemm(n);  // prepares the operands, returns the call to time
    run();               // warm-up
    int64_t reps = 0;
    metrics::Timer timer;
    while (timer.seconds() < seconds / 3) {
      run();
      ++reps;
    }
    best = std::max(best, 2.0 * static_cast<double>(n * n * n * reps) / timer.seconds());
  }
  return best;
}

struct Peak {
  std::string kernel;
  double flops = 0;
};

// The sustained GEMM rate of torch::mm (the BLAS libtorch links for fp32; for bf16 whatever
// libtorch routes it to) and of oneDNN's inner product, in `dtype`; the best of them.
Peak gemm_peak(torch::ScalarType dtype, double seconds) {
  const auto options = torch::TensorOptions().dtype(dtype);
  const double mm = best_rate(seconds, [&](int64_t n) {
    auto a = torch::randn({n, n}).to(options);
    auto b = torch::randn({n, n}).to(options);
    return [a, b] { return torch::mm(a, b); };
  });
  const double onednn = best_rate(seconds, [&](int64_t n) {
    auto x = torch::randn({n, n}).to(options).to_mkldnn();
    auto w = torch::randn({n, n}).to(options).to_mkldnn();
    return [x, w] { return at::mkldnn_linear(x, w, {}); };
  });
  // oneDNN's matmul on plain fp32 tensors; for bf16 with the operands widened to fp32 and the
  // product rounded back, the whole cost of a product under --bf16-kernel fp32-units.
  const bool bf16 = dtype == torch::kBFloat16;
  const double matmul = !kernels::onednn_available() ? 0 : best_rate(seconds, [&](int64_t n) {
    auto a = torch::randn({n, n}).to(options);
    auto b = torch::randn({n, n}).to(options);
    return [a, b, bf16] {
      if (!bf16) return kernels::onednn_product(a, b);
      return kernels::onednn_product(a.to(torch::kFloat), b.to(torch::kFloat)).to(torch::kBFloat16);
    };
  });
  const char* name = dtype == torch::kFloat ? "fp32" : "bf16";
  std::printf("%s GEMM: torch::mm %.1f GFLOP/s, oneDNN inner product %.1f GFLOP/s", name, mm / 1e9,
              onednn / 1e9);
  const char* matmul_name = bf16 ? "oneDNN fp32 matmul on widened bf16" : "oneDNN matmul";
  if (matmul > 0) std::printf(", %s (plain layout) %.1f GFLOP/s", matmul_name, matmul / 1e9);
  std::printf("\n");
  if (matmul > std::max(mm, onednn)) return Peak{matmul_name, matmul};
  return onednn > mm ? Peak{"oneDNN", onednn} : Peak{"torch::mm", mm};
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

void bench_case(const Case& c, double seconds, double peak, train::Precision precision) {
  torch::manual_seed(0);
  auto model = models::build_model(c.config);
  train::OptimizerConfig opt;
  auto optimizer = train::make_optimizer(model->parameters(), opt);
  // A language model reads byte tokens and predicts one at every position.
  const bool tokens = c.config.arch == "llama";
  auto x = tokens ? torch::randint(0, 256, with_batch(c.batch_size, c.config.input_shape))
                  : torch::randn(with_batch(c.batch_size, c.config.input_shape));
  auto y = tokens ? torch::randint(0, 256, with_batch(c.batch_size, c.config.input_shape))
                  : torch::randint(0, 10, {c.batch_size}, torch::kLong);
  const std::vector<torch::Tensor> parameters = model->parameters();
  auto step = [&] {
    // As train::Trainer: the gradients are dropped, not zeroed, before backward (every parameter
    // of these models gets a new one).
    for (auto p : parameters) p.mutable_grad().reset();
    torch::Tensor logits;
    {
      train::AutocastScope autocast(precision, torch::Device(torch::kCPU));
      logits = model->forward(x);
    }
    torch::nn::functional::cross_entropy(logits.to(torch::kFloat).flatten(0, logits.dim() - 2),
                                         y.flatten())
        .backward();
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
  std::printf("| %s | %s | %lld | %.2fM | %.1f | %.0f | %.1f | %.0f%% |\n", c.label.c_str(),
              train::precision_name(precision), static_cast<long long>(c.batch_size),
              static_cast<double>(models::parameter_count(*model)) / 1e6, flops / 1e6,
              samples_per_second, achieved / 1e9, 100.0 * achieved / peak);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("Training throughput of the model zoo", "throughput");
  int threads = 2;
  double seconds = 10;
  std::string precisions = "both";
  app.add_option("--threads", threads, "intra-op threads")->capture_default_str();
  app.add_option("--seconds", seconds, "measuring time per model")->capture_default_str();
  app.add_option("--precision", precisions, "fp32, bf16 or both (bf16 needs native bf16)")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  at::set_num_threads(threads);
  std::vector<train::Precision> chosen;
  if (precisions == "both" || precisions == "fp32") chosen.push_back(train::Precision::Fp32);
  if (precisions == "both" || precisions == "bf16") {
    if (train::cpu_has_native_bf16())
      chosen.push_back(train::Precision::Bf16);
    else if (precisions == "bf16")
      return std::fprintf(stderr, "throughput: this CPU has no native bf16\n"), 2;
    else
      std::printf("no native bf16 on this CPU: fp32 only\n");
  }
  if (chosen.empty())
    return std::fprintf(stderr, "throughput: --precision must be fp32, bf16 or both\n"), 2;

  std::printf("threads %d\n", threads);
  std::vector<Peak> peaks;
  for (const auto precision : chosen)
    peaks.push_back(gemm_peak(train::compute_dtype(precision), seconds));
  std::printf(
      "\n| model | precision | batch | params | train MFLOP/sample | samples/s | GFLOP/s | "
      "of peak |\n");
  std::printf("|---|---|---|---|---|---|---|---|\n");

  auto resnet = make("resnet", {1, 28, 28});
  resnet.depth = 20;
  auto resnet18 = make("resnet", {3, 32, 32});
  resnet18.depth = 18;
  resnet18.width = 0.25;
  auto vit = make("vit", {1, 28, 28});
  vit.depth = 6;
  auto llama = make("llama", {128});  // the default language model: 4 blocks of 128, SwiGLU 320
  llama.num_classes = 256;
  llama.mlp_dim = 320;
  const std::vector<Case> cases = {
      {"mlp 784-1024x5-10 (PNN default)", make("mlp", {1, 28, 28}), 128},
      {"resnet20 (1x28x28)", resnet, 128},
      {"resnet18 w0.25 (3x32x32)", resnet18, 128},
      {"vit 6x128, patch 4 (1x28x28)", vit, 128},
      {"llama 4x128, 128 bytes (samples are windows)", llama, 32},
  };
  for (const auto& c : cases)
    for (size_t p = 0; p < chosen.size(); ++p) bench_case(c, seconds, peaks[p].flops, chosen[p]);
  std::printf("\nof peak: of the best %s GEMM of the model's precision", peaks[0].kernel.c_str());
  for (size_t p = 1; p < peaks.size(); ++p) std::printf(" / %s", peaks[p].kernel.c_str());
  std::printf(" (%s)\n", chosen.size() > 1 ? "fp32 / bf16" : train::precision_name(chosen[0]));
  return 0;
}
