#pragma once
// Reference convolution and transposed convolution: plain scalar loops, written for clarity.
// 2D is computed as 3D with a depth of 1, so one loop nest serves both.
#include <array>

#include "microcount/core/tensor.hpp"
#include "microcount/nn/op.hpp"
#include "microcount/nn/ops.hpp"

namespace microcount::reference_detail {

// Spatial geometry of a convolution lifted to 3 axes (D, H, W); unused leading axes have size 1.
struct conv_geometry {
  index_t n = 0, ic = 0, oc = 0;
  std::array<index_t, 3> in{1, 1, 1}, out{1, 1, 1}, k{1, 1, 1};
  std::array<index_t, 3> stride{1, 1, 1}, pad{0, 0, 0}, dil{1, 1, 1};
};

// x [N, IC, in...], w [OC, IC, k...], y [N, OC, out...] as contiguous pointers.
template <int Dims, int Rank, class T>
conv_geometry make_geometry(const tensor_view<const T, Rank>& x, const tensor_view<const T, Rank>& w,
                            const std::array<index_t, Rank>& y_extent, const std::array<int, Dims>& stride,
                            const std::array<int, Dims>& pad, const std::array<int, Dims>& dil) {
  static_assert(Rank == Dims + 2, "microcount: conv view rank must be spatial dims + 2");
  conv_geometry g;
  g.n = x.extent[0];
  g.ic = x.extent[1];
  g.oc = w.extent[0];
  for (int a = 0; a < Dims; ++a) {
    const int t = 3 - Dims + a;  // align the last Dims axes
    g.in[t] = x.extent[2 + a];
    g.out[t] = y_extent[2 + a];
    g.k[t] = w.extent[2 + a];
    g.stride[t] = stride[a];
    g.pad[t] = pad[a];
    g.dil[t] = dil[a];
  }
  return g;
}

// Calls f(n, oc, ic, out_offset, in_offset, w_offset) for every (output, kernel tap) pair whose input
// position is inside the image: the one loop nest forward, backward-data and backward-weights share.
template <class F>
void for_each_tap(const conv_geometry& g, F&& f) {
  const index_t in_size = g.in[0] * g.in[1] * g.in[2], out_size = g.out[0] * g.out[1] * g.out[2];
  const index_t k_size = g.k[0] * g.k[1] * g.k[2];
  for (index_t n = 0; n < g.n; ++n)
    for (index_t o = 0; o < g.oc; ++o)
      for (index_t c = 0; c < g.ic; ++c)
        for (index_t od = 0; od < g.out[0]; ++od)
          for (index_t oh = 0; oh < g.out[1]; ++oh)
            for (index_t ow = 0; ow < g.out[2]; ++ow)
              for (index_t kd = 0; kd < g.k[0]; ++kd)
                for (index_t kh = 0; kh < g.k[1]; ++kh)
                  for (index_t kw = 0; kw < g.k[2]; ++kw) {
                    const index_t id = od * g.stride[0] - g.pad[0] + kd * g.dil[0];
                    const index_t ih = oh * g.stride[1] - g.pad[1] + kh * g.dil[1];
                    const index_t iw = ow * g.stride[2] - g.pad[2] + kw * g.dil[2];
                    if (id < 0 || id >= g.in[0] || ih < 0 || ih >= g.in[1] || iw < 0 || iw >= g.in[2]) continue;
                    const index_t out_off = (n * g.oc + o) * out_size + (od * g.out[1] + oh) * g.out[2] + ow;
                    const index_t in_off = (n * g.ic + c) * in_size + (id * g.in[1] + ih) * g.in[2] + iw;
                    const index_t w_off = (o * g.ic + c) * k_size + (kd * g.k[1] + kh) * g.k[2] + kw;
                    f(out_off, in_off, w_off);
                  }
}

template <class View>
void require_contiguous(const View& v, const char* what) {
  require(v.is_contiguous(), "reference kernel", std::string(what) + " must be contiguous");
}

}  // namespace microcount::reference_detail

namespace microcount::reference_detail {

// One implementation for both reference tags (float and double).
template <int Dims, class T>
struct conv_kernel {
  using op = ops::conv<Dims>;
  static constexpr int rank = Dims + 2;
  using in_view = tensor_view<const T, rank>;
  using out_view = tensor_view<T, rank>;

