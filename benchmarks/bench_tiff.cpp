// TIFF reading and writing speed on the real files and on generated stacks (docs/images.md).
//   build-*/bin/bench_tiff --benchmark_min_time=0.2
#include <cstdlib>
#include <filesystem>
#include <string>

#include <benchmark/benchmark.h>

#include "microcount/io/tiff.hpp"

namespace {

namespace fs = std::filesystem;
using namespace microcount;

fs::path data(const char* relative) { return fs::path(MICROCOUNT_DATA_DIR) / relative; }

fs::path scratch_dir() {
  const fs::path dir = fs::temp_directory_path() / ("microcount-bench-tiff-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return dir;
}

void read_file(benchmark::State& state, const fs::path& path) {
  if (!fs::exists(path)) {
    state.SkipWithError(("missing " + path.string()).c_str());
    return;
  }
  std::size_t values = 0;
  for (auto _ : state) {
    const io::image img = io::read_tiff(path);
    values = img.pixels.size();
    benchmark::DoNotOptimize(img.pixels.data());
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * values));
  state.counters["pixels"] = static_cast<double>(values);
}

void BM_read_vgg_uint8(benchmark::State& s) { read_file(s, data("vgg-cells/image_001.tif")); }
void BM_read_mbm_rgb_lzw(benchmark::State& s) { read_file(s, data("mbm/BM_GRAZ_HE_0001_01_000.tif")); }
void BM_read_deep_events_float16(benchmark::State& s) { read_file(s, data("formats/deep-events/event1_images.tif")); }

// A movie of `pages` 128×128 uint16 frames (deflate when range(1) is 1).
fs::path movie(std::size_t pages, bool deflate) {
  const fs::path p = scratch_dir() / ("movie" + std::to_string(pages) + (deflate ? "z" : "") + ".tif");
  if (!fs::exists(p)) {
    io::image img;
    img.pixels = xt::xtensor<float, 4>::from_shape({pages, 1, 128, 128});  // [F, C, H, W]
    for (std::size_t i = 0; i < img.pixels.size(); ++i) img.pixels.data()[i] = static_cast<float>((i * 7919) % 4096);
    io::write_tiff(p, img, io::dtype::uint16, deflate ? io::tiff_compression::deflate : io::tiff_compression::none);
  }
  return p;
}

void BM_read_movie_uint16(benchmark::State& s) { read_file(s, movie(static_cast<std::size_t>(s.range(0)), s.range(1) != 0)); }

// Headers only: walking every IFD of a long movie.
void BM_info_movie(benchmark::State& state) {
  const fs::path p = movie(static_cast<std::size_t>(state.range(0)), false);
  for (auto _ : state) benchmark::DoNotOptimize(io::read_tiff_info(p).frames);
  state.SetItemsProcessed(state.iterations() * state.range(0));  // pages per second
}

void BM_write_float32_stack(benchmark::State& state) {
  io::image img;
  img.pixels = xt::xtensor<float, 4>::from_shape({16, 1, 512, 512});
  for (std::size_t i = 0; i < img.pixels.size(); ++i) img.pixels.data()[i] = static_cast<float>(i % 1000) * 0.5f;
  const fs::path p = scratch_dir() / "write.tif";
  for (auto _ : state) io::write_tiff(p, img, io::dtype::float32, state.range(0) ? io::tiff_compression::deflate
                                                                                  : io::tiff_compression::none);
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * img.pixels.size() * sizeof(float)));
}

}  // namespace

BENCHMARK(BM_read_vgg_uint8)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_read_mbm_rgb_lzw)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_read_deep_events_float16)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_read_movie_uint16)->Args({200, 0})->Args({200, 1})->Unit(benchmark::kMillisecond);
BENCHMARK(BM_info_movie)->Arg(2000)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_write_float32_stack)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  std::error_code ec;
  fs::remove_all(scratch_dir(), ec);
  return 0;
}
