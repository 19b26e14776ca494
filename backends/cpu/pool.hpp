#pragma once
// cpu max pooling and global average pooling, threads over (sample, channel) planes. Max pooling has a
// path for the 2×2 in-plane windows of U-Nets (stride 2 along W; any temporal window) whose loop over a
// row of outputs the compiler vectorises (branch-free maximum updates), and a general path; both keep the
// reference's first-maximum and NaN rules, so argmax agrees exactly.
#include "microcount/backends/cpu/simd.hpp"  // first: see simd.hpp
#include <algorithm>
#include <cstdint>
#include <cstring>

#include "microcount/backends/cpu/reduce.hpp"
#include "microcount/backends/reference/pool.hpp"
#include "microcount/core/parallel.hpp"
#include "microcount/core/tensor.hpp"
#include "microcount/nn/op.hpp"
#include "microcount/nn/ops_layers.hpp"

namespace microcount::cpu_layer_detail {

template <int Dims>
struct max_pool_cpu {
  using op = ops::max_pool<Dims>;
  using T = float;
  static constexpr int rank = Dims + 2;
  using in_view = tensor_view<const T, rank>;
  using out_view = tensor_view<T, rank>;

  static void forward(const op& p, in_view x, out_view y, std::int32_t* argmax) {
    require(x.is_contiguous() && y.is_contiguous(), "max_pool", "views must be contiguous");
    const geometry g(p, x.extent, y.extent);
    require(g.in_size <= INT32_MAX, "max_pool", "a spatial plane of more than 2^31 elements");
    parallel_for(0, x.extent[0] * x.extent[1], [&](index_t plane) {
      const T* xp = x.data + plane * g.in_size;
      T* yp = y.data + plane * g.out_size;
      std::int32_t* ap = argmax ? argmax + plane * g.out_size : nullptr;
      if (g.k[1] == 2 && g.k[2] == 2 && g.stride[2] == 2) {
        if (ap) pool_plane_2x2<true>(g, xp, yp, ap);
        else pool_plane_2x2<false>(g, xp, yp, ap);
      } else {
        if (ap) pool_plane<true>(g, xp, yp, ap);
        else pool_plane<false>(g, xp, yp, ap);
      }
    });
  }

  static void backward(const op&, in_view dy, const std::int32_t* argmax, out_view dx) {
    require(dy.is_contiguous() && dx.is_contiguous(), "max_pool", "views must be contiguous");
    const index_t in_size = dx.size() / (dx.extent[0] * dx.extent[1]);
    const index_t out_size = dy.size() / (dy.extent[0] * dy.extent[1]);
    parallel_for(0, dx.extent[0] * dx.extent[1], [&](index_t plane) {
      T* dxp = dx.data + plane * in_size;
      const T* dyp = dy.data + plane * out_size;
      const std::int32_t* ap = argmax + plane * out_size;
      std::memset(dxp, 0, sizeof(T) * std::size_t(in_size));
      for (index_t o = 0; o < out_size; ++o) dxp[ap[o]] += dyp[o];
    });
  }

 private:
  struct geometry {
    std::array<index_t, 3> in, out, k, stride;
    index_t in_size, out_size;
    template <class E>
    geometry(const op& p, const E& in_extent, const E& out_extent)
        : in(reference_detail::lift_spatial<Dims>(in_extent)),
          out(reference_detail::lift_spatial<Dims>(out_extent)),
          k(reference_detail::lift_params<Dims>(p.window)),
          stride(reference_detail::lift_params<Dims>(p.stride)),
          in_size(in[0] * in[1] * in[2]),
          out_size(out[0] * out[1] * out[2]) {}
  };

  // The tap at offset `at` with value v replaces the current maximum if larger, or if NaN where the
  // current one is not (the reference's rule, written branch-free so loops over outputs vectorise).
  MICROCOUNT_INLINE static void take(T& best, std::int32_t& best_at, T v, std::int32_t at) {
    const bool larger = v > best || (v != v && best == best);
    best = larger ? v : best;
    best_at = larger ? at : best_at;
  }

