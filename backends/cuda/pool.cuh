#pragma once
// Max pooling (2D, 3D) and global average pooling on backend::cuda. 2D is lifted to 3D with a depth of 1,
// as in the reference.
//   max_pool forward   one thread per output: the reference's scan order and NaN rule, so values and
//                      argmax are identical
//   max_pool backward  a gather, not atomics: one thread per input element visits, in ascending order,
//                      the outputs whose windows contain it and adds dy where argmax chose it — the same
//                      additions in the same order as the reference's scatter, so exact
//   global_avg_pool    the deterministic two-level double sum per (sample, channel); backward elementwise
#include <array>
#include <cstdint>

#include "microcount/backends/cuda/launch.cuh"
#include "microcount/backends/cuda/ops_support.cuh"
#include "microcount/nn/op.hpp"
#include "microcount/nn/ops_layers.hpp"

namespace microcount::cuda_ops {

// Spatial extents and window parameters lifted to (D, H, W).
struct pool_geometry {
  index_t in[3], out[3], window[3], stride[3];
  index_t planes;  // N·C
  [[nodiscard]] MICROCOUNT_HOST_DEVICE index_t in_size() const { return in[0] * in[1] * in[2]; }
  [[nodiscard]] MICROCOUNT_HOST_DEVICE index_t out_size() const { return out[0] * out[1] * out[2]; }
};
template <int Dims, class Extent>
pool_geometry lift_pool(const Extent& x_extent, const Extent& y_extent, const std::array<int, Dims>& window,
                        const std::array<int, Dims>& stride) {
  pool_geometry g{{1, 1, 1}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}, x_extent[0] * x_extent[1]};
  for (int a = 0; a < Dims; ++a) {
    g.in[3 - Dims + a] = x_extent[2 + a];
    g.out[3 - Dims + a] = y_extent[2 + a];
    g.window[3 - Dims + a] = window[a];
    g.stride[3 - Dims + a] = stride[a];
  }
  return g;
}

struct max_pool_forward_kernel {
  static constexpr const char* name = "max_pool_forward";
  pool_geometry g;
  template <class Ctx>
  MICROCOUNT_HOST_DEVICE void operator()(const Ctx& ctx, const float* x, float* y, std::int32_t* argmax) const {
    const index_t out_size = g.out_size(), total = g.planes * out_size;
    for (index_t o = global_index(ctx); o < total; o += global_stride(ctx)) {
      const index_t plane = o / out_size, ow = o % g.out[2], oh = o / g.out[2] % g.out[1], od = o % out_size / (g.out[1] * g.out[2]);
      const float* xp = x + plane * g.in_size();
      index_t best_at = -1;
      float best = 0;
      for (index_t kd = 0; kd < g.window[0]; ++kd)
        for (index_t kh = 0; kh < g.window[1]; ++kh)
          for (index_t kw = 0; kw < g.window[2]; ++kw) {
            const index_t at = ((od * g.stride[0] + kd) * g.in[1] + oh * g.stride[1] + kh) * g.in[2] + ow * g.stride[2] + kw;
            const float v = xp[at];
            // NaN wins and stays, as in the reference.
            if (best_at < 0 || v > best || (v != v && best == best)) {
              best = v;
              best_at = at;
            }
          }
      y[o] = best;
      if (argmax) argmax[o] = static_cast<std::int32_t>(best_at);
    }
  }
};

// The outputs along one axis whose windows contain input index i: [first, last] (empty when first > last).
MICROCOUNT_HOST_DEVICE inline void windows_containing(index_t i, index_t window, index_t stride, index_t out,
                                                      index_t& first, index_t& last) {
  const index_t lowest_start = i - window + 1;  // o·stride ≥ i − window + 1
  first = lowest_start <= 0 ? 0 : (lowest_start + stride - 1) / stride;
  last = i / stride;
  if (last > out - 1) last = out - 1;
}

struct max_pool_backward_kernel {
  static constexpr const char* name = "max_pool_backward";
  pool_geometry g;
  template <class Ctx>
  MICROCOUNT_HOST_DEVICE void operator()(const Ctx& ctx, const float* dy, const std::int32_t* argmax, float* dx) const {
    const index_t in_size = g.in_size(), out_size = g.out_size(), total = g.planes * in_size;
    for (index_t e = global_index(ctx); e < total; e += global_stride(ctx)) {
      const index_t plane = e / in_size, at = e % in_size;
      const index_t w = at % g.in[2], h = at / g.in[2] % g.in[1], d = at / (g.in[1] * g.in[2]);
      index_t d0, d1, h0, h1, w0, w1;
      windows_containing(d, g.window[0], g.stride[0], g.out[0], d0, d1);
      windows_containing(h, g.window[1], g.stride[1], g.out[1], h0, h1);
      windows_containing(w, g.window[2], g.stride[2], g.out[2], w0, w1);
      const float* dyp = dy + plane * out_size;
      const std::int32_t* ap = argmax + plane * out_size;
      float sum = 0;
      for (index_t od = d0; od <= d1; ++od)
        for (index_t oh = h0; oh <= h1; ++oh)
          for (index_t ow = w0; ow <= w1; ++ow) {
            const index_t o = (od * g.out[1] + oh) * g.out[2] + ow;
            if (ap[o] == at) sum += dyp[o];
          }
      dx[e] = sum;
    }
  }
};

