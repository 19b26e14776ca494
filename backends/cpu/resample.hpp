#pragma once
// cpu upsampling, threads over (sample, channel) planes.
//   nearest: each output row is built once per source row (×2 along W is a duplicating loop the compiler
//            vectorises) and copied for the repeated rows and frames; backward sums the repeated rows with
//            SIMD, then the repeated columns.
//   linear:  separable: interpolate along W into a buffer, then blend rows (H) and frames (D) with SIMD;
//            backward is the same three steps transposed.
#include "microcount/backends/cpu/simd.hpp"  // first: see simd.hpp
#include <algorithm>
#include <cstring>
#include <vector>

#include "microcount/backends/cpu/launch.hpp"
#include "microcount/backends/reference/pool.hpp"
#include "microcount/backends/reference/resample.hpp"
#include "microcount/core/parallel.hpp"
#include "microcount/core/tensor.hpp"
#include "microcount/nn/op.hpp"
#include "microcount/nn/ops_layers.hpp"

namespace microcount::cpu_layer_detail {

template <int Dims>
struct upsample_cpu {
  using op = ops::upsample<Dims>;
  using T = float;
  static constexpr int rank = Dims + 2;
  using in_view = tensor_view<const T, rank>;
  using out_view = tensor_view<T, rank>;
  using axis = resample_detail::axis_map<T>;

  static void forward(const op& p, in_view x, out_view y) {
    require(x.is_contiguous() && y.is_contiguous(), "upsample", "views must be contiguous");
    const plan g(p, x.extent);
    parallel_for(0, x.extent[0] * x.extent[1], [&](index_t plane) {
      const T* xp = x.data + plane * g.in_size;
      T* yp = y.data + plane * g.out_size;
      if (p.mode == ops::upsample_mode::nearest) nearest_forward(g, xp, yp);
      else linear_forward(g, xp, yp);
    });
  }

  static void backward(const op& p, in_view dy, out_view dx) {
    require(dy.is_contiguous() && dx.is_contiguous(), "upsample", "views must be contiguous");
    const plan g(p, dx.extent);
    parallel_for(0, dx.extent[0] * dx.extent[1], [&](index_t plane) {
      const T* dyp = dy.data + plane * g.out_size;
      T* dxp = dx.data + plane * g.in_size;
      if (p.mode == ops::upsample_mode::nearest) nearest_backward(g, dyp, dxp);
      else linear_backward(g, dyp, dxp);
    });
  }

 private:
  // Extents lifted to (D, H, W) and the per-axis source maps, computed once per call.
  struct plan {
    std::array<index_t, 3> in, out, scale;
    index_t in_size, out_size;
    axis d, h, w;
    template <class E>
    plan(const op& p, const E& in_extent)
        : in(reference_detail::lift_spatial<Dims>(in_extent)),
          out{},
          scale(reference_detail::lift_params<Dims>(p.scale)),
          in_size(in[0] * in[1] * in[2]),
          out_size(0),
          d(in[0], int(scale[0]), p.mode),
          h(in[1], int(scale[1]), p.mode),
          w(in[2], int(scale[2]), p.mode) {
      for (int a = 0; a < 3; ++a) out[a] = in[a] * scale[a];
      out_size = out[0] * out[1] * out[2];
    }
  };

  static void nearest_forward(const plan& g, const T* x, T* y) {
    const index_t width = g.in[2], out_width = g.out[2], sw = g.scale[2];
    for (index_t id = 0; id < g.in[0]; ++id)
      for (index_t ih = 0; ih < g.in[1]; ++ih) {
        const T* src = x + (id * g.in[1] + ih) * width;
        T* first = y + (id * g.scale[0] * g.out[1] + ih * g.scale[1]) * out_width;
        if (sw == 1) {
          std::memcpy(first, src, sizeof(T) * std::size_t(width));
        } else if (sw == 2) {
          duplicate_pairs(src, first, width);
        } else {
          for (index_t i = 0; i < width; ++i)
            for (index_t k = 0; k < sw; ++k) first[i * sw + k] = src[i];
        }
        for (index_t rd = 0; rd < g.scale[0]; ++rd)
          for (index_t rh = 0; rh < g.scale[1]; ++rh)
            if (rd || rh)
              std::memcpy(first + (rd * g.out[1] + rh) * out_width, first, sizeof(T) * std::size_t(out_width));
      }
  }

