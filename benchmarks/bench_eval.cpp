// Point matching and the assignment solver: dense blocks and cell-density images of growing size.
//   build/bin/bench_eval --benchmark_min_time=0.2
#include <benchmark/benchmark.h>

#include <vector>

#include <Eigen/Core>

#include "microcount/core/rng.hpp"
#include "microcount/eval/assignment.hpp"
#include "microcount/eval/matching.hpp"

namespace {

using namespace microcount;

// Dense n × n assignment with uniform random costs (the worst case of one block).
void dense_assignment(benchmark::State& state) {
  const auto n = static_cast<Eigen::Index>(state.range(0));
  rng r(1);
  Eigen::MatrixXd cost(n, n);  // [n, n]
  for (Eigen::Index i = 0; i < n; ++i)
    for (Eigen::Index j = 0; j < n; ++j) cost(i, j) = r.uniform();
  for (auto _ : state) benchmark::DoNotOptimize(eval::solve_assignment(cost));
  state.SetComplexityN(state.range(0));
}
BENCHMARK(dense_assignment)->RangeMultiplier(2)->Range(32, 512)->Complexity(benchmark::oNCubed)->Unit(benchmark::kMillisecond);

// n truth points at vgg-cells density (~300 per 256²), predictions jittered by 1.5 px, 5 % missed and
// 5 % spurious, radius 5: what evaluating a good detector on a large image costs.
void cell_density_matching(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const double side = 256.0 * std::sqrt(static_cast<double>(n) / 300.0);
  rng r(2);
  std::vector<io::point> truth(n), predicted;
  for (auto& p : truth) p = {r.uniform(0, side), r.uniform(0, side)};
  for (const auto& t : truth)
    if (r.uniform() > 0.05) predicted.push_back({t.x + r.normal(0, 1.5), t.y + r.normal(0, 1.5)});
  for (std::size_t i = 0; i < n / 20; ++i) predicted.push_back({r.uniform(0, side), r.uniform(0, side)});
  for (auto _ : state) benchmark::DoNotOptimize(eval::match_points(truth, predicted, {5.0}));
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * n));
}
BENCHMARK(cell_density_matching)->RangeMultiplier(10)->Range(100, 100000)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
