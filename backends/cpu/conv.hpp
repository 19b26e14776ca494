#pragma once
// cpu convolution and transposed convolution: kernel<ops::conv<D>, backend::cpu> and
// kernel<ops::conv_transpose<D>, backend::cpu> for D = 2, 3, float, contiguous NC(D)HW views.
// Same static functions and semantics as backends/reference/conv.hpp, plus forward_fused (conv only).
//
// Which path runs (docs/kernels.md has the measurements):
//   unit stride, not pointwise   forward / backward-data: direct register-tiled kernel (conv_direct.hpp);
//                                backward-data is the forward of the flipped, transposed kernel.
//                                backward-weights: direct for 3-column kernels with 3 or 9 row taps
//                                (3×3, 1×3×3, 3×3×3), im2col + GEMM otherwise.
//   anything else                im2col / col2im + Eigen GEMM (conv_gemm.hpp): 1×1 convolutions read
//                                the image in place, kernel == stride ones (2×2 stride 2) are a
//                                per-pixel GEMM plus a gather / scatter.
// Every path partitions work by shape only, never by thread count, and reduces in a fixed order, so
// results are bit-identical from run to run and for any number of threads.
#include "microcount/backends/cpu/conv_common.hpp"
#include "microcount/backends/cpu/conv_direct.hpp"
#include "microcount/backends/cpu/conv_gemm.hpp"
#include "microcount/nn/op.hpp"

namespace microcount::cpu_conv_detail {

inline void conv_forward(const conv_geometry& g, const float* x, const float* w, const float* bias,
                         const conv_epilogue* epi, float* y) {
  if (g.n == 0 || g.oc == 0 || g.out_size() == 0) return;
  if (g.unit_stride() && !g.pointwise()) {
    const index_t taps = g.taps();
    direct_forward(
        g, x, [&](index_t o, index_t i, index_t t) { return w[(o * g.ic + i) * taps + t]; }, bias, epi, y);
  } else {
    gemm_forward(g, x, w, bias, epi, y);
  }
}

// dx = conv^T(dy, w) + bias[ic] (bias: conv_transpose's, may be null), overwriting dx.
inline void conv_backward_data(const conv_geometry& g, const float* dy, const float* w, const float* bias, float* dx) {
  if (g.n == 0 || g.ic == 0 || g.in_size() == 0) return;
  if (g.oc == 0 || g.out_size() == 0) {
    for (index_t n = 0; n < g.n; ++n)
      for (index_t c = 0; c < g.ic; ++c)
        std::fill(dx + (n * g.ic + c) * g.in_size(), dx + (n * g.ic + c + 1) * g.in_size(), bias ? bias[c] : 0.0f);
    return;
  }
  if (g.unit_stride() && !g.pointwise()) {
    // A unit-stride convolution's adjoint is the convolution of dy with the kernel flipped in space and
    // transposed in channels, with padding (k − 1)·dilation − pad (possibly negative: a crop).
    conv_geometry f = g;
    f.ic = g.oc;
    f.oc = g.ic;
    f.in = g.out;
    f.out = g.in;
    for (int a = 0; a < 3; ++a) f.pad[a] = (g.k[a] - 1) * g.dil[a] - g.pad[a];
    const index_t taps = g.taps();
    direct_forward(
        f, dy, [&](index_t o, index_t i, index_t t) { return w[(i * g.ic + o) * taps + (taps - 1 - t)]; }, bias,
        nullptr, dx);
  } else {
    gemm_backward_data(g, dy, w, bias, dx);
  }
}

inline void conv_backward_weights(const conv_geometry& g, const float* x, const float* dy, float* dw) {
  const index_t size = g.oc * g.ic * g.taps();
  if (g.n == 0 || g.out_size() == 0 || size == 0) {
    std::fill(dw, dw + size, 0.0f);
    return;
  }
  if (direct_weights_supported(g))
    direct_backward_weights(g, x, dy, dw);
  else
    gemm_backward_weights(g, x, dy, dw);
}

}  // namespace microcount::cpu_conv_detail

namespace microcount {

template <int Dims>
struct kernel<ops::conv<Dims>, backend::cpu> {
  using op = ops::conv<Dims>;
  static constexpr int rank = Dims + 2;
  using in_view = tensor_view<const float, rank>;
  using out_view = tensor_view<float, rank>;

  // y = conv(x, w) + bias. bias [OC] may be null.
  static void forward(const op& p, in_view x, in_view w, const float* bias, out_view y) {
    forward_fused(p, x, w, bias, conv_epilogue{}, y);
  }

