#pragma once
// Convolution and transposed convolution for backend::cuda: kernel<ops::conv<D>, backend::cuda> and
// kernel<ops::conv_transpose<D>, backend::cuda>, D = 2, 3, float, contiguous NC(D)HW device views.
// Same static functions and semantics as backends/reference/conv.hpp (no forward_fused: the fused
// conv + BatchNorm path stays on the cpu backend; layers fall back to the unfused ops).
//
// Every pass is one implicit GEMM on the tiled engine of conv_gemm.cuh, with the im2col gather
// computed on the fly (2D is 3D with a depth of 1, so one body serves both):
//   forward           y [OC × N·out] = w [OC × IC·taps] · im2col(x) [IC·taps × N·out]        (+ bias[oc])
//   backward_data     dx [IC × N·in] = wᵀ [IC × OC·taps] · gather(dy) [OC·taps × N·in]      (+ bias[ic])
//                     the scatter of the adjoint written as a gather: input pixel i receives, through
//                     tap t, the output pixel o with o·stride − pad + t·dilation = i, when it exists
//   backward_weights  dw [OC × IC·taps] = dy [OC × N·out] · im2col(x)ᵀ [N·out × IC·taps]
//                     (the long N·out depth is split over blocks and the splits summed in a fixed order)
//   bias gradient     one block per channel, a fixed-order tree reduction in shared memory
// conv_transpose is the adjoint of conv, as in the reference: its forward is conv's backward_data
// (with its bias fused into the store), its backward_data conv's forward, its backward_weights conv's
// backward_weights with input and output gradient swapped. Nothing uses float atomics: results are
// the same on every run.
#include <array>
#include <cstdint>
#include <limits>
#include <string>

#include "microcount/backends/cuda/conv_gemm.cuh"
#include "microcount/backends/cuda/launch.cuh"
#include "microcount/core/error.hpp"
#include "microcount/core/shape.hpp"
#include "microcount/core/tensor.hpp"
#include "microcount/nn/op.hpp"
#include "microcount/nn/ops.hpp"

