// Grad-CAM cost on the reference U-Net (nn::unet2d<>, width 16, depth 3), one 256 × 256 image, cpu backend:
// the evaluation forward it is compared with, Grad-CAM at the bottleneck (default) and at the head's
// input, and a training forward + backward.
//   build-<part>/bin/bench_explain            (OMP_NUM_THREADS=1 for the single-thread numbers)
#include <benchmark/benchmark.h>

#include "microcount/backends/cpu.hpp"
#include "microcount/explain/gradcam.hpp"
#include "microcount/nn/models/unet.hpp"

using namespace microcount;
using cpu = backend::cpu;

namespace {

struct fixture {
  nn::unet2d<>::network<cpu> net = nn::unet2d<>::make<cpu>({});
  tensor<float, cpu> x{shape{1, 1, 256, 256}};  // [1, C, H, W]
  fixture() {
    rng r(1);
    net.build(x.shape(), r);
    for (index_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(r.normal());
  }
};
fixture& model() {
  static fixture f;
  return f;
}

void evaluation_forward(benchmark::State& state) {
  auto& f = model();
  f.net.set_mode(nn::mode::evaluation);
  for (auto _ : state) benchmark::DoNotOptimize(f.net.forward(f.x).data());
}
void gradcam(benchmark::State& state, explain::target layer) {
  auto& f = model();
  f.net.set_mode(nn::mode::evaluation);
  for (auto _ : state)
    benchmark::DoNotOptimize(explain::gradcam_for_class(f.net, f.x, explain::head_kind::density, 0, {.layer = layer}).data());
}
void training_step(benchmark::State& state) {
  auto& f = model();
  f.net.set_mode(nn::mode::training);
  for (auto _ : state) {
    auto y = f.net.forward(f.x);
    benchmark::DoNotOptimize(f.net.backward(y).data());
  }
}

}  // namespace

BENCHMARK(evaluation_forward)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(gradcam, bottleneck, explain::target::bottleneck)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(gradcam, features, explain::target::features)->Unit(benchmark::kMillisecond);
BENCHMARK(training_step)->Unit(benchmark::kMillisecond);
BENCHMARK_MAIN();