template <int Dims>
struct max_pool {
  using op = ops::max_pool<Dims>;
  static constexpr int rank = Dims + 2;
  using in_view = tensor_view<const float, rank>;
  using out_view = tensor_view<float, rank>;

  // y = max over each window; argmax (when non-null, [N, C, out...]) receives the offset of the chosen
  // element inside its input plane, the first maximum in scan order.
  static void forward(const op& p, in_view x, out_view y, std::int32_t* argmax) {
    require_contiguous(x, "max_pool input");
    require_contiguous(y, "max_pool output");
    const pool_geometry g = lift_pool<Dims>(x.extent, y.extent, p.window, p.stride);
    require(g.in_size() <= INT32_MAX, "max_pool", "a spatial plane of more than 2^31 elements");
    const index_t total = g.planes * g.out_size();
    if (total == 0) return;
    cuda::launch(max_pool_forward_kernel{g}, grid_for(total), {threads}, 0, x.data, y.data, argmax);
  }

  // dx = dy routed to the recorded maxima (summed where overlapping windows chose the same element).
  static void backward(const op& p, in_view dy, const std::int32_t* argmax, out_view dx) {
    require_contiguous(dy, "max_pool gradient");
    require_contiguous(dx, "max_pool input gradient");
    const pool_geometry g = lift_pool<Dims>(dx.extent, dy.extent, p.window, p.stride);
    const index_t total = g.planes * g.in_size();
    if (total == 0) return;
    cuda::launch(max_pool_backward_kernel{g}, grid_for(total), {threads}, 0, dy.data, argmax, dx.data);
  }
};

// ---- global average pooling ----------------------------------------------------------------------

struct plane_values {  // segment = i·C + c, element j
  ncs_view<const float> x;
  MICROCOUNT_HOST_DEVICE double operator()(index_t seg, index_t j) const { return x(seg / x.c, seg % x.c, j); }
};
struct gap_mean_step {
  const double* partials;
  unsigned blocks;
  index_t channels, count;
  float* y;
  index_t y_row, y_col;  // strides of y [N, C]
  MICROCOUNT_HOST_DEVICE void operator()(index_t seg) const {
    y[seg / channels * y_row + seg % channels * y_col] = float(sum_partials(partials, blocks, seg) / double(count));
  }
};
struct gap_backward {
  const float* dy;
  index_t dy_row, dy_col;
  ncs_view<float> dx;
  MICROCOUNT_HOST_DEVICE void operator()(index_t i, index_t c, index_t j) const {
    dx(i, c, j) = float(double(dy[i * dy_row + c * dy_col]) / double(dx.s));
  }
};

struct global_avg_pool {
  using op = ops::global_avg_pool;
  // x [N, C, S] -> y [N, C]
  static void forward(const op&, tensor_view<const float, 3> x, tensor_view<float, 2> y) {
    const index_t segments = x.extent[0] * x.extent[1];
    if (segments == 0) return;
    const segment_sums sums(plane_values{plain(x)}, segments, x.extent[2]);
    for_each_index(gap_mean_step{sums.partials.get(), sums.blocks, x.extent[1], x.extent[2], y.data, y.stride[0], y.stride[1]},
                   segments);
  }
  // dx [N, C, S] = dy [N, C] / S everywhere
  static void backward(const op&, tensor_view<const float, 2> dy, tensor_view<float, 3> dx) {
    for_each_element(gap_backward{dy.data, dy.stride[0], dy.stride[1], plain(dx)}, dx.extent[0], dx.extent[1], dx.extent[2]);
  }
};

}  // namespace microcount::cuda_ops

namespace microcount {

template <int Dims>
struct kernel<ops::max_pool<Dims>, backend::cuda> : cuda_ops::max_pool<Dims> {};
template <>
struct kernel<ops::global_avg_pool, backend::cuda> : cuda_ops::global_avg_pool {};

}  // namespace microcount
