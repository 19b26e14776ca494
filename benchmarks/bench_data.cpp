// Dataset views: samples per second through training chains on the real data, and batch assembly.
//   build-<part>/bin/bench_data
#include <benchmark/benchmark.h>

#include <filesystem>
#include <vector>

#include "microcount/core/rng.hpp"
#include "microcount/data/augment.hpp"
#include "microcount/data/batch.hpp"
#include "microcount/data/dataset.hpp"
#include "microcount/data/normalize.hpp"
#include "microcount/data/patches.hpp"

using namespace microcount;

namespace {

const std::filesystem::path data_dir{MICROCOUNT_DATA_DIR};

// vgg-cells: cached normalised images -> 128² patches -> D4, then (argument) 1: + intensity,
// 2: + intensity + noise.
template <class View>
void draw_all(benchmark::State& state, const View& view) {
  rng r(1);
  std::size_t i = 0;
  for (auto _ : state) {
    auto s = view.get(i++ % view.size(), r);
    benchmark::DoNotOptimize(s.image.pixels.data());
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

void vgg_chain(benchmark::State& state) {
  const auto base = data::cached(data::normalize_percentile(data::open_dataset(data_dir / "vgg-cells")));
  rng r(1);
  for (std::size_t i = 0; i < base.size(); ++i) (void)base.get(i, r);  // warm the cache
  const auto flipped = data::d4(data::random_patches(base, 128, 128, 8));
  const auto brighter = data::intensity(flipped, {{-0.1, 0.1}, {0.8, 1.2}, {0.8, 1.25}});
  const auto noisy = data::noise(brighter, 50, 0.01);
  if (state.range(0) == 0) draw_all(state, flipped);
  if (state.range(0) == 1) draw_all(state, brighter);
  if (state.range(0) == 2) draw_all(state, noisy);
}

// mbm: cached grey normalised 600² images -> rescale 0.8–1.25 -> 128² patches -> D4; argument 1: the
// fused random_scaled_patches instead of random_patches(rescale(...)).
void mbm_chain(benchmark::State& state) {
  const auto base = data::cached(data::normalize_percentile(data::to_grey(data::open_dataset(data_dir / "mbm"))));
  const auto view = data::d4(data::random_patches(data::rescale(base, 0.8, 1.25), 128, 128, 4));
  const auto fused = data::d4(data::random_scaled_patches(base, 128, 128, 0.8, 1.25, 4));
  const bool use_fused = state.range(0) != 0;
  rng r(1);
  for (std::size_t i = 0; i < base.size(); ++i) (void)base.get(i, r);
  std::size_t i = 0;
  for (auto _ : state) {
    auto s = use_fused ? fused.get(i % fused.size(), r) : view.get(i % view.size(), r);
    ++i;
    benchmark::DoNotOptimize(s.image.pixels.data());
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

// Percentile normalisation of one 600×600 RGB image (per channel).
void normalize_rgb(benchmark::State& state) {
  const auto ds = data::open_dataset(data_dir / "mbm");
  rng r;
  const data::sample s = ds.get(0, r);
  for (auto _ : state) {
    data::sample t = s;
    data::normalize_percentile(t);
    benchmark::DoNotOptimize(t.image.pixels.data());
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

// A batch of 8 vgg-cells patches with ×100 densities (σ = 2), drawn in parallel.
void vgg_batch(benchmark::State& state) {
  const auto base = data::cached(data::normalize_percentile(data::open_dataset(data_dir / "vgg-cells")));
  const auto view = data::d4(data::random_patches(base, 128, 128, 8));
  rng r(1);
  for (std::size_t i = 0; i < base.size(); ++i) (void)base.get(i, r);
  const std::vector<std::size_t> idx{3, 70, 400, 811, 1200, 1333, 1500, 1599};
  for (auto _ : state) {
    auto b = data::make_batch<backend::cpu>(view, idx, r, {.sigma = 2, .scale = 100});
    benchmark::DoNotOptimize(b.density.data());
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * idx.size()));
}

}  // namespace

BENCHMARK(vgg_chain)->Arg(0)->Arg(1)->Arg(2)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(mbm_chain)->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(normalize_rgb)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(vgg_batch)->Unit(benchmark::kMicrosecond)->UseRealTime();

BENCHMARK_MAIN();
