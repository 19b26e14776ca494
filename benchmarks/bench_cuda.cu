// GPU benchmarks: every cuda kernel at the reference U-Net's sizes (batch 8, 256×256, widths 16…128), and
// the cudnn backend's convolutions and batch norm side by side with the hand-written ones. Times are GPU
// times from CUDA events around each call (manual time); on a machine without a GPU every benchmark is
// skipped with "no CUDA device". Build with -DMICROCOUNT_WITH_CUDA=ON -DMICROCOUNT_BUILD_BENCHMARKS=ON, run
//   build/bin/bench_cuda --benchmark_filter='conv_forward'      (docs/cuda.md)
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdio>
#include <vector>

#include "microcount/backends/cudnn.hpp"
#include "microcount/core/rng.hpp"

namespace {

using namespace microcount;
using dev_t = tensor<float, backend::cuda>;  // cuda and cudnn share memory: one tensor type for both

constexpr index_t batch = 8;

// Skips the benchmark (once, with the reason) when there is no GPU to time.
bool have_device(benchmark::State& state) {
  static const bool present = cuda::device_count() > 0;
  if (!present) state.SkipWithError("no CUDA device");
  return present;
}

dev_t random_device(const shape& s, std::uint64_t seed) {
  rng r(seed);
  std::vector<float> host(static_cast<std::size_t>(s.size()));  // [s...]
  for (auto& v : host) v = static_cast<float>(r.uniform(-1, 1));
  dev_t t(s);
  t.upload(host.data());
  return t;
}

// GPU time of one call: events recorded around it on the default stream.
class gpu_timer {
 public:
  gpu_timer() {
    MICROCOUNT_CUDA_CHECK(cudaEventCreate(&start_));
    MICROCOUNT_CUDA_CHECK(cudaEventCreate(&stop_));
  }
  ~gpu_timer() {
    (void)cudaEventDestroy(start_);
    (void)cudaEventDestroy(stop_);
  }
  gpu_timer(const gpu_timer&) = delete;
  gpu_timer& operator=(const gpu_timer&) = delete;

  // Runs f, sets the iteration's manual time and returns it in seconds.
  template <class F>
  double time(benchmark::State& state, F&& f) {
    MICROCOUNT_CUDA_CHECK(cudaEventRecord(start_));
    f();
    MICROCOUNT_CUDA_CHECK(cudaEventRecord(stop_));
    MICROCOUNT_CUDA_CHECK(cudaEventSynchronize(stop_));
    float ms = 0;
    MICROCOUNT_CUDA_CHECK(cudaEventElapsedTime(&ms, start_, stop_));
    state.SetIterationTime(ms * 1e-3);
    return ms * 1e-3;
  }