namespace microcount::cuda_conv_detail {

// A convolution x [N, IC, in...] * w [OC, IC, k...] -> y [N, OC, out...] with its spatial axes lifted
// to (D, H, W), unused leading axes of extent 1. Plain ints: the host checks that every tensor and every
// GEMM extent stays below 2^31, so device index arithmetic is 32-bit.
struct conv_shape {
  int n = 0, ic = 0, oc = 0;
  int in[3] = {1, 1, 1}, out[3] = {1, 1, 1}, k[3] = {1, 1, 1};
  int stride[3] = {1, 1, 1}, pad[3] = {0, 0, 0}, dil[3] = {1, 1, 1};
  int in_size = 1, out_size = 1, taps = 1;  // products of in, out, k
};

// The offset within one input plane that output position o reads through tap t, or −1 in the padding.
MICROCOUNT_HOST_DEVICE inline int tap_source(const conv_shape& g, int o, int t) {
  const int o_axis[3] = {o / (g.out[1] * g.out[2]), o / g.out[2] % g.out[1], o % g.out[2]};  // (od, oh, ow)
  const int k_axis[3] = {t / (g.k[1] * g.k[2]), t / g.k[2] % g.k[1], t % g.k[2]};            // (kd, kh, kw)
  int offset = 0;
  for (int a = 0; a < 3; ++a) {
    const int i = o_axis[a] * g.stride[a] - g.pad[a] + k_axis[a] * g.dil[a];
    if (i < 0 || i >= g.in[a]) return -1;
    offset = offset * g.in[a] + i;
  }
  return offset;
}

// The offset within one output plane whose tap t reads input position i, or −1 when none does
// (i + pad − t·dilation is negative, not a multiple of the stride, or past the output).
MICROCOUNT_HOST_DEVICE inline int tap_target(const conv_shape& g, int i, int t) {
  const int i_axis[3] = {i / (g.in[1] * g.in[2]), i / g.in[2] % g.in[1], i % g.in[2]};  // (id, ih, iw)
  const int k_axis[3] = {t / (g.k[1] * g.k[2]), t / g.k[2] % g.k[1], t % g.k[2]};      // (kd, kh, kw)
  int offset = 0;
  for (int a = 0; a < 3; ++a) {
    const int shifted = i_axis[a] + g.pad[a] - k_axis[a] * g.dil[a];
    if (shifted < 0 || shifted % g.stride[a] != 0) return -1;
    const int o = shifted / g.stride[a];
    if (o >= g.out[a]) return -1;
    offset = offset * g.out[a] + o;
  }
  return offset;
}

// im2col(x) [IC·taps × N·out] without materialising it: the forward's B and the weight gradient's Bᵀ.
MICROCOUNT_HOST_DEVICE inline float im2col(const conv_shape& g, const float* x, int k, int col) {
  const int c = k / g.taps, t = k % g.taps;
  const int image = col / g.out_size, o = col % g.out_size;
  const int source = tap_source(g, o, t);
  return source < 0 ? 0.f : x[(image * g.ic + c) * g.in_size + source];  // x [N, IC, in]
}

// y [OC × N·out] = w [OC × IC·taps] · im2col(x) + bias[oc]
struct forward_gemm {
  static constexpr const char* name = "conv_forward_gemm";
  static constexpr bool b_depth_contiguous = false;
  conv_shape g;
  const float* x;     // [N, IC, in]
  const float* w;     // [OC, IC, k]
  const float* bias;  // [OC] or null
  float* y;           // [N, OC, out]
  MICROCOUNT_HOST_DEVICE float a(int oc, int k) const { return w[oc * (g.ic * g.taps) + k]; }
  MICROCOUNT_HOST_DEVICE float b(int k, int col) const { return im2col(g, x, k, col); }
  MICROCOUNT_HOST_DEVICE void store(int oc, int col, float v) const {
    const int image = col / g.out_size, o = col % g.out_size;
    y[(image * g.oc + oc) * g.out_size + o] = bias ? v + bias[oc] : v;
  }
};

// dx [IC × N·in] = wᵀ [IC × OC·taps] · gather(dy) [OC·taps × N·in] + bias[ic]
struct backward_data_gemm {
  static constexpr const char* name = "conv_backward_data_gemm";
  static constexpr bool b_depth_contiguous = false;
  conv_shape g;
  const float* dy;    // [N, OC, out]
  const float* w;     // [OC, IC, k]
  const float* bias;  // [IC] or null (conv_transpose's forward)
  float* dx;          // [N, IC, in]
  MICROCOUNT_HOST_DEVICE float a(int ic, int k) const {
    const int oc = k / g.taps, t = k % g.taps;
    return w[(oc * g.ic + ic) * g.taps + t];
  }
  MICROCOUNT_HOST_DEVICE float b(int k, int col) const {
    const int oc = k / g.taps, t = k % g.taps;
    const int image = col / g.in_size, i = col % g.in_size;
    const int target = tap_target(g, i, t);
    return target < 0 ? 0.f : dy[(image * g.oc + oc) * g.out_size + target];
  }
  MICROCOUNT_HOST_DEVICE void store(int ic, int col, float v) const {
    const int image = col / g.in_size, i = col % g.in_size;
    dx[(image * g.ic + ic) * g.in_size + i] = bias ? v + bias[ic] : v;
  }
};

// dw [OC × IC·taps] = dy [OC × N·out] · im2col(x)ᵀ [N·out × IC·taps]
struct backward_weights_gemm {
  static constexpr const char* name = "conv_backward_weights_gemm";
  static constexpr bool b_depth_contiguous = true;  // the depth is the pixel axis of x
  conv_shape g;
  const float* x;   // [N, IC, in]
  const float* dy;  // [N, OC, out]
  float* dw;        // [OC, IC, k]
  MICROCOUNT_HOST_DEVICE float a(int oc, int k) const {
    const int image = k / g.out_size, o = k % g.out_size;
    return dy[(image * g.oc + oc) * g.out_size + o];
  }
  MICROCOUNT_HOST_DEVICE float b(int k, int col) const { return im2col(g, x, col, k); }
  MICROCOUNT_HOST_DEVICE void store(int oc, int col, float v) const { dw[oc * (g.ic * g.taps) + col] = v; }
};

// sums[c] = Σ v[n, c, s] over images and space: one block per channel, each thread a fixed strided
// share, then a tree in shared memory (fixed order: deterministic).
struct channel_sum_kernel {
  static constexpr const char* name = "conv_channel_sums";
  static constexpr unsigned threads = 256;
  template <class Ctx>
  MICROCOUNT_HOST_DEVICE void operator()(const Ctx& ctx, const float* v, int images, int channels, int spatial,
                                         float* sums) const {
    float* partial = ctx.template shared<float>();  // [threads]
    const int c = static_cast<int>(ctx.block_idx().x), t = static_cast<int>(ctx.thread_idx().x);
    float sum = 0.f;
    for (int j = t; j < images * spatial; j += static_cast<int>(threads)) {
      const int image = j / spatial, s = j % spatial;
      sum += v[(image * channels + c) * spatial + s];  // v [N, C, spatial]
    }
    partial[t] = sum;
    ctx.sync();
    for (int half = static_cast<int>(threads) / 2; half > 0; half /= 2) {
      if (t < half) partial[t] += partial[t + half];
      ctx.sync();
    }
    if (t == 0) sums[c] = partial[0];
  }
};

// ---- host side ----------------------------------------------------------------------------------

template <int Rank>
shape shape_of(const std::array<index_t, Rank>& e) {
  shape s;
  s.rank = Rank;
  for (int i = 0; i < Rank; ++i) s[i] = e[i];
  return s;
}

template <class V>
void require_contiguous(const V& v, const char* who) {
  require(v.is_contiguous(), who, "every tensor must be a contiguous view");
}

// Geometry of conv p with input extents x, weight w and output y; throws a readable error when the three
// do not belong together or an extent needs more than 32-bit indexing.
template <int Dims>
conv_shape make_shape(const ops::conv<Dims>& p, const std::array<index_t, Dims + 2>& x,
                      const std::array<index_t, Dims + 2>& w, const std::array<index_t, Dims + 2>& y, const char* who) {
  const shape expected = p.output_shape(shape_of<Dims + 2>(x), shape_of<Dims + 2>(w));
  require(expected == shape_of<Dims + 2>(y), who,
          "output view is " + shape_of<Dims + 2>(y).str() + " but the convolution of " + shape_of<Dims + 2>(x).str() +
              " by " + shape_of<Dims + 2>(w).str() + " gives " + expected.str());
  index_t in_size = 1, out_size = 1, taps = 1;
  for (int a = 0; a < Dims; ++a) {
    in_size *= x[2 + a];
    out_size *= y[2 + a];
    taps *= w[2 + a];
  }
  const index_t n = x[0], ic = x[1], oc = w[0];
  constexpr index_t limit = std::numeric_limits<int>::max();
  for (const index_t extent : {n * ic * in_size, n * oc * out_size, oc * ic * taps, n * in_size, n * out_size})
    require(extent <= limit, who,
            "input " + shape_of<Dims + 2>(x).str() + " with weight " + shape_of<Dims + 2>(w).str() +
                " needs more than 2^31 elements in one tensor or GEMM axis; split the batch");
  conv_shape g;
  g.n = static_cast<int>(n);
  g.ic = static_cast<int>(ic);
  g.oc = static_cast<int>(oc);
  for (int a = 0; a < Dims; ++a) {
    const int t = 3 - Dims + a;  // align the last Dims axes
    g.in[t] = static_cast<int>(x[2 + a]);
    g.out[t] = static_cast<int>(y[2 + a]);
    g.k[t] = static_cast<int>(w[2 + a]);
    g.stride[t] = p.stride[a];
    g.pad[t] = p.pad[a];
    g.dil[t] = p.dilation[a];
  }
  g.in_size = static_cast<int>(in_size);
  g.out_size = static_cast<int>(out_size);
  g.taps = static_cast<int>(taps);
  return g;
}

// y = conv(x, w) + bias[oc]
inline void conv_forward(const conv_shape& g, const float* x, const float* w, const float* bias, float* y) {
  run_gemm(forward_gemm{g, x, w, bias, y}, g.oc, index_t(g.n) * g.out_size, index_t(g.ic) * g.taps);
}
// dx = convᵀ(dy, w) + bias[ic], overwriting dx
inline void conv_backward_data(const conv_shape& g, const float* dy, const float* w, const float* bias, float* dx) {
  run_gemm(backward_data_gemm{g, dy, w, bias, dx}, g.ic, index_t(g.n) * g.in_size, index_t(g.oc) * g.taps);
}
// dw = dL/dw, overwriting dw
inline void conv_backward_weights(const conv_shape& g, const float* x, const float* dy, float* dw) {
  run_gemm(backward_weights_gemm{g, x, dy, dw}, g.oc, index_t(g.ic) * g.taps, index_t(g.n) * g.out_size);
}
// sums[c] = Σ v [images, channels, spatial] over images and space, overwriting sums
inline void channel_sums(const float* v, int images, int channels, int spatial, float* sums) {
  if (channels == 0) return;
  cuda::launch(channel_sum_kernel{}, {static_cast<unsigned>(channels)}, {channel_sum_kernel::threads},
               channel_sum_kernel::threads * sizeof(float), v, images, channels, spatial, sums);
}

}  // namespace microcount::cuda_conv_detail