  static void nearest_backward(const plan& g, const T* dy, T* dx) {
    const index_t width = g.in[2], out_width = g.out[2], sw = g.scale[2];
    std::vector<T> rows(out_width);  // the sum of the output rows one input row was copied to
    for (index_t id = 0; id < g.in[0]; ++id)
      for (index_t ih = 0; ih < g.in[1]; ++ih) {
        const T* first = dy + (id * g.scale[0] * g.out[1] + ih * g.scale[1]) * out_width;
        std::memcpy(rows.data(), first, sizeof(T) * std::size_t(out_width));
        for (index_t rd = 0; rd < g.scale[0]; ++rd)
          for (index_t rh = 0; rh < g.scale[1]; ++rh)
            if (rd || rh)
              cpu_detail::run_range(0, out_width, ops::add::accumulate_body{}, rows.data(),
                                    first + (rd * g.out[1] + rh) * out_width);
        T* dst = dx + (id * g.in[1] + ih) * width;
        if (sw == 2) {
          sum_pairs(rows.data(), dst, width);
        } else {
          for (index_t i = 0; i < width; ++i) {
            T total = rows[i * sw];
            for (index_t k = 1; k < sw; ++k) total += rows[i * sw + k];
            dst[i] = total;
          }
        }
      }
  }

  // dst[2i] = dst[2i+1] = src[i] (a loop the compiler vectorises).
  static void duplicate_pairs(const T* __restrict src, T* __restrict dst, index_t n) {
    for (index_t i = 0; i < n; ++i) dst[2 * i] = dst[2 * i + 1] = src[i];
  }
  // dst[i] = src[2i] + src[2i+1] (a loop the compiler vectorises).
  static void sum_pairs(const T* __restrict src, T* __restrict dst, index_t n) {
    for (index_t i = 0; i < n; ++i) dst[i] = src[2 * i] + src[2 * i + 1];
  }

  // ×2 linear interpolation of one row (the axis map's weights for scale 2, without its index tables):
  // interior outputs 2i and 2i+1 read x[i−1], x[i] and x[i], x[i+1] with weights ¼, ¾; the first and the
  // last output copy the border sample.
  static void linear_row_x2(const T* __restrict src, T* __restrict dst, index_t n) {
    if (n == 1) {
      dst[0] = dst[1] = src[0];
      return;
    }
    const T near = T(0.75), far = T(0.25);
    dst[0] = src[0];
    dst[1] = near * src[0] + far * src[1];
    for (index_t i = 1; i + 1 < n; ++i) {
      dst[2 * i] = far * src[i - 1] + near * src[i];
      dst[2 * i + 1] = near * src[i] + far * src[i + 1];
    }
    dst[2 * n - 2] = far * src[n - 2] + near * src[n - 1];
    dst[2 * n - 1] = src[n - 1];
  }

  // The adjoint of linear_row_x2: x[i] received ¾ in outputs 2i and 2i+1 and ¼ in 2i−1 and 2i+2 (the
  // border samples: 1 in the first / last output).
  static void linear_row_x2_adjoint(const T* __restrict g, T* __restrict dx, index_t n) {
    if (n == 1) {
      dx[0] = g[0] + g[1];
      return;
    }
    const T near = T(0.75), far = T(0.25);
    dx[0] = g[0] + near * g[1] + far * g[2];
    for (index_t i = 1; i + 1 < n; ++i) dx[i] = far * g[2 * i - 1] + near * g[2 * i] + near * g[2 * i + 1] + far * g[2 * i + 2];
    dx[n - 1] = far * g[2 * n - 3] + near * g[2 * n - 2] + g[2 * n - 1];
  }

