#pragma once
// Activations on backend::cuda. relu, leaky_relu and sigmoid are the reference's elementwise bodies run
// by the cuda for_each launcher (one thread per element); softmax over channels is one thread per
// (sample, position), looping over the channels in double exactly as the reference does.
#include "microcount/backends/cuda/launch.cuh"
#include "microcount/backends/cuda/ops_support.cuh"
#include "microcount/backends/reference/activation.hpp"

namespace microcount::cuda_ops {

// y(i, ·, j) = exp(x − max) / Σ exp(x − max) over the channels of one position.
struct softmax_forward_kernel {
  static constexpr const char* name = "softmax_forward";
  ncs_view<const float> x;
  ncs_view<float> y;
  template <class Ctx>
  MICROCOUNT_HOST_DEVICE void operator()(const Ctx& ctx) const {
    const index_t positions = x.n * x.s;
    for (index_t p = global_index(ctx); p < positions; p += global_stride(ctx)) {
      const index_t i = p / x.s, j = p % x.s;
      double largest = x(i, 0, j), sum = 0;
      for (index_t c = 1; c < x.c; ++c) largest = math::max<double>(largest, x(i, c, j));
      for (index_t c = 0; c < x.c; ++c) sum += math::exp(double(x(i, c, j)) - largest);
      for (index_t c = 0; c < x.c; ++c) y(i, c, j) = float(math::exp(double(x(i, c, j)) - largest) / sum);
    }
  }
};

// dx = y ⊙ (dy − Σ_c dy·y) per position.
struct softmax_backward_kernel {
  static constexpr const char* name = "softmax_backward";
  ncs_view<const float> y, dy;
  ncs_view<float> dx;
  template <class Ctx>
  MICROCOUNT_HOST_DEVICE void operator()(const Ctx& ctx) const {
    const index_t positions = y.n * y.s;
    for (index_t p = global_index(ctx); p < positions; p += global_stride(ctx)) {
      const index_t i = p / y.s, j = p % y.s;
      double dot = 0;
      for (index_t c = 0; c < y.c; ++c) dot += double(dy(i, c, j)) * y(i, c, j);
      for (index_t c = 0; c < y.c; ++c) dx(i, c, j) = float(y(i, c, j) * (dy(i, c, j) - dot));
    }
  }
};

struct softmax {
  using op = ops::softmax;
  using in_view = tensor_view<const float, 3>;  // [N, C, S]
  using out_view = tensor_view<float, 3>;
  static void forward(const op&, in_view x, out_view y) {
    if (x.extent[0] * x.extent[2] == 0 || x.extent[1] == 0) return;
    cuda::launch(softmax_forward_kernel{plain(x), plain(y)}, grid_for(x.extent[0] * x.extent[2]), {threads}, 0);
  }
  static void backward(const op&, in_view y, in_view dy, out_view dx) {
    if (y.extent[0] * y.extent[2] == 0 || y.extent[1] == 0) return;
    cuda::launch(softmax_backward_kernel{plain(y), plain(dy), plain(dx)}, grid_for(y.extent[0] * y.extent[2]),
                 {threads}, 0);
  }
};

}  // namespace microcount::cuda_ops

namespace microcount {

template <>
struct kernel<ops::relu, backend::cuda> : body_kernels::activation<ops::relu, backend::cuda> {};
template <>
struct kernel<ops::leaky_relu, backend::cuda> : body_kernels::activation<ops::leaky_relu, backend::cuda> {};
template <>
struct kernel<ops::sigmoid, backend::cuda> : body_kernels::activation<ops::sigmoid, backend::cuda> {};
template <>
struct kernel<ops::softmax, backend::cuda> : cuda_ops::softmax {};

}  // namespace microcount
