// Convolution kernels on the reference U-Net's layer shapes (batch 8): every function of conv<2> and
// conv_transpose<2> on backend::cpu, and backend::reference on tiny shapes for scale. Reports GFLOP/s
// (2 · multiply-adds per second; forward, backward-data and backward-weights have the same count).
//
//   OMP_NUM_THREADS=2 build/bin/bench_conv [--benchmark_filter=cpu/conv3x3]
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "microcount/backends/cpu.hpp"
#include "microcount/backends/reference.hpp"
#include "microcount/core/rng.hpp"

using namespace microcount;

namespace {

struct problem {
  std::string name;  // e.g. "conv3x3 16->16 @256"
  bool transposed;   // conv_transpose (2×2 stride 2) instead of conv
  index_t n, ic, oc, size, k;
  int stride, pad;
  bool bias;
};

enum class function { forward, forward_fused, backward_data, backward_weights };
const char* name_of(function f) {
  switch (f) {
    case function::forward: return "forward";
    case function::forward_fused: return "forward_fused";
    case function::backward_data: return "backward_data";
    default: return "backward_weights";
  }
}

std::vector<float> random_vector(index_t n, rng& r) {
  std::vector<float> v(static_cast<std::size_t>(n));
  for (auto& e : v) e = static_cast<float>(r.uniform(-1, 1));
  return v;
}

template <class Op, class B>
void run(benchmark::State& state, const problem& p, function f) {
  using K = kernel<Op, B>;
  Op op;
  op.stride = {p.stride, p.stride};
  op.pad = {p.pad, p.pad};
  const shape xs{p.n, p.ic, p.size, p.size};
  const shape ws = p.transposed ? shape{p.ic, p.oc, p.k, p.k} : shape{p.oc, p.ic, p.k, p.k};
  const shape ys = op.output_shape(xs, ws);
  rng r(1);
  auto x = random_vector(xs.size(), r), w = random_vector(ws.size(), r), dy = random_vector(ys.size(), r);
  auto b = random_vector(p.oc, r), scale = random_vector(p.oc, r), shift = random_vector(p.oc, r);
  std::vector<float> y(static_cast<std::size_t>(ys.size())), dx(x.size()), dw(w.size()), db(b.size());
  std::vector<double> sum(b.size()), squares(b.size());
  auto cv = [](const std::vector<float>& v, const shape& s) {
    return tensor_view<const float, 4>::contiguous(v.data(), {s[0], s[1], s[2], s[3]});
  };
  auto mv = [](std::vector<float>& v, const shape& s) {
    return tensor_view<float, 4>::contiguous(v.data(), {s[0], s[1], s[2], s[3]});
  };
  const float* bias = p.bias ? b.data() : nullptr;
  auto call = [&] {
    switch (f) {
      case function::forward: K::forward(op, cv(x, xs), cv(w, ws), bias, mv(y, ys)); break;
      case function::forward_fused:
        if constexpr (requires { &K::forward_fused; }) {
          conv_epilogue e;  // training: statistics; the scale/shift/ReLU store costs the same
          e.sum = sum.data();
          e.sum_squares = squares.data();
          e.scale = scale.data();
          e.shift = shift.data();
          e.relu = true;
          K::forward_fused(op, cv(x, xs), cv(w, ws), bias, e, mv(y, ys));
        }
        break;
      case function::backward_data: K::backward_data(op, cv(dy, ys), cv(w, ws), mv(dx, xs)); break;
      case function::backward_weights:
        K::backward_weights(op, cv(x, xs), cv(dy, ys), mv(dw, ws), p.bias ? db.data() : nullptr);
        break;
    }
  };
  call();  // warm-up: first touch of the outputs and the kernels' scratch buffers
  for (auto _ : state) {
    call();
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  // Multiply-adds: every output of the (forward) convolution takes IC·taps of them.
  const shape& conv_out = p.transposed ? xs : ys;
  const index_t conv_in_channels = p.transposed ? p.oc : p.ic, conv_out_channels = p.transposed ? p.ic : p.oc;
  const double flops = 2.0 * static_cast<double>(p.n * conv_out_channels * conv_in_channels * p.k * p.k *
                                                 conv_out[2] * conv_out[3]);
  state.counters["GFLOP/s"] = benchmark::Counter(flops * static_cast<double>(state.iterations()) * 1e-9,
                                                 benchmark::Counter::kIsRate);
}

template <class B>
void register_problem(const std::string& backend_name, const problem& p) {
  for (function f : {function::forward, function::forward_fused, function::backward_data, function::backward_weights}) {
    if (f == function::forward_fused && (p.transposed || backend_name != "cpu")) continue;
    const std::string name = backend_name + "/" + p.name + "/" + name_of(f);
    if (p.transposed)
      benchmark::RegisterBenchmark(name.c_str(), [p, f](benchmark::State& s) { run<ops::conv_transpose<2>, B>(s, p, f); })
          ->UseRealTime()
          ->Unit(benchmark::kMillisecond);
    else
      benchmark::RegisterBenchmark(name.c_str(), [p, f](benchmark::State& s) { run<ops::conv<2>, B>(s, p, f); })
          ->UseRealTime()
          ->Unit(benchmark::kMillisecond);
  }
}

problem conv3x3(index_t ic, index_t oc, index_t size, index_t n = 8) {
  return {"conv3x3 " + std::to_string(ic) + "->" + std::to_string(oc) + " @" + std::to_string(size), false, n, ic, oc,
          size, 3, 1, 1, false};
}

}  // namespace

int main(int argc, char** argv) {
  // The U-Net (base width 16, depth 3) at batch 8, 256×256: encoder, bottom, decoder after concatenation.
  const std::vector<problem> unet = {
      conv3x3(1, 16, 256),  conv3x3(16, 16, 256), conv3x3(32, 16, 256), conv3x3(16, 32, 128), conv3x3(32, 32, 128),
      conv3x3(64, 32, 128), conv3x3(32, 64, 64),  conv3x3(64, 64, 64),  conv3x3(128, 64, 64), conv3x3(64, 128, 32),
      conv3x3(128, 128, 32),
      {"upconv2x2 128->64 @32", true, 8, 128, 64, 32, 2, 2, 0, true},
      {"upconv2x2 64->32 @64", true, 8, 64, 32, 64, 2, 2, 0, true},
      {"upconv2x2 32->16 @128", true, 8, 32, 16, 128, 2, 2, 0, true},
      {"head1x1 16->1 @256", false, 8, 16, 1, 256, 1, 1, 0, true},
  };
  for (const auto& p : unet) register_problem<backend::cpu>("cpu", p);
  // The scalar reference on small shapes, for scale.
  for (const auto& p : {conv3x3(16, 16, 32, 1), conv3x3(64, 64, 16, 1)}) register_problem<backend::reference>("reference", p);

  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