 private:
  cudaEvent_t start_ = nullptr, stop_ = nullptr;
};

// Runs body per iteration under the timer; reports GPU GFLOP/s and GB/s from the per-call work.
template <class F>
void run_timed(benchmark::State& state, double flops, double bytes, F&& body) {
  body();  // warm-up: algorithm choice, workspace, first-touch allocations
  cuda::synchronize();
  gpu_timer timer;
  double seconds = 0;
  for (auto _ : state) seconds += timer.time(state, body);
  if (seconds > 0) {
    const double n = static_cast<double>(state.iterations());
    if (flops > 0) state.counters["GFLOP/s"] = flops * n / seconds * 1e-9;
    if (bytes > 0) state.counters["GB/s"] = bytes * n / seconds * 1e-9;
  }
}

// ---- convolutions: 3×3 pad 1 at each U-Net level (args: in channels, out channels, size) ----------------
struct conv_problem {
  ops::conv<2> op;
  dev_t x, w, b, y, dy, dx, dw, db;
  double flops;
  explicit conv_problem(const benchmark::State& state) {
    const index_t ic = state.range(0), oc = state.range(1), size = state.range(2);
    op.pad = {1, 1};
    x = random_device(shape{batch, ic, size, size}, 1);  // [N, IC, H, W]
    w = random_device(shape{oc, ic, 3, 3}, 2);          // [OC, IC, 3, 3]
    b = random_device(shape{oc}, 3);                    // [OC]
    dy = random_device(shape{batch, oc, size, size}, 4);  // [N, OC, H, W]
    y = dev_t(dy.shape());
    dx = dev_t(x.shape());
    dw = dev_t(w.shape());
    db = dev_t(b.shape());
    flops = 2.0 * double(batch * oc * size * size) * double(ic * 9);
  }
};

template <class B>
void conv_forward(benchmark::State& state) {
  if (!have_device(state)) return;
  conv_problem p(state);
  using K = kernel<ops::conv<2>, B>;
  run_timed(state, p.flops, 0, [&] { K::forward(p.op, p.x.view<4>(), p.w.view<4>(), p.b.data(), p.y.view<4>()); });
}
template <class B>
void conv_backward_data(benchmark::State& state) {
  if (!have_device(state)) return;
  conv_problem p(state);
  using K = kernel<ops::conv<2>, B>;
  run_timed(state, p.flops, 0, [&] { K::backward_data(p.op, p.dy.view<4>(), p.w.view<4>(), p.dx.view<4>()); });
}
template <class B>
void conv_backward_weights(benchmark::State& state) {
  if (!have_device(state)) return;
  conv_problem p(state);
  using K = kernel<ops::conv<2>, B>;
  run_timed(state, p.flops, 0,
            [&] { K::backward_weights(p.op, p.x.view<4>(), p.dy.view<4>(), p.dw.view<4>(), p.db.data()); });
}

void unet_conv_sizes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"ic", "oc", "size"});
  b->Args({1, 16, 256})->Args({16, 16, 256})->Args({32, 32, 128})->Args({64, 64, 64})->Args({128, 128, 32});
  b->Args({32, 16, 256});  // decoder: concatenated skip + up-sampled input
  b->UseManualTime()->Unit(benchmark::kMillisecond);
}

// ---- transposed convolution 2×2 stride 2 (the decoder's up-sampling; args: in channels, in size) -------
template <class B>
void conv_transpose_forward_backward(benchmark::State& state) {
  if (!have_device(state)) return;
  const index_t ic = state.range(0), oc = ic / 2, size = state.range(1);
  ops::conv_transpose<2> op;
  op.stride = {2, 2};
  const dev_t x = random_device(shape{batch, ic, size, size}, 5);               // [N, IC, H, W]
  const dev_t w = random_device(shape{ic, oc, 2, 2}, 6);                        // [IC, OC, 2, 2]
  const dev_t b = random_device(shape{oc}, 7);                                  // [OC]
  const dev_t dy = random_device(shape{batch, oc, 2 * size, 2 * size}, 8);      // [N, OC, 2H, 2W]
  dev_t y(dy.shape()), dx(x.shape()), dw(w.shape()), db(b.shape());
  using K = kernel<ops::conv_transpose<2>, B>;
  const double flops = 3 * 2.0 * double(batch * ic * size * size) * double(oc * 4);  // three passes
  run_timed(state, flops, 0, [&] {
    K::forward(op, x.view<4>(), w.view<4>(), b.data(), y.view<4>());
    K::backward_data(op, dy.view<4>(), w.view<4>(), dx.view<4>());
    K::backward_weights(op, x.view<4>(), dy.view<4>(), dw.view<4>(), db.data());
  });
}

// ---- batch normalisation (args: channels, size) --------------------------------------------------------
struct bn_problem {
  ops::batch_norm op;
  dev_t x, dy, y, dx, gamma, beta, mean, invstd, running_mean, running_var, dgamma, dbeta;
  double bytes;
  explicit bn_problem(const benchmark::State& state) {
    const index_t c = state.range(0), s = state.range(1) * state.range(1);
    x = random_device(shape{batch, c, s}, 9);    // [N, C, S]
    dy = random_device(shape{batch, c, s}, 10);  // [N, C, S]
    y = dev_t(x.shape());
    dx = dev_t(x.shape());
    gamma = random_device(shape{c}, 11);  // [C] each
    beta = random_device(shape{c}, 12);
    mean = dev_t(shape{c});
    invstd = dev_t(shape{c});
    running_mean = random_device(shape{c}, 13);
    running_var = random_device(shape{c}, 14);
    running_var.upload(std::vector<float>(static_cast<std::size_t>(c), 1.f).data());
    dgamma = dev_t(shape{c});
    dbeta = dev_t(shape{c});
    bytes = 4.0 * double(x.size()) * sizeof(float);  // read x (twice: statistics, normalise) + write y, read dy…
  }
};

