// Whole-image inference with the reference U-Net (unet2d<batch, transposed, 3>, base width 16) on backend::cpu:
// a 2048×2048 image (a mosaic of 64 vgg-cells images when the data is there) in 256-tiles, batch 8.
// Reports image Mpixel/s (pixels of the input image per second, overlap included in the cost) and, for scale,
// the raw network throughput on a batch of 256² tiles. seam_error: max |tiled − whole| / max |whole| on a
// 512² image, by margin (the depth-3 U-Net's receptive radius is 51 px: exact from there).
//
//   OMP_NUM_THREADS=2 build/bin/bench_infer [--benchmark_filter=predict]
#include <benchmark/benchmark.h>

#include <filesystem>
#include <string>

#include <xtensor/xview.hpp>

#include "microcount/backends/cpu.hpp"
#include "microcount/infer/predict.hpp"
#include "microcount/io/tiff.hpp"

using namespace microcount;

namespace {

using spec = nn::unet2d<nn::norm::batch, nn::up::transposed, 3>;
const spec::config config{.in_channels = 1, .out_channels = 1, .base_width = 16};

auto make_net() {
  rng r(1);
  auto net = spec::make<backend::cpu>(config);
  net.build({8, 1, 256, 256}, r);
  net.set_mode(nn::mode::evaluation);
  return net;
}

// [1, side, side]: vgg-cells images tiled side by side (random values without the data).
xt::xtensor<float, 3> test_image(std::size_t side) {
  xt::xtensor<float, 3> image = xt::zeros<float>({std::size_t{1}, side, side});
  const std::filesystem::path dir = std::filesystem::path(MICROCOUNT_DATA_DIR) / "vgg-cells";
  rng r(2);
  int k = 1;
  for (std::size_t y = 0; y < side; y += 256)
    for (std::size_t x = 0; x < side; x += 256, ++k) {
      char name[32];
      std::snprintf(name, sizeof name, "image_%03d.tif", k);
      auto block = xt::view(image, 0, xt::range(y, y + 256), xt::range(x, x + 256));
      if (std::filesystem::exists(dir / name)) {
        block = xt::view(io::read_tiff(dir / name).pixels, 0, 0) / 255.0f;
      } else {
        for (auto& v : block) v = static_cast<float>(r.uniform(0, 1));
      }
    }
  return image;
}

void predict_2048(benchmark::State& state) {
  auto net = make_net();
  const auto image = test_image(2048);
  const index_t margin = state.range(0);
  const auto flips = static_cast<infer::tta>(state.range(1));
  const infer::predict_options<2> opts{.tile = {256, 256}, .margin = {margin, margin},
                                       .divisor = infer::size_divisor<spec>(config), .batch = 8, .flips = flips};
  const auto plan = infer::plan_tiles<2>({2048, 2048}, {opts.tile, opts.margin, opts.divisor});
  for (auto _ : state) benchmark::DoNotOptimize(infer::predict(net, image, opts).data());
  state.counters["tiles"] = static_cast<double>(plan.count());
  state.counters["Mpixel/s"] = benchmark::Counter(2048.0 * 2048.0 / 1e6 * static_cast<double>(state.iterations()),
                                                  benchmark::Counter::kIsRate);
}

// The network alone on one batch of 8 tiles of 256²: the ceiling tiling overheads are measured against.
void forward_batch8_256(benchmark::State& state) {
  auto net = make_net();
  nn::tensor_t<backend::cpu> x({8, 1, 256, 256});
  rng r(3);
  for (index_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(r.uniform(0, 1));
  for (auto _ : state) benchmark::DoNotOptimize(net.forward(x).data());
  state.counters["Mpixel/s"] = benchmark::Counter(8 * 256.0 * 256.0 / 1e6 * static_cast<double>(state.iterations()),
                                                  benchmark::Counter::kIsRate);
}

void seam_error(benchmark::State& state) {
  auto net = make_net();
  const auto image = test_image(512);
  nn::tensor_t<backend::cpu> x({1, 1, 512, 512});
  std::copy(image.begin(), image.end(), x.data());
  const auto whole = net.forward(x);  // [1, 1, 512, 512]
  const index_t margin = state.range(0);
  double err = 0, scale = 0;
  for (auto _ : state) {
    const auto tiled = infer::predict(net, image, {.tile = {256, 256}, .margin = {margin, margin},
                                                   .divisor = infer::size_divisor<spec>(config), .batch = 8});
    err = scale = 0;
    for (index_t i = 0; i < whole.size(); ++i) {
      err = std::max(err, static_cast<double>(std::abs(tiled.data()[i] - whole[i])));
      scale = std::max(scale, static_cast<double>(std::abs(whole[i])));
    }
  }
  state.counters["max_rel_err"] = err / scale;
}

}  // namespace

// margin, tta (0 none, 1 flips, 2 d4)
BENCHMARK(predict_2048)->ArgNames({"margin", "tta"})->Args({0, 0})->Args({32, 0})->Args({56, 0})->Args({32, 1})
    ->Unit(benchmark::kMillisecond)->Iterations(1)->UseRealTime();
BENCHMARK(forward_batch8_256)->Unit(benchmark::kMillisecond)->MinTime(2.0)->UseRealTime();
BENCHMARK(seam_error)->ArgName("margin")->Arg(8)->Arg(16)->Arg(32)->Arg(48)->Arg(56)->Iterations(1)
    ->Unit(benchmark::kMillisecond)->UseRealTime();

BENCHMARK_MAIN();
