// Target rasterization: Gaussian densities of realistic sizes (a vgg-cells image, a large tile).
//   build-<part>/bin/bench_target --benchmark_filter=gaussian
#include <benchmark/benchmark.h>

#include <vector>

#include "microcount/core/rng.hpp"
#include "microcount/target/gaussian.hpp"

using namespace microcount;

namespace {

std::vector<io::point> random_points(std::size_t n, std::size_t h, std::size_t w, std::uint64_t seed) {
  rng r(seed);
  std::vector<io::point> pts(n);
  for (auto& p : pts) p = {r.uniform(-0.5, static_cast<double>(w) - 0.5), r.uniform(-0.5, static_cast<double>(h) - 0.5), 0, -1, -1};
  return pts;
}

void gaussian(benchmark::State& state, std::size_t n, std::size_t side, bool adaptive) {
  const auto pts = random_points(n, side, side, 42);
  target::gaussian_options o;
  o.sigma = 2.0;
  if (adaptive) o.adaptive = target::adaptive_sigma{};
  for (auto _ : state) {
    auto d = target::gaussian_density(pts, side, side, o);  // [1, side, side]
    benchmark::DoNotOptimize(d.data());
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * n));
}

}  // namespace

BENCHMARK_CAPTURE(gaussian, 300_points_256x256_fixed, 300, 256, false)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK_CAPTURE(gaussian, 300_points_256x256_adaptive, 300, 256, true)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK_CAPTURE(gaussian, 100k_points_4096x4096_fixed, 100000, 4096, false)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(gaussian, 100k_points_4096x4096_adaptive, 100000, 4096, true)->Unit(benchmark::kMillisecond)->UseRealTime();

BENCHMARK_MAIN();