  // forward with the epilogue fused into the store (see conv_epilogue): folded BatchNorm + ReLU, and/or
  // per-channel sum and sum of squares of conv + bias.
  static void forward_fused(const op& p, in_view x, in_view w, const float* bias, const conv_epilogue& e, out_view y) {
    check(x, w, y);
    const auto g = cpu_conv_detail::make_geometry<Dims>(p, x.extent, w.extent, y.extent, "conv (cpu)");
    if (e.wants_statistics())
      for (index_t c = 0; c < g.oc; ++c) {
        if (e.sum) e.sum[c] = 0.0;
        if (e.sum_squares) e.sum_squares[c] = 0.0;
      }
    cpu_conv_detail::conv_forward(g, x.data, w.data, bias, &e, y.data);
  }

  // dx = conv^T(dy, w), overwriting dx (its extents give the input size).
  static void backward_data(const op& p, in_view dy, in_view w, out_view dx) {
    check(dy, w, dx);
    const auto g = cpu_conv_detail::make_geometry<Dims>(p, dx.extent, w.extent, dy.extent, "conv backward_data (cpu)");
    cpu_conv_detail::conv_backward_data(g, dy.data, w.data, nullptr, dx.data);
  }

  // dw = dL/dw and dbias = dL/dbias (when non-null), overwriting both.
  static void backward_weights(const op& p, in_view x, in_view dy, out_view dw, float* dbias) {
    check(x, dy, dw);
    const auto g = cpu_conv_detail::make_geometry<Dims>(p, x.extent, dw.extent, dy.extent, "conv backward_weights (cpu)");
    cpu_conv_detail::conv_backward_weights(g, x.data, dy.data, dw.data);
    if (dbias) cpu_conv_detail::channel_sums(dy.data, g.n, g.oc, g.out_size(), dbias);
  }

 private:
  template <class A, class B, class C>
  static void check(const A& a, const B& b, const C& c) {
    cpu_conv_detail::require_contiguous(a, "conv (cpu)", "every tensor");
    cpu_conv_detail::require_contiguous(b, "conv (cpu)", "every tensor");
    cpu_conv_detail::require_contiguous(c, "conv (cpu)", "every tensor");
  }
};

// The adjoint of ops::conv: forward is conv's backward_data (plus bias), backward_data is conv's forward,
// backward_weights is conv's backward_weights with the roles of input and output gradient swapped.
// Weight layout [IC, OC, k...] is conv's [OC', IC', k...] with OC' = IC.
template <int Dims>
struct kernel<ops::conv_transpose<Dims>, backend::cpu> {
  using op = ops::conv_transpose<Dims>;
  static constexpr int rank = Dims + 2;
  using in_view = tensor_view<const float, rank>;
  using out_view = tensor_view<float, rank>;

  static void forward(const op& p, in_view x, in_view w, const float* bias, out_view y) {
    const auto g = geometry(p, x.extent, w.extent, y.extent, x, w, y, "conv_transpose (cpu)");
    cpu_conv_detail::conv_backward_data(g, x.data, w.data, bias, y.data);
  }
  static void backward_data(const op& p, in_view dy, in_view w, out_view dx) {
    const auto g = geometry(p, dx.extent, w.extent, dy.extent, dy, w, dx, "conv_transpose backward_data (cpu)");
    cpu_conv_detail::conv_forward(g, dy.data, w.data, nullptr, nullptr, dx.data);
  }
  static void backward_weights(const op& p, in_view x, in_view dy, out_view dw, float* dbias) {
    const auto g = geometry(p, x.extent, dw.extent, dy.extent, x, dy, dw, "conv_transpose backward_weights (cpu)");
    cpu_conv_detail::conv_backward_weights(g, dy.data, x.data, dw.data);
    if (dbias) cpu_conv_detail::channel_sums(dy.data, g.n, g.ic, g.in_size(), dbias);
  }

 private:
  // Geometry of the forward convolution this op is the adjoint of: its input is our output y [N, OC, ...],
  // its output our input x [N, IC, ...].
  template <class A, class B, class C>
  static cpu_conv_detail::conv_geometry geometry(const op& p, const std::array<index_t, rank>& x,
                                            const std::array<index_t, rank>& w, const std::array<index_t, rank>& y,
                                            const A& v1, const B& v2, const C& v3, const char* who) {
    cpu_conv_detail::require_contiguous(v1, who, "every tensor");
    cpu_conv_detail::require_contiguous(v2, who, "every tensor");
    cpu_conv_detail::require_contiguous(v3, who, "every tensor");
    const shape expected = p.output_shape(cpu_conv_detail::shape_of<rank>(x), cpu_conv_detail::shape_of<rank>(w));
    require(expected == cpu_conv_detail::shape_of<rank>(y), who,
            "output view is " + cpu_conv_detail::shape_of<rank>(y).str() + " but the transposed convolution of " +
                cpu_conv_detail::shape_of<rank>(x).str() + " by " + cpu_conv_detail::shape_of<rank>(w).str() + " gives " +
                expected.str());
    return cpu_conv_detail::make_geometry<Dims>(p.forward_conv(), y, w, x, who);
  }
};

}  // namespace microcount