  // One output row of 2×2 windows with stride 2 along W: the taps (r0, 2w), (r0, 2w+1), (r1, 2w), (r1, 2w+1)
  // in scan order, starting a new maximum (first) or continuing the one in y / argmax (later frames).
  template <bool KeepArgmax>
  static void pair_rows(const T* __restrict r0, const T* __restrict r1, std::int32_t at0, std::int32_t at1,
                        T* __restrict y, std::int32_t* __restrict argmax, index_t n, bool first) {
    if (first) {
      for (index_t w = 0; w < n; ++w) {
        const auto c = static_cast<std::int32_t>(2 * w);
        T best = r0[2 * w];
        std::int32_t best_at = at0 + c;
        take(best, best_at, r0[2 * w + 1], at0 + c + 1);
        take(best, best_at, r1[2 * w], at1 + c);
        take(best, best_at, r1[2 * w + 1], at1 + c + 1);
        y[w] = best;
        if constexpr (KeepArgmax) argmax[w] = best_at;
      }
    } else {
      for (index_t w = 0; w < n; ++w) {
        const auto c = static_cast<std::int32_t>(2 * w);
        T best = y[w];
        std::int32_t best_at = KeepArgmax ? argmax[w] : 0;
        take(best, best_at, r0[2 * w], at0 + c);
        take(best, best_at, r0[2 * w + 1], at0 + c + 1);
        take(best, best_at, r1[2 * w], at1 + c);
        take(best, best_at, r1[2 * w + 1], at1 + c + 1);
        y[w] = best;
        if constexpr (KeepArgmax) argmax[w] = best_at;
      }
    }
  }

  // 2×2 in-plane windows with stride 2 along W (any stride along H, any temporal window and stride).
  template <bool KeepArgmax>
  static void pool_plane_2x2(const geometry& g, const T* x, T* y, std::int32_t* argmax) {
    const index_t width = g.in[2], frame = g.in[1] * width;
    for (index_t od = 0; od < g.out[0]; ++od)
      for (index_t oh = 0; oh < g.out[1]; ++oh) {
        const index_t o = (od * g.out[1] + oh) * g.out[2];
        for (index_t kd = 0; kd < g.k[0]; ++kd) {
          const index_t row0 = (od * g.stride[0] + kd) * frame + oh * g.stride[1] * width;
          pair_rows<KeepArgmax>(x + row0, x + row0 + width, static_cast<std::int32_t>(row0),
                                static_cast<std::int32_t>(row0 + width), y + o, KeepArgmax ? argmax + o : nullptr,
                                g.out[2], kd == 0);
        }
      }
  }

  // Any window and stride.
  template <bool KeepArgmax>
  static void pool_plane(const geometry& g, const T* x, T* y, std::int32_t* argmax) {
    const index_t width = g.in[2];
    for (index_t od = 0; od < g.out[0]; ++od)
      for (index_t oh = 0; oh < g.out[1]; ++oh) {
        const index_t o = (od * g.out[1] + oh) * g.out[2];
        for (index_t ow = 0; ow < g.out[2]; ++ow) {
          const index_t corner = (od * g.stride[0] * g.in[1] + oh * g.stride[1]) * width + ow * g.stride[2];
          T best = x[corner];
          auto best_at = static_cast<std::int32_t>(corner);
          for (index_t kd = 0; kd < g.k[0]; ++kd)
            for (index_t kh = 0; kh < g.k[1]; ++kh)
              for (index_t kw = 0; kw < g.k[2]; ++kw) {
                const index_t at = corner + (kd * g.in[1] + kh) * width + kw;
                take(best, best_at, x[at], static_cast<std::int32_t>(at));
              }
          y[o + ow] = best;
          if constexpr (KeepArgmax) argmax[o + ow] = best_at;
        }
      }
  }
};

struct global_avg_pool_cpu {
  using op = ops::global_avg_pool;
  using T = float;

  static void forward(const op&, tensor_view<const T, 3> x, tensor_view<T, 2> y) {
    require(x.is_contiguous() && y.is_contiguous(), "global_avg_pool", "views must be contiguous");
    const index_t s = x.extent[2];
    parallel_for(0, x.extent[0] * x.extent[1], [&](index_t plane) {
      y.data[plane] = T(sum(x.data + plane * s, s) / double(s));
    });
  }

  static void backward(const op&, tensor_view<const T, 2> dy, tensor_view<T, 3> dx) {
    require(dy.is_contiguous() && dx.is_contiguous(), "global_avg_pool", "views must be contiguous");
    const index_t s = dx.extent[2];
    parallel_for(0, dx.extent[0] * dx.extent[1], [&](index_t plane) {
      std::fill_n(dx.data + plane * s, s, T(double(dy.data[plane]) / double(s)));
    });
  }
};

}  // namespace microcount::cpu_layer_detail

namespace microcount {

template <int Dims>
struct kernel<ops::max_pool<Dims>, backend::cpu> : cpu_layer_detail::max_pool_cpu<Dims> {};
template <>
struct kernel<ops::global_avg_pool, backend::cpu> : cpu_layer_detail::global_avg_pool_cpu {};

}  // namespace microcount