template <class B>
void batch_norm_training(benchmark::State& state) {
  if (!have_device(state)) return;
  bn_problem p(state);
  using K = kernel<ops::batch_norm, B>;
  run_timed(state, 0, p.bytes, [&] {
    K::forward_training(p.op, p.x.view<3>(), p.gamma.data(), p.beta.data(), p.y.view<3>(), p.mean.data(),
                        p.invstd.data(), p.running_mean.data(), p.running_var.data());
  });
}
template <class B>
void batch_norm_inference(benchmark::State& state) {
  if (!have_device(state)) return;
  bn_problem p(state);
  using K = kernel<ops::batch_norm, B>;
  run_timed(state, 0, 2.0 * double(p.x.size()) * sizeof(float), [&] {
    K::forward_inference(p.op, p.x.view<3>(), p.gamma.data(), p.beta.data(), p.running_mean.data(),
                         p.running_var.data(), p.y.view<3>());
  });
}
template <class B>
void batch_norm_backward(benchmark::State& state) {
  if (!have_device(state)) return;
  bn_problem p(state);
  using K = kernel<ops::batch_norm, B>;
  K::forward_training(p.op, p.x.view<3>(), p.gamma.data(), p.beta.data(), p.y.view<3>(), p.mean.data(),
                      p.invstd.data(), p.running_mean.data(), p.running_var.data());
  run_timed(state, 0, p.bytes, [&] {
    K::backward_training(p.op, p.x.view<3>(), p.dy.view<3>(), p.gamma.data(), p.mean.data(), p.invstd.data(),
                         p.dx.view<3>(), p.dgamma.data(), p.dbeta.data());
  });
}

void unet_bn_sizes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"c", "size"});
  b->Args({16, 256})->Args({32, 128})->Args({64, 64})->Args({128, 32});
  b->UseManualTime()->Unit(benchmark::kMicrosecond);
}

// ---- the cuda backend's other kernels (cudnn runs these same kernels) ----------------------------------
void max_pool_forward_backward(benchmark::State& state) {
  if (!have_device(state)) return;
  const index_t c = state.range(0), size = state.range(1);
  ops::max_pool<2> op;
  const dev_t x = random_device(shape{batch, c, size, size}, 15);             // [N, C, H, W]
  const dev_t dy = random_device(shape{batch, c, size / 2, size / 2}, 16);    // [N, C, H/2, W/2]
  dev_t y(dy.shape()), dx(x.shape());
  tensor<std::int32_t, backend::cuda> argmax(dy.shape());  // [N, C, H/2, W/2]
  using K = kernel<ops::max_pool<2>, backend::cuda>;
  run_timed(state, 0, (2.0 * double(x.size()) + 3.0 * double(y.size())) * sizeof(float), [&] {
    K::forward(op, x.view<4>(), y.view<4>(), argmax.data());
    K::backward(op, dy.view<4>(), argmax.data(), dx.view<4>());
  });
}

void upsample_forward_backward(benchmark::State& state) {
  if (!have_device(state)) return;
  const index_t c = state.range(0), size = state.range(1);
  ops::upsample<2> op;
  op.mode = state.range(2) ? ops::upsample_mode::linear : ops::upsample_mode::nearest;
  const dev_t x = random_device(shape{batch, c, size, size}, 17);              // [N, C, H, W]
  const dev_t dy = random_device(shape{batch, c, 2 * size, 2 * size}, 18);     // [N, C, 2H, 2W]
  dev_t y(dy.shape()), dx(x.shape());
  using K = kernel<ops::upsample<2>, backend::cuda>;
  run_timed(state, 0, (2.0 * double(x.size()) + 2.0 * double(y.size())) * sizeof(float), [&] {
    K::forward(op, x.view<4>(), y.view<4>());
    K::backward(op, dy.view<4>(), dx.view<4>());
  });
}