namespace microcount {

template <int Dims>
struct kernel<ops::conv<Dims>, backend::cuda> {
  using op = ops::conv<Dims>;
  static constexpr int rank = Dims + 2;
  using in_view = tensor_view<const float, rank>;
  using out_view = tensor_view<float, rank>;

  // y = conv(x, w) + bias. bias [OC] may be null.
  static void forward(const op& p, in_view x, in_view w, const float* bias, out_view y) {
    const auto g = geometry(p, x.extent, w.extent, y.extent, x, w, y, "conv forward (cuda)");
    cuda_conv_detail::conv_forward(g, x.data, w.data, bias, y.data);
  }

  // dx = conv^T(dy, w), overwriting dx (its extents give the input size).
  static void backward_data(const op& p, in_view dy, in_view w, out_view dx) {
    const auto g = geometry(p, dx.extent, w.extent, dy.extent, dy, w, dx, "conv backward_data (cuda)");
    cuda_conv_detail::conv_backward_data(g, dy.data, w.data, nullptr, dx.data);
  }

  // dw = dL/dw and dbias = dL/dbias (when non-null), overwriting both.
  static void backward_weights(const op& p, in_view x, in_view dy, out_view dw, float* dbias) {
    const auto g = geometry(p, x.extent, dw.extent, dy.extent, x, dy, dw, "conv backward_weights (cuda)");
    cuda_conv_detail::conv_backward_weights(g, x.data, dy.data, dw.data);
    if (dbias) cuda_conv_detail::channel_sums(dy.data, g.n, g.oc, g.out_size, dbias);
  }

