#pragma once
// Reference max pooling (with argmax for backward) and global average pooling. 2D is lifted to 3D with a
// depth of 1 so one loop nest serves both.
#include <array>
#include <cstdint>

#include "microcount/backends/reference/conv.hpp"
#include "microcount/core/tensor.hpp"
#include "microcount/nn/op.hpp"
#include "microcount/nn/ops_layers.hpp"

namespace microcount::reference_detail {

// The spatial extents of a [N, C, spatial...] view lifted to (D, H, W); leading unused axes are 1.
template <int Dims, class Array>
std::array<index_t, 3> lift_spatial(const Array& extent) {
  std::array<index_t, 3> s{1, 1, 1};
  for (int a = 0; a < Dims; ++a) s[3 - Dims + a] = extent[2 + a];
  return s;
}
template <int Dims>
std::array<index_t, 3> lift_params(const std::array<int, Dims>& v) {
  std::array<index_t, 3> s{1, 1, 1};
  for (int a = 0; a < Dims; ++a) s[3 - Dims + a] = v[a];
  return s;
}

template <int Dims, class T>
struct max_pool_kernel {
  using op = ops::max_pool<Dims>;
  static constexpr int rank = Dims + 2;
  using in_view = tensor_view<const T, rank>;
  using out_view = tensor_view<T, rank>;

  // y = max over each window; argmax (when non-null, [N, C, out...]) receives the offset of the chosen
  // element inside its input plane (d·H·W + h·W + w), the first maximum in scan order.
  static void forward(const op& p, in_view x, out_view y, std::int32_t* argmax) {
    require_contiguous(x, "max_pool input");
    const auto in = lift_spatial<Dims>(x.extent), out = lift_spatial<Dims>(y.extent);
    const auto k = lift_params<Dims>(p.window), st = lift_params<Dims>(p.stride);
    const index_t planes = x.extent[0] * x.extent[1], in_size = in[0] * in[1] * in[2];
    const index_t out_size = out[0] * out[1] * out[2];
    require(in_size <= INT32_MAX, "max_pool", "a spatial plane of more than 2^31 elements");
    for (index_t plane = 0; plane < planes; ++plane)
      for (index_t od = 0; od < out[0]; ++od)
        for (index_t oh = 0; oh < out[1]; ++oh)
          for (index_t ow = 0; ow < out[2]; ++ow) {
            index_t best_at = -1;
            T best{};
            for (index_t kd = 0; kd < k[0]; ++kd)
              for (index_t kh = 0; kh < k[1]; ++kh)
                for (index_t kw = 0; kw < k[2]; ++kw) {
                  const index_t at = ((od * st[0] + kd) * in[1] + oh * st[1] + kh) * in[2] + ow * st[2] + kw;
                  const T v = x.data[plane * in_size + at];
                  // NaN wins (and stays), like PyTorch: a NaN input must not vanish in pooling.
                  if (best_at < 0 || v > best || (v != v && best == best)) {
                    best = v;
                    best_at = at;
                  }
                }
            const index_t o = plane * out_size + (od * out[1] + oh) * out[2] + ow;
            y.data[o] = best;
            if (argmax) argmax[o] = static_cast<std::int32_t>(best_at);
          }
  }

  // dx = dy routed to the recorded maxima (summed where overlapping windows chose the same element).
  static void backward(const op&, in_view dy, const std::int32_t* argmax, out_view dx) {
    const auto in = lift_spatial<Dims>(dx.extent), out = lift_spatial<Dims>(dy.extent);
    const index_t planes = dx.extent[0] * dx.extent[1], in_size = in[0] * in[1] * in[2];
    const index_t out_size = out[0] * out[1] * out[2];
    for (index_t i = 0; i < dx.size(); ++i) dx.data[i] = T(0);
    for (index_t plane = 0; plane < planes; ++plane)
      for (index_t o = 0; o < out_size; ++o)
        dx.data[plane * in_size + argmax[plane * out_size + o]] += dy.data[plane * out_size + o];
  }
};

template <class T>
struct global_avg_pool_kernel {
  using op = ops::global_avg_pool;
  // x [N, C, S] -> y [N, C]
  static void forward(const op&, tensor_view<const T, 3> x, tensor_view<T, 2> y) {
    for (index_t i = 0; i < x.extent[0]; ++i)
      for (index_t c = 0; c < x.extent[1]; ++c) {
        double sum = 0;
        for (index_t j = 0; j < x.extent[2]; ++j) sum += x(i, c, j);
        y(i, c) = T(sum / double(x.extent[2]));
      }
  }
  // dx [N, C, S] = dy [N, C] / S everywhere
  static void backward(const op&, tensor_view<const T, 2> dy, tensor_view<T, 3> dx) {
    for (index_t i = 0; i < dx.extent[0]; ++i)
      for (index_t c = 0; c < dx.extent[1]; ++c)
        for (index_t j = 0; j < dx.extent[2]; ++j) dx(i, c, j) = T(double(dy(i, c)) / double(dx.extent[2]));
  }
};

}  // namespace microcount::reference_detail

namespace microcount {

template <int Dims>
struct kernel<ops::max_pool<Dims>, backend::reference> : reference_detail::max_pool_kernel<Dims, float> {};
template <int Dims>
struct kernel<ops::max_pool<Dims>, backend::reference_f64> : reference_detail::max_pool_kernel<Dims, double> {};
template <>
struct kernel<ops::global_avg_pool, backend::reference> : reference_detail::global_avg_pool_kernel<float> {};
template <>
struct kernel<ops::global_avg_pool, backend::reference_f64> : reference_detail::global_avg_pool_kernel<double> {};

}  // namespace microcount
