#pragma once
// Reference kernels of the losses: the per-channel sum (kernel<ops::channel_sum, ·>), one element at a
// time in index order, accumulated in double. The per-element loss math is shared (ONE BODY) and runs
// through the reference launcher.
#include "microcount/backends/reference/launch.hpp"
#include "microcount/nn/loss.hpp"

namespace microcount {

namespace reference_detail {
struct channel_sum_kernel {
  using op = ops::channel_sum;
  // x [outer, channels, inner] -> out [channels]
  template <class T>
  static void run(const op& o, const T* x, index_t outer, index_t channels, index_t inner, double* out) {
    for (index_t c = 0; c < channels; ++c) {
      double s = 0;
      for (index_t n = 0; n < outer; ++n) {
        const T* segment = x + (n * channels + c) * inner;
        for (index_t i = 0; i < inner; ++i) {
          const double v = static_cast<double>(segment[i]);
          s += o.squares ? v * v : v;
        }
      }
      out[c] = s;
    }
  }
};
}  // namespace reference_detail

template <>
struct kernel<ops::channel_sum, backend::reference> : reference_detail::channel_sum_kernel {};
template <>
struct kernel<ops::channel_sum, backend::reference_f64> : reference_detail::channel_sum_kernel {};

}  // namespace microcount