 private:
  // Checks that the three views are contiguous and that input x * weight w gives output y.
  template <class A, class B, class C>
  static cuda_conv_detail::conv_shape geometry(const op& p, const std::array<index_t, rank>& x,
                                               const std::array<index_t, rank>& w, const std::array<index_t, rank>& y,
                                               const A& v1, const B& v2, const C& v3, const char* who) {
    cuda_conv_detail::require_contiguous(v1, who);
    cuda_conv_detail::require_contiguous(v2, who);
    cuda_conv_detail::require_contiguous(v3, who);
    return cuda_conv_detail::make_shape<Dims>(p, x, w, y, who);
  }
};

// The adjoint of ops::conv; weight layout [IC, OC, k...] is conv's [OC', IC', k...] with OC' = IC.
template <int Dims>
struct kernel<ops::conv_transpose<Dims>, backend::cuda> {
  using op = ops::conv_transpose<Dims>;
  static constexpr int rank = Dims + 2;
  using in_view = tensor_view<const float, rank>;
  using out_view = tensor_view<float, rank>;

  // y = conv_transpose(x, w) + bias. bias [OC] may be null.
  static void forward(const op& p, in_view x, in_view w, const float* bias, out_view y) {
    const auto g = geometry(p, x.extent, w.extent, y.extent, x, w, y, "conv_transpose forward (cuda)");
    cuda_conv_detail::conv_backward_data(g, x.data, w.data, bias, y.data);
  }
  // dx = conv(dy, w), overwriting dx.
  static void backward_data(const op& p, in_view dy, in_view w, out_view dx) {
    const auto g = geometry(p, dx.extent, w.extent, dy.extent, dy, w, dx, "conv_transpose backward_data (cuda)");
    cuda_conv_detail::conv_forward(g, dy.data, w.data, nullptr, dx.data);
  }
  // dw = dL/dw and dbias = dL/dbias (when non-null), overwriting both.
  static void backward_weights(const op& p, in_view x, in_view dy, out_view dw, float* dbias) {
    const auto g = geometry(p, x.extent, dw.extent, dy.extent, x, dy, dw, "conv_transpose backward_weights (cuda)");
    cuda_conv_detail::conv_backward_weights(g, dy.data, x.data, dw.data);
    if (dbias) cuda_conv_detail::channel_sums(dy.data, g.n, g.ic, g.in_size, dbias);
  }

 private:
  // Geometry of the convolution this op is the adjoint of: its input is our output y [N, OC, ...], its
  // output our input x [N, IC, ...].
  template <class A, class B, class C>
  static cuda_conv_detail::conv_shape geometry(const op& p, const std::array<index_t, rank>& x,
                                               const std::array<index_t, rank>& w, const std::array<index_t, rank>& y,
                                               const A& v1, const B& v2, const C& v3, const char* who) {
    using cuda_conv_detail::shape_of;
    cuda_conv_detail::require_contiguous(v1, who);
    cuda_conv_detail::require_contiguous(v2, who);
    cuda_conv_detail::require_contiguous(v3, who);
    const shape expected = p.output_shape(shape_of<rank>(x), shape_of<rank>(w));
    require(expected == shape_of<rank>(y), who,
            "output view is " + shape_of<rank>(y).str() + " but the transposed convolution of " + shape_of<rank>(x).str() +
                " by " + shape_of<rank>(w).str() + " gives " + expected.str());
    return cuda_conv_detail::make_shape<Dims>(p.forward_conv(), y, w, x, who);
  }
};

}  // namespace microcount