  // W pass into `rows` [in D·H, out W], H pass into `frames` [in D, out H, out W] (or y when D is not
  // scaled), D pass into y.
  static void linear_forward(const plan& g, const T* x, T* y) {
    const index_t out_width = g.out[2], frame = g.out[1] * out_width;
    std::vector<T> rows(g.in[0] * g.in[1] * out_width);
    for (index_t r = 0; r < g.in[0] * g.in[1]; ++r) {
      const T* src = x + r * g.in[2];
      T* dst = rows.data() + r * out_width;
      if (g.scale[2] == 2) {
        linear_row_x2(src, dst, g.in[2]);
      } else {
        for (index_t o = 0; o < out_width; ++o) dst[o] = g.w.w_lo[o] * src[g.w.lo[o]] + g.w.w_hi[o] * src[g.w.hi[o]];
      }
    }
    const bool scaled_d = g.scale[0] > 1;
    std::vector<T> frames(scaled_d ? g.in[0] * frame : 0);
    T* h_out = scaled_d ? frames.data() : y;
    for (index_t d = 0; d < g.in[0]; ++d)
      for (index_t oh = 0; oh < g.out[1]; ++oh) {
        const T* lo = rows.data() + (d * g.in[1] + g.h.lo[oh]) * out_width;
        const T* hi = rows.data() + (d * g.in[1] + g.h.hi[oh]) * out_width;
        cpu_detail::run_range(0, out_width, ops::bodies::blend<T>{g.h.w_lo[oh], g.h.w_hi[oh]},
                              h_out + d * frame + oh * out_width, lo, hi);
      }
    if (!scaled_d) return;
    for (index_t od = 0; od < g.out[0]; ++od)
      cpu_detail::run_range(0, frame, ops::bodies::blend<T>{g.d.w_lo[od], g.d.w_hi[od]}, y + od * frame,
                            static_cast<const T*>(frames.data() + g.d.lo[od] * frame),
                            static_cast<const T*>(frames.data() + g.d.hi[od] * frame));
  }

  static void linear_backward(const plan& g, const T* dy, T* dx) {
    const index_t out_width = g.out[2], frame = g.out[1] * out_width;
    const bool scaled_d = g.scale[0] > 1;
    std::vector<T> frames(scaled_d ? g.in[0] * frame : 0);
    if (scaled_d)
      for (index_t od = 0; od < g.out[0]; ++od) {
        cpu_detail::run_range(0, frame, ops::bodies::axpy<T>{g.d.w_lo[od]}, frames.data() + g.d.lo[od] * frame,
                              dy + od * frame);
        cpu_detail::run_range(0, frame, ops::bodies::axpy<T>{g.d.w_hi[od]}, frames.data() + g.d.hi[od] * frame,
                              dy + od * frame);
      }
    const T* h_in = scaled_d ? frames.data() : dy;
    std::vector<T> rows(g.in[0] * g.in[1] * out_width, T(0));
    for (index_t d = 0; d < g.in[0]; ++d)
      for (index_t oh = 0; oh < g.out[1]; ++oh) {
        const T* src = h_in + d * frame + oh * out_width;
        cpu_detail::run_range(0, out_width, ops::bodies::axpy<T>{g.h.w_lo[oh]},
                              rows.data() + (d * g.in[1] + g.h.lo[oh]) * out_width, src);
        cpu_detail::run_range(0, out_width, ops::bodies::axpy<T>{g.h.w_hi[oh]},
                              rows.data() + (d * g.in[1] + g.h.hi[oh]) * out_width, src);
      }
    for (index_t r = 0; r < g.in[0] * g.in[1]; ++r) {
      const T* src = rows.data() + r * out_width;
      T* dst = dx + r * g.in[2];
      if (g.scale[2] == 2) {
        linear_row_x2_adjoint(src, dst, g.in[2]);
        continue;
      }
      std::fill_n(dst, g.in[2], T(0));
      for (index_t o = 0; o < out_width; ++o) {
        dst[g.w.lo[o]] += g.w.w_lo[o] * src[o];
        dst[g.w.hi[o]] += g.w.w_hi[o] * src[o];
      }
    }
  }
};

}  // namespace microcount::cpu_layer_detail

namespace microcount {

template <int Dims>
struct kernel<ops::upsample<Dims>, backend::cpu> : cpu_layer_detail::upsample_cpu<Dims> {};

}  // namespace microcount
