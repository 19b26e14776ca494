// Post-processing on a movie-sized network output: a [T, H, W] = [1000, 400, 300] map of 50k
// Gaussian blobs (σ 1.5 px, 1 frame) over low noise, and its segmentation (map > 0.3, ~1% foreground).
//   build-<part>/bin/bench_post
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include <xtensor/xtensor.hpp>

#include "microcount/core/rng.hpp"
#include "microcount/post/components.hpp"
#include "microcount/post/mean_shift.hpp"
#include "microcount/post/nms.hpp"
#include "microcount/post/peaks.hpp"

using namespace microcount;

namespace {

constexpr std::size_t T = 1000, H = 400, W = 300;
constexpr std::size_t blobs = 50000;

// Built once, outside the timed loops.
const xt::xtensor<float, 3>& movie_map() {
  static const xt::xtensor<float, 3> map = [] {
    auto m = xt::xtensor<float, 3>::from_shape({T, H, W});  // [T, H, W]
    rng r(7);
    for (auto& v : m) v = static_cast<float>((r.next() >> 40) * 0x1.0p-24 * 0.05);  // noise in [0, 0.05)
    for (std::size_t b = 0; b < blobs; ++b) {
      const double t0 = r.uniform(0, T - 1), y0 = r.uniform(0, H - 1), x0 = r.uniform(0, W - 1);
      const double peak = r.uniform(0.5, 1.0);
      for (auto t = std::max(0L, std::lround(t0) - 2); t <= std::min<long>(T - 1, std::lround(t0) + 2); ++t)
        for (auto y = std::max(0L, std::lround(y0) - 4); y <= std::min<long>(H - 1, std::lround(y0) + 4); ++y)
          for (auto x = std::max(0L, std::lround(x0) - 4); x <= std::min<long>(W - 1, std::lround(x0) + 4); ++x) {
            const double d2 = ((x - x0) * (x - x0) + (y - y0) * (y - y0)) / (2 * 1.5 * 1.5) + (t - t0) * (t - t0) / 2.0;
            auto& v = m(t, y, x);
            v = std::max(v, static_cast<float>(peak * std::exp(-d2)));
          }
    }
    return m;
  }();
  return map;
}

const xt::xtensor<std::uint8_t, 3>& segmentation() {
  static const xt::xtensor<std::uint8_t, 3> seg = [] {
    const auto& m = movie_map();
    auto s = xt::xtensor<std::uint8_t, 3>::from_shape(m.shape());
    std::transform(m.begin(), m.end(), s.begin(), [](float v) { return v > 0.3f ? std::uint8_t{2} : std::uint8_t{0}; });
    return s;
  }();
  return seg;
}

post::peak_options movie_peaks() {
  post::peak_options o;
  o.min_distance = 2;
  o.threshold_abs = 0.3f;
  return o;
}

void peaks_3d(benchmark::State& state) {
  const auto& m = movie_map();
  std::size_t found = 0;
  for (auto _ : state) found = post::find_peaks_3d(m, movie_peaks()).size();
  state.counters["peaks"] = static_cast<double>(found);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * m.size()));
}

// A threshold inside the noise: ~20% of the voxels pass, so candidates come from the dense max filter.
void peaks_3d_dense(benchmark::State& state) {
  const auto& m = movie_map();
  auto o = movie_peaks();
  o.threshold_abs = 0.04f;
  std::size_t found = 0;
  for (auto _ : state) found = post::find_peaks_3d(m, o).size();
  state.counters["peaks"] = static_cast<double>(found);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * m.size()));
}

void peaks_per_frame(benchmark::State& state) {
  const auto& m = movie_map();
  std::size_t found = 0;
  for (auto _ : state) found = post::find_peaks_per_frame(m, movie_peaks()).size();
  state.counters["peaks"] = static_cast<double>(found);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * m.size()));
}

void components_3d(benchmark::State& state) {
  const auto& s = segmentation();
  const int connectivity = static_cast<int>(state.range(0));
  std::size_t found = 0;
  for (auto _ : state) found = post::connected_components(s, connectivity).components.size();
  state.counters["components"] = static_cast<double>(found);
  state.counters["foreground_%"] = 100.0 * static_cast<double>(std::count(s.begin(), s.end(), 2)) / static_cast<double>(s.size());
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * s.size()));
}

void event_voxels(benchmark::State& state) {
  const auto& s = segmentation();
  std::size_t n = 0;
  for (auto _ : state) n = post::voxel_coordinates(s, [](std::uint8_t v) { return v == 2; }).size();
  state.counters["voxels"] = static_cast<double>(n);
}

void mean_shift_events(benchmark::State& state) {
  static const auto voxels = post::voxel_coordinates(segmentation(), [](std::uint8_t v) { return v == 2; });
  post::mean_shift_options<3> o;
  o.bandwidth = static_cast<double>(state.range(0));
  std::size_t modes = 0;
  for (auto _ : state) modes = post::mean_shift(voxels, o).centers.size();
  state.counters["voxels"] = static_cast<double>(voxels.size());
  state.counters["modes"] = static_cast<double>(modes);
}

void nms_peaks(benchmark::State& state) {
  static const auto peaks = post::find_peaks_per_frame(movie_map(), movie_peaks());
  post::nms_options o;
  o.radius = 4;
  o.frame_scale = 1;
  std::size_t kept = 0;
  for (auto _ : state) kept = post::non_maximum_suppression(peaks, o).size();
  state.counters["points"] = static_cast<double>(peaks.size());
  state.counters["kept"] = static_cast<double>(kept);
}

}  // namespace

BENCHMARK(peaks_3d)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(peaks_3d_dense)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(peaks_per_frame)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(components_3d)->Arg(6)->Arg(26)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(event_voxels)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(mean_shift_events)->Arg(5)->Arg(10)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(nms_peaks)->Unit(benchmark::kMillisecond)->UseRealTime();

BENCHMARK_MAIN();