void concat_forward_backward(benchmark::State& state) {
  if (!have_device(state)) return;
  const index_t c = state.range(0), size = state.range(1);
  const dev_t a = random_device(shape{batch, c, size, size}, 19), b = random_device(shape{batch, c, size, size}, 20);
  dev_t y(shape{batch, 2 * c, size, size}), da(a.shape()), db(b.shape());
  using K = kernel<ops::concat, backend::cuda>;
  run_timed(state, 0, 4.0 * double(y.size()) * sizeof(float), [&] {
    K::forward(ops::concat{}, a.view<4>(), b.view<4>(), y.view<4>());
    K::backward(ops::concat{}, tensor_view<const float, 4>(y.view<4>()), da.view<4>(), db.view<4>());
  });
}

void relu_forward_backward(benchmark::State& state) {
  if (!have_device(state)) return;
  const index_t n = state.range(0);
  const dev_t x = random_device(shape{n}, 21), dy = random_device(shape{n}, 22);
  dev_t y(shape{n}), dx(shape{n});
  using K = kernel<ops::relu, backend::cuda>;
  run_timed(state, 0, 5.0 * double(n) * sizeof(float), [&] {
    K::forward(ops::relu{}, n, x.data(), y.data());
    K::backward(ops::relu{}, n, y.data(), dy.data(), dx.data());
  });
}

void add_forward(benchmark::State& state) {
  if (!have_device(state)) return;
  const index_t n = state.range(0);
  const dev_t a = random_device(shape{n}, 23), b = random_device(shape{n}, 24);
  dev_t y(shape{n});
  using K = kernel<ops::add, backend::cuda>;
  run_timed(state, 0, 3.0 * double(n) * sizeof(float), [&] { K::forward(ops::add{}, n, a.data(), b.data(), y.data()); });
}

}  // namespace

BENCHMARK_TEMPLATE(conv_forward, backend::cuda)->Apply(unet_conv_sizes);
BENCHMARK_TEMPLATE(conv_forward, backend::cudnn)->Apply(unet_conv_sizes);
BENCHMARK_TEMPLATE(conv_backward_data, backend::cuda)->Apply(unet_conv_sizes);
BENCHMARK_TEMPLATE(conv_backward_data, backend::cudnn)->Apply(unet_conv_sizes);
BENCHMARK_TEMPLATE(conv_backward_weights, backend::cuda)->Apply(unet_conv_sizes);
BENCHMARK_TEMPLATE(conv_backward_weights, backend::cudnn)->Apply(unet_conv_sizes);
BENCHMARK_TEMPLATE(conv_transpose_forward_backward, backend::cuda)
    ->ArgNames({"ic", "size"})->Args({128, 32})->Args({64, 64})->Args({32, 128})
    ->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK_TEMPLATE(conv_transpose_forward_backward, backend::cudnn)
    ->ArgNames({"ic", "size"})->Args({128, 32})->Args({64, 64})->Args({32, 128})
    ->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK_TEMPLATE(batch_norm_training, backend::cuda)->Apply(unet_bn_sizes);
BENCHMARK_TEMPLATE(batch_norm_training, backend::cudnn)->Apply(unet_bn_sizes);
BENCHMARK_TEMPLATE(batch_norm_inference, backend::cuda)->Apply(unet_bn_sizes);
BENCHMARK_TEMPLATE(batch_norm_inference, backend::cudnn)->Apply(unet_bn_sizes);
BENCHMARK_TEMPLATE(batch_norm_backward, backend::cuda)->Apply(unet_bn_sizes);
BENCHMARK_TEMPLATE(batch_norm_backward, backend::cudnn)->Apply(unet_bn_sizes);
BENCHMARK(max_pool_forward_backward)->ArgNames({"c", "size"})->Args({16, 256})->Args({64, 64})
    ->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(upsample_forward_backward)->ArgNames({"c", "size", "linear"})->Args({64, 64, 0})->Args({64, 64, 1})
    ->Args({16, 128, 1})->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(concat_forward_backward)->ArgNames({"c", "size"})->Args({16, 256})->Args({64, 64})
    ->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(relu_forward_backward)->ArgName("n")->Arg(batch * 16 * 256 * 256)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(add_forward)->ArgName("n")->Arg(batch * 16 * 256 * 256)->UseManualTime()->Unit(benchmark::kMicrosecond);

int main(int argc, char** argv) {
  std::printf("bench_cuda: %s\n", microcount::cuda::describe_device().c_str());
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
