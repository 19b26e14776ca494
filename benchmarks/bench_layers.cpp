// The cpu layer kernels at the reference U-Net's activation sizes (batch 8, 256×256 input, widths 16…128).
// Throughput is "effective" bandwidth: the bytes a kernel must at least read and write once (e.g. BN
// forward: x in, y out), so 2× the time means half the GB/s whatever the kernel does internally.
// memcpy of the same bytes is the machine's practical ceiling.
//   build-x/bin/bench_layers --benchmark_min_time=0.3
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "microcount/backends/cpu.hpp"
#include "microcount/core/rng.hpp"

using namespace microcount;

namespace {
using cpu = backend::cpu;
using T = float;

tensor<T, cpu> random(const shape& s, std::uint64_t seed) {
  rng r(seed);
  tensor<T, cpu> t(s);
  for (index_t i = 0; i < t.size(); ++i) t[i] = static_cast<T>(r.uniform(-2, 2));
  return t;
}
tensor_view<const T, 3> cv(const tensor<T, cpu>& t) {
  return tensor_view<const T, 3>::contiguous(t.data(), {t.dim(0), t.dim(1), t.shape().size_from(2)});
}
tensor_view<T, 3> mv(tensor<T, cpu>& t) {
  return tensor_view<T, 3>::contiguous(t.data(), {t.dim(0), t.dim(1), t.shape().size_from(2)});
}
// The U-Net level for state.range(0) = 0..3: [8, 16·2^l, 256/2^l, 256/2^l].
shape level(const benchmark::State& state) {
  const index_t l = state.range(0);
  return shape{8, 16 << l, 256 >> l, 256 >> l};
}
void bytes(benchmark::State& state, index_t elements_moved) {
  state.SetBytesProcessed(state.iterations() * elements_moved * index_t(sizeof(T)));
}

void BM_memcpy(benchmark::State& state) {
  const shape s = level(state);
  auto x = random(s, 1);
  tensor<T, cpu> y(s);
  for (auto _ : state) {
    parallel_for(0, s[0] * s[1], [&](index_t p) {
      const index_t plane = s.size_from(2);
      std::memcpy(y.data() + p * plane, x.data() + p * plane, sizeof(T) * plane);
    });
    benchmark::DoNotOptimize(y.data());
  }
  bytes(state, 2 * s.size());
}

void BM_batch_norm_forward_training(benchmark::State& state) {
  const shape s = level(state);
  const index_t c = s[1];
  auto x = random(s, 1);
  tensor<T, cpu> y(s), gamma = random({c}, 2), beta = random({c}, 3), mean({c}), invstd({c}), rm({c}), rv({c});
  for (auto _ : state)
    kernel<ops::batch_norm, cpu>::forward_training({}, cv(x), gamma.data(), beta.data(), mv(y), mean.data(),
                                                   invstd.data(), rm.data(), rv.data());
  bytes(state, 2 * s.size());
}

void BM_batch_norm_forward_inference(benchmark::State& state) {
  const shape s = level(state);
  const index_t c = s[1];
  auto x = random(s, 1);
  tensor<T, cpu> y(s), gamma = random({c}, 2), beta = random({c}, 3), rm = random({c}, 4), rv = random({c}, 5);
  for (index_t i = 0; i < c; ++i) rv[i] = 1 + rv[i] * rv[i];
  for (auto _ : state)
    kernel<ops::batch_norm, cpu>::forward_inference({}, cv(x), gamma.data(), beta.data(), rm.data(), rv.data(), mv(y));
  bytes(state, 2 * s.size());
}

void BM_batch_norm_backward_training(benchmark::State& state) {
  const shape s = level(state);
  const index_t c = s[1];
  auto x = random(s, 1), dy = random(s, 2);
  tensor<T, cpu> dx(s), gamma = random({c}, 3), mean = random({c}, 4), invstd = random({c}, 5), dg({c}), db({c});
  for (auto _ : state)
    kernel<ops::batch_norm, cpu>::backward_training({}, cv(x), cv(dy), gamma.data(), mean.data(), invstd.data(), mv(dx),
                                                    dg.data(), db.data());
  bytes(state, 3 * s.size());  // x, dy in; dx out
}

void BM_relu_forward(benchmark::State& state) {
  const shape s = level(state);
  auto x = random(s, 1);
  tensor<T, cpu> y(s);
  for (auto _ : state) kernel<ops::relu, cpu>::forward({}, s.size(), x.data(), y.data());
  bytes(state, 2 * s.size());
}

void BM_relu_backward(benchmark::State& state) {
  const shape s = level(state);
  auto y = random(s, 1), dy = random(s, 2);
  tensor<T, cpu> dx(s);
  for (auto _ : state) kernel<ops::relu, cpu>::backward({}, s.size(), y.data(), dy.data(), dx.data());
  bytes(state, 3 * s.size());
}

// max_pool 2×2/2 of level l's activation (the encoder's down step); range(1) = 1 keeps argmax (training).
void BM_max_pool_forward(benchmark::State& state) {
  const shape s = level(state);
  const ops::max_pool<2> op{};
  const shape out = op.output_shape(s);
  auto x = random(s, 1);
  tensor<T, cpu> y(out);
  std::vector<std::int32_t> argmax(state.range(1) ? out.size() : 0);
  for (auto _ : state)
    kernel<ops::max_pool<2>, cpu>::forward(op, x.view<4>(), y.view<4>(), state.range(1) ? argmax.data() : nullptr);
  bytes(state, s.size() + out.size() * (state.range(1) ? 2 : 1));  // int32 argmax: as many bytes as a float
}

void BM_max_pool_backward(benchmark::State& state) {
  const shape s = level(state);
  const ops::max_pool<2> op{};
  const shape out = op.output_shape(s);
  auto x = random(s, 1), dy = random(out, 2);
  tensor<T, cpu> y(out), dx(s);
  std::vector<std::int32_t> argmax(out.size());
  kernel<ops::max_pool<2>, cpu>::forward(op, x.view<4>(), y.view<4>(), argmax.data());
  for (auto _ : state) kernel<ops::max_pool<2>, cpu>::backward(op, dy.view<4>(), argmax.data(), dx.view<4>());
  bytes(state, s.size() + 2 * out.size());
}

// The decoder's skip: concat(skip [8, C, H, W], up [8, C, H, W]) -> [8, 2C, H, W], and the split back.
void BM_concat_forward(benchmark::State& state) {
  const shape s = level(state);
  shape sy = s;
  sy[1] *= 2;
  auto a = random(s, 1), b = random(s, 2);
  tensor<T, cpu> y(sy);
  for (auto _ : state) kernel<ops::concat, cpu>::forward({}, cv(a), cv(b), mv(y));
  bytes(state, 2 * sy.size());
}

void BM_concat_backward(benchmark::State& state) {
  const shape s = level(state);
  shape sy = s;
  sy[1] *= 2;
  auto dy = random(sy, 1);
  tensor<T, cpu> da(s), db(s);
  for (auto _ : state) kernel<ops::concat, cpu>::backward({}, cv(dy), mv(da), mv(db));
  bytes(state, 2 * sy.size());
}

// ×2 upsampling into level l (from level l+1's spatial size, level l's width); range(1): 0 nearest, 1 bilinear.
void BM_upsample_forward(benchmark::State& state) {
  const shape s = level(state);
  const shape in{s[0], s[1], s[2] / 2, s[3] / 2};
  const ops::upsample<2> op{{2, 2}, state.range(1) ? ops::upsample_mode::linear : ops::upsample_mode::nearest};
  auto x = random(in, 1);
  tensor<T, cpu> y(s);
  for (auto _ : state) kernel<ops::upsample<2>, cpu>::forward(op, x.view<4>(), y.view<4>());
  bytes(state, in.size() + s.size());
}

void BM_upsample_backward(benchmark::State& state) {
  const shape s = level(state);
  const shape in{s[0], s[1], s[2] / 2, s[3] / 2};
  const ops::upsample<2> op{{2, 2}, state.range(1) ? ops::upsample_mode::linear : ops::upsample_mode::nearest};
  auto dy = random(s, 1);
  tensor<T, cpu> dx(in);
  for (auto _ : state) kernel<ops::upsample<2>, cpu>::backward(op, dy.view<4>(), dx.view<4>());
  bytes(state, in.size() + s.size());
}

void BM_softmax_forward(benchmark::State& state) {
  const shape s{8, state.range(0), 256, 256};  // a class map's logits
  auto x = random(s, 1);
  tensor<T, cpu> y(s);
  for (auto _ : state) kernel<ops::softmax, cpu>::forward({}, cv(x), mv(y));
  bytes(state, 2 * s.size());
}

void levels(benchmark::internal::Benchmark* b) {
  for (int l = 0; l < 4; ++l) b->Arg(l);
  b->Unit(benchmark::kMillisecond)->UseRealTime();
}
void levels_and_flag(benchmark::internal::Benchmark* b) {
  for (int flag = 0; flag < 2; ++flag)
    for (int l = 0; l < 4; ++l) b->Args({l, flag});
  b->Unit(benchmark::kMillisecond)->UseRealTime();
}

}  // namespace

BENCHMARK(BM_memcpy)->Apply(levels);
BENCHMARK(BM_batch_norm_forward_training)->Apply(levels);
BENCHMARK(BM_batch_norm_forward_inference)->Apply(levels);
BENCHMARK(BM_batch_norm_backward_training)->Apply(levels);
BENCHMARK(BM_relu_forward)->Apply(levels);
BENCHMARK(BM_relu_backward)->Apply(levels);
BENCHMARK(BM_max_pool_forward)->Apply(levels_and_flag);
BENCHMARK(BM_max_pool_backward)->Apply(levels);
BENCHMARK(BM_concat_forward)->Apply(levels);
BENCHMARK(BM_concat_backward)->Apply(levels);
BENCHMARK(BM_upsample_forward)->Apply(levels_and_flag);
BENCHMARK(BM_upsample_backward)->Apply(levels_and_flag);
BENCHMARK(BM_softmax_forward)->Arg(2)->Arg(4)->Unit(benchmark::kMillisecond)->UseRealTime();

BENCHMARK_MAIN();