  // y = conv(x, w) + bias. bias [OC] may be null.
  static void forward(const op& p, in_view x, in_view w, const T* bias, out_view y) {
    auto g = make_geometry<Dims, rank>(x, w, y.extent, p.stride, p.pad, p.dilation);
    const index_t out_size = g.out[0] * g.out[1] * g.out[2];
    for (index_t i = 0; i < y.size(); ++i) y.data[i] = bias ? bias[(i / out_size) % g.oc] : T(0);
    for_each_tap(g, [&](index_t yo, index_t xo, index_t wo) { y.data[yo] += w.data[wo] * x.data[xo]; });
  }

  // dx = conv^T(dy, w), overwriting dx (its extents give the input size).
  static void backward_data(const op& p, in_view dy, in_view w, out_view dx) {
    auto g = make_geometry<Dims, rank>(in_view(dx), w, dy.extent, p.stride, p.pad, p.dilation);
    for (index_t i = 0; i < dx.size(); ++i) dx.data[i] = T(0);
    for_each_tap(g, [&](index_t yo, index_t xo, index_t wo) { dx.data[xo] += w.data[wo] * dy.data[yo]; });
  }

  // dw = dL/dw and dbias = dL/dbias (when non-null), overwriting both.
  static void backward_weights(const op& p, in_view x, in_view dy, out_view dw, T* dbias) {
    auto g = make_geometry<Dims, rank>(x, in_view(dw), dy.extent, p.stride, p.pad, p.dilation);
    for (index_t i = 0; i < dw.size(); ++i) dw.data[i] = T(0);
    for_each_tap(g, [&](index_t yo, index_t xo, index_t wo) { dw.data[wo] += x.data[xo] * dy.data[yo]; });
    if (dbias) channel_sums(dy, dbias);
  }

  // s[c] = sum of v over every axis but the channel axis 1.
  static void channel_sums(in_view v, T* s) {
    const index_t channels = v.extent[1];
    for (index_t c = 0; c < channels; ++c) s[c] = T(0);
    if (v.size() == 0) return;  // an empty batch: the sums are 0 (and the division below would be by 0)
    const index_t spatial = v.size() / (v.extent[0] * channels);
    for (index_t i = 0; i < v.size(); ++i) s[(i / spatial) % channels] += v.data[i];
  }
};

// The transposed convolution is the adjoint of ops::conv: its forward is conv's backward_data and so on.
// Weight layout [IC, OC, k...] is exactly conv's [OC', IC', k...] with OC' = IC.
template <int Dims, class T>
struct conv_transpose_kernel {
  using op = ops::conv_transpose<Dims>;
  using conv = conv_kernel<Dims, T>;
  static constexpr int rank = Dims + 2;
  using in_view = tensor_view<const T, rank>;
  using out_view = tensor_view<T, rank>;

  static void forward(const op& p, in_view x, in_view w, const T* bias, out_view y) {
    conv::backward_data(p.forward_conv(), x, w, y);
    if (bias && y.size() > 0) {
      const index_t oc = y.extent[1], spatial = y.size() / (y.extent[0] * oc);
      for (index_t i = 0; i < y.size(); ++i) y.data[i] += bias[(i / spatial) % oc];
    }
  }
  static void backward_data(const op& p, in_view dy, in_view w, out_view dx) {
    conv::forward(p.forward_conv(), dy, w, nullptr, dx);
  }
  static void backward_weights(const op& p, in_view x, in_view dy, out_view dw, T* dbias) {
    conv::backward_weights(p.forward_conv(), dy, x, dw, nullptr);
    if (dbias) conv::channel_sums(dy, dbias);
  }
};

}  // namespace microcount::reference_detail

namespace microcount {

template <int Dims>
struct kernel<ops::conv<Dims>, backend::reference> : reference_detail::conv_kernel<Dims, float> {};
template <int Dims>
struct kernel<ops::conv<Dims>, backend::reference_f64> : reference_detail::conv_kernel<Dims, double> {};
template <int Dims>
struct kernel<ops::conv_transpose<Dims>, backend::reference> : reference_detail::conv_transpose_kernel<Dims, float> {};
template <int Dims>
struct kernel<ops::conv_transpose<Dims>, backend::reference_f64>
    : reference_detail::conv_transpose_kernel<Dims, double> {};

}  // namespace microcount
