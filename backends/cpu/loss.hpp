#pragma once
// cpu kernels of the losses: the per-channel sum (kernel<ops::channel_sum, cpu>).
// Deterministic by construction: every (sample, channel) segment is cut into fixed chunks whose partial
// sums (double, 8 interleaved accumulators the compiler vectorises) land in their own slot; the slots
// are then added in index order. The result is the same for any thread count.
#include <algorithm>
#include <vector>

#include "microcount/backends/cpu/launch.hpp"
#include "microcount/core/parallel.hpp"
#include "microcount/nn/loss.hpp"

namespace microcount {

namespace cpu_detail {
// Σ x[0, n) (or Σ x²) in double, always grouped the same way.
template <bool Squares, class T>
double chunk_sum(const T* x, index_t n) {
  constexpr int lanes = 8;
  double acc[lanes] = {};
  index_t i = 0;
  for (; i + lanes <= n; i += lanes)
    for (int k = 0; k < lanes; ++k) {
      const double v = static_cast<double>(x[i + k]);
      acc[k] += Squares ? v * v : v;
    }
  double s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (; i < n; ++i) {
    const double v = static_cast<double>(x[i]);
    s += Squares ? v * v : v;
  }
  return s;
}
}  // namespace cpu_detail

template <>
struct kernel<ops::channel_sum, backend::cpu> {
  using op = ops::channel_sum;
  static constexpr index_t chunk = 1 << 14;  // elements per partial sum (and per parallel task)

  // x [outer, channels, inner] -> out [channels]
  template <class T>
  static void run(const op& o, const T* x, index_t outer, index_t channels, index_t inner, double* out) {
    const index_t pieces = std::max<index_t>(1, (inner + chunk - 1) / chunk);  // chunks per segment
    const index_t tasks = channels * outer * pieces;  // task = (c·outer + n)·pieces + k: channel-major
    std::vector<double> partial(static_cast<std::size_t>(tasks));
    auto work = [&](index_t task) {
      const index_t k = task % pieces, segment = task / pieces;
      const index_t n = segment % outer, c = segment / outer;
      const index_t begin = k * chunk, count = std::min(inner, begin + chunk) - begin;
      const T* base = x + (n * channels + c) * inner + begin;
      partial[task] = o.squares ? cpu_detail::chunk_sum<true>(base, count) : cpu_detail::chunk_sum<false>(base, count);
    };
    if (outer * channels * inner < 2 * chunk) {
      for (index_t t = 0; t < tasks; ++t) work(t);
    } else {
      parallel_for(0, tasks, work);
    }
    for (index_t c = 0; c < channels; ++c) {
      double s = 0;
      for (index_t t = c * outer * pieces; t < (c + 1) * outer * pieces; ++t) s += partial[t];
      out[c] = s;
    }
  }
};

}  // namespace microcount
