// Losses and optimizer steps at the reference U-Net's training size: batch 8 of 256×256 density maps and
// the model's 482,449 parameters (one tensor per layer is close enough: the update is memory-bound).
//   build-x/bin/bench_loss_optim --benchmark_min_time=0.2
#include <benchmark/benchmark.h>

#include <vector>

#include "microcount/backends/cpu/loss.hpp"
#include "microcount/backends/reference/loss.hpp"
#include "microcount/core/rng.hpp"
#include "microcount/nn/loss.hpp"
#include "microcount/nn/optim.hpp"

using namespace microcount;

namespace {

template <class B>
tensor<float, B> random(const shape& s, double lo, double hi, std::uint64_t seed) {
  rng r(seed);
  tensor<float, B> t(s);
  for (index_t i = 0; i < t.size(); ++i) t[i] = static_cast<float>(r.uniform(lo, hi));
  return t;
}

template <class B, class Loss>
void run_loss(benchmark::State& state, const Loss& loss, index_t channels, bool labels) {
  const shape s{8, channels, 256, 256};
  const auto x = random<B>(s, -3, 3, 1);
  auto t = labels ? random<B>(shape{8, 256, 256}, 0, static_cast<double>(channels) - 1e-3, 2) : random<B>(s, 0, 1, 2);
  if (labels)
    for (index_t i = 0; i < t.size(); ++i) t[i] = static_cast<float>(static_cast<int>(t[i]));
  for (auto _ : state) {
    auto r = loss.evaluate(x, t);
    benchmark::DoNotOptimize(r.value);
  }
  state.SetItemsProcessed(state.iterations() * s.size());
}

template <class B>
void BM_mse(benchmark::State& state) { run_loss<B>(state, nn::mse_loss{}, 1, false); }
template <class B>
void BM_bce(benchmark::State& state) { run_loss<B>(state, nn::bce_with_logits_loss{}, 1, false); }
template <class B>
void BM_focal_sigmoid(benchmark::State& state) { run_loss<B>(state, nn::focal_loss{}, 1, false); }
template <class B>
void BM_focal_softmax_labels(benchmark::State& state) {
  run_loss<B>(state, nn::focal_loss{nn::focal_loss::activation::softmax, 0.25, 2.0, {}}, 3, true);
}
template <class B>
void BM_tversky_softmax_labels(benchmark::State& state) { run_loss<B>(state, nn::tversky_loss{}, 3, true); }

template <class B, class Optimizer>
void run_optimizer(benchmark::State& state) {
  // 482,449 values split like the U-Net's biggest tensors plus a tail.
  const std::vector<index_t> sizes = {128 * 128 * 9, 128 * 64 * 9, 64 * 128 * 9, 64 * 64 * 9, 128 * 64 * 4,
                                      64 * 32 * 9,   32 * 64 * 9,  32 * 32 * 9,  16 * 32 * 9, 2081};
  std::vector<tensor<float, B>> values, grads;
  values.reserve(sizes.size()), grads.reserve(sizes.size());
  nn::parameter_list<B> ps;
  index_t total = 0;
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    values.push_back(random<B>(shape{sizes[i]}, -0.1, 0.1, 10 + i));
    grads.push_back(random<B>(shape{sizes[i]}, -1, 1, 20 + i));
    ps.push_back({std::to_string(i), &values.back(), &grads.back(), true});
    total += sizes[i];
  }
  Optimizer opt(ps);
  for (auto _ : state) {
    opt.step();
    benchmark::ClobberMemory();
  }
  state.counters["params"] = static_cast<double>(total);
  state.SetItemsProcessed(state.iterations() * total);
}
template <class B>
void BM_adam_step(benchmark::State& state) { run_optimizer<B, nn::adam<B>>(state); }
template <class B>
void BM_sgd_momentum_step(benchmark::State& state) {
  struct sgd_momentum : nn::sgd<B> {
    explicit sgd_momentum(nn::parameter_list<B> ps) : nn::sgd<B>(std::move(ps), {.lr = 0.01, .momentum = 0.9}) {}
  };
  run_optimizer<B, sgd_momentum>(state);
}

}  // namespace

BENCHMARK(BM_mse<backend::cpu>)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_mse<backend::reference>)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_bce<backend::cpu>)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_focal_sigmoid<backend::cpu>)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_focal_sigmoid<backend::reference>)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_focal_softmax_labels<backend::cpu>)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_tversky_softmax_labels<backend::cpu>)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_adam_step<backend::cpu>)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_adam_step<backend::reference>)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_sgd_momentum_step<backend::cpu>)->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
