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
//                     tap t, the output pixel o with o·stride − pad + t·dilation = i, when it exists;
//                     one GEMM per stride phase (i mod stride), over only the taps that phase meets
//   backward_weights  dw [OC × IC·taps] = dy [OC × N·out] · im2col(x)ᵀ [N·out × IC·taps]
//                     (the long N·out depth is split over blocks and the splits summed in a fixed order)
//   bias gradient     blocks per (channel, chunk), fixed-order tree reductions, chunks added in order
// conv_transpose is the adjoint of conv, as in the reference: its forward is conv's backward_data
// (with its bias fused into the store), its backward_data conv's forward, its backward_weights conv's
// backward_weights with input and output gradient swapped. Nothing uses float atomics: results are
// the same on every run.
#include <algorithm>
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
  // The divisions of every gather, by multiplication (int_divisor).
  int_divisor by_taps, by_out_size, by_out_hw, by_out_w, by_k_hw, by_k_w;

  void prepare_divisors() {  // (an empty extent never reaches a gather: divide by 1 instead)
    const auto positive = [](int v) { return v > 0 ? v : 1; };
    by_taps = int_divisor::of(positive(taps));
    by_out_size = int_divisor::of(positive(out_size));
    by_out_hw = int_divisor::of(positive(out[1] * out[2]));
    by_out_w = int_divisor::of(positive(out[2]));
    by_k_hw = int_divisor::of(positive(k[1] * k[2]));
    by_k_w = int_divisor::of(positive(k[2]));
  }
  // (od, oh, ow) of the flat output position o
  MICROCOUNT_HOST_DEVICE void output_position(int o, int* p) const {
    p[0] = by_out_hw.div(o);
    const int rest = o - p[0] * (out[1] * out[2]);
    p[1] = by_out_w.div(rest);
    p[2] = rest - p[1] * out[2];
  }
  // (kd, kh, kw) of the flat tap t
  MICROCOUNT_HOST_DEVICE void tap_position(int t, int* p) const {
    p[0] = by_k_hw.div(t);
    const int rest = t - p[0] * (k[1] * k[2]);
    p[1] = by_k_w.div(rest);
    p[2] = rest - p[1] * k[2];
  }
  // The offset of (id, ih, iw) in one input plane, or −1 when it falls in the padding.
  MICROCOUNT_HOST_DEVICE int input_offset(const int* i) const {
    for (int a = 0; a < 3; ++a)
      if (i[a] < 0 || i[a] >= in[a]) return -1;
    return (i[0] * in[1] + i[1]) * in[2] + i[2];
  }
};

// y [OC × N·out] = w [OC × IC·taps] · im2col(x) [IC·taps × N·out] + bias[oc]
struct forward_gemm {
  static constexpr const char* name = "conv_forward_gemm";
  static constexpr bool b_depth_contiguous = false;
  conv_shape g;
  const float* x;     // [N, IC, in]
  const float* w;     // [OC, IC, k]
  const float* bias;  // [OC] or null
  float* y;           // [N, OC, out]

  struct column {
    int image_offset = 0;          // of x's image
    int corner[3] = {0, 0, 0};     // o·stride − pad: the input position of tap (0, 0, 0)
  };
  MICROCOUNT_HOST_DEVICE column b_column(int col) const {
    const int image = g.by_out_size.div(col);
    int o[3];
    g.output_position(col - image * g.out_size, o);
    column c;
    c.image_offset = image * g.ic * g.in_size;
    for (int a = 0; a < 3; ++a) c.corner[a] = o[a] * g.stride[a] - g.pad[a];
    return c;
  }
  MICROCOUNT_HOST_DEVICE float a(int oc, int k) const { return w[oc * (g.ic * g.taps) + k]; }
  MICROCOUNT_HOST_DEVICE float b(int k, const column& c) const {  // im2col(x)[k = (ic, tap), col]
    const int channel = g.by_taps.div(k);
    int kp[3], i[3];
    g.tap_position(k - channel * g.taps, kp);
    for (int a = 0; a < 3; ++a) i[a] = c.corner[a] + kp[a] * g.dil[a];
    const int offset = g.input_offset(i);
    return offset < 0 ? 0.f : x[c.image_offset + channel * g.in_size + offset];
  }
  MICROCOUNT_HOST_DEVICE void store(int oc, int col, float v) const {
    const int image = g.by_out_size.div(col), o = col - image * g.out_size;
    y[(image * g.oc + oc) * g.out_size + o] = bias ? v + bias[oc] : v;
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

  struct column {
    int channel_offset = 0;     // of x's channel plane within an image
    int shift[3] = {0, 0, 0};   // tap·dilation − pad: added to o·stride
  };
  MICROCOUNT_HOST_DEVICE column b_column(int col) const {  // col = (ic, tap)
    const int channel = g.by_taps.div(col);
    int kp[3];
    g.tap_position(col - channel * g.taps, kp);
    column c;
    c.channel_offset = channel * g.in_size;
    for (int a = 0; a < 3; ++a) c.shift[a] = kp[a] * g.dil[a] - g.pad[a];
    return c;
  }
  MICROCOUNT_HOST_DEVICE float a(int oc, int k) const {  // dy[oc, k = (n, o)]
    const int image = g.by_out_size.div(k);
    return dy[(image * g.oc + oc) * g.out_size + (k - image * g.out_size)];
  }
  MICROCOUNT_HOST_DEVICE float b(int k, const column& c) const {  // im2col(x)ᵀ[k = (n, o), col]
    const int image = g.by_out_size.div(k);
    int o[3], i[3];
    g.output_position(k - image * g.out_size, o);
    for (int a = 0; a < 3; ++a) i[a] = o[a] * g.stride[a] + c.shift[a];
    const int offset = g.input_offset(i);
    return offset < 0 ? 0.f : x[image * g.ic * g.in_size + c.channel_offset + offset];
  }
  MICROCOUNT_HOST_DEVICE void store(int oc, int col, float v) const { dw[oc * (g.ic * g.taps) + col] = v; }
};

// backward_data splits the input pixels by their phase r = i mod stride (per axis). Within one phase,
// the taps that reach an output pixel are the same for every pixel: k with (r + pad − k·dilation) a
// multiple of the stride, an arithmetic progression first, first + step, … (step = stride / gcd(stride,
// dilation)), and the output they read is o = (r + pad − k·dilation) / stride + j for pixel i = r + stride·j.
// So each phase is a dense GEMM over its own taps: no multiply by a tap that misses (a 2×2 stride-2
// transposed convolution does a quarter of the work of the plain gather).
struct data_phase {
  int r[3] = {0, 0, 0};           // i mod stride
  int count[3] = {1, 1, 1};       // pixels of the phase per axis: i = r + stride·j, j < count
  int first[3] = {0, 0, 0};       // first tap of the phase per axis
  int step[3] = {1, 1, 1};        // tap step
  int taps[3] = {1, 1, 1};        // taps of the phase per axis (may be 0: the phase only gets the bias)
  int origin[3] = {0, 0, 0};      // output position read by tap `first` for j = 0
  int origin_step[3] = {0, 0, 0}; // how much one tap step moves it back
  int pixels = 1, phase_taps = 1; // products of count and of taps
  int_divisor by_pixels, by_count_hw, by_count_w, by_phase_taps, by_taps_hw, by_taps_w;
};

// dx [IC × N·phase pixels] = wᵀ [IC × OC·phase taps] · gather(dy) [OC·phase taps × N·phase pixels] + bias[ic]
struct backward_data_gemm {
  static constexpr const char* name = "conv_backward_data_gemm";
  static constexpr bool b_depth_contiguous = false;
  conv_shape g;
  data_phase ph;
  const float* dy;    // [N, OC, out]
  const float* w;     // [OC, IC, k]
  const float* bias;  // [IC] or null (conv_transpose's forward)
  float* dx;          // [N, IC, in]

  struct column {
    int image_offset = 0;  // of dy's image
    int j[3] = {0, 0, 0};  // the pixel's position within its phase
  };
  // (oc, phase tap u) of depth index k, u as (ud, uh, uw)
  MICROCOUNT_HOST_DEVICE int split_depth(int k, int* u) const {
    const int oc = ph.by_phase_taps.div(k);
    const int t = k - oc * ph.phase_taps;
    u[0] = ph.by_taps_hw.div(t);
    const int rest = t - u[0] * (ph.taps[1] * ph.taps[2]);
    u[1] = ph.by_taps_w.div(rest);
    u[2] = rest - u[1] * ph.taps[2];
    return oc;
  }
  // (image, j) of column col
  MICROCOUNT_HOST_DEVICE int split_column(int col, int* j) const {
    const int image = ph.by_pixels.div(col);
    const int p = col - image * ph.pixels;
    j[0] = ph.by_count_hw.div(p);
    const int rest = p - j[0] * (ph.count[1] * ph.count[2]);
    j[1] = ph.by_count_w.div(rest);
    j[2] = rest - j[1] * ph.count[2];
    return image;
  }
  MICROCOUNT_HOST_DEVICE column b_column(int col) const {
    column c;
    c.image_offset = split_column(col, c.j) * g.oc * g.out_size;
    return c;
  }
  MICROCOUNT_HOST_DEVICE float a(int ic, int k) const {  // w[oc, ic, tap(u)]
    int u[3];
    const int oc = split_depth(k, u);
    int tap = 0;
    for (int a = 0; a < 3; ++a) tap = tap * g.k[a] + ph.first[a] + ph.step[a] * u[a];
    return w[(oc * g.ic + ic) * g.taps + tap];
  }
  MICROCOUNT_HOST_DEVICE float b(int k, const column& c) const {  // dy[n, oc, o(u, j)]
    int u[3];
    const int oc = split_depth(k, u);
    int offset = 0;
    for (int a = 0; a < 3; ++a) {
      const int o = ph.origin[a] - ph.origin_step[a] * u[a] + c.j[a];
      if (o < 0 || o >= g.out[a]) return 0.f;
      offset = offset * g.out[a] + o;
    }
    return dy[c.image_offset + oc * g.out_size + offset];
  }
  MICROCOUNT_HOST_DEVICE void store(int ic, int col, float v) const {
    int j[3];
    const int image = split_column(col, j);
    int offset = 0;
    for (int a = 0; a < 3; ++a) offset = offset * g.in[a] + ph.r[a] + g.stride[a] * j[a];
    dx[(image * g.ic + ic) * g.in_size + offset] = bias ? v + bias[ic] : v;
  }
};

// The phase of backward_data whose pixels are i ≡ r (mod stride) on every axis.
inline data_phase make_phase(const conv_shape& g, const int* r) {
  data_phase ph;
  for (int a = 0; a < 3; ++a) {
    const int s = g.stride[a], d = g.dil[a];
    ph.r[a] = r[a];
    ph.count[a] = r[a] < g.in[a] ? (g.in[a] - r[a] + s - 1) / s : 0;
    int common = s, other = d;  // gcd(s, d)
    while (other != 0) {
      const int rest = common % other;
      common = other;
      other = rest;
    }
    ph.step[a] = s / common;
    // The taps repeat with period step: the first solution, if any, is below it.
    int first = -1;
    for (int k = 0; k < ph.step[a] && k < g.k[a]; ++k)
      if (((r[a] + g.pad[a] - k * d) % s + s) % s == 0) {
        first = k;
        break;
      }
    ph.first[a] = first < 0 ? 0 : first;
    ph.taps[a] = first < 0 ? 0 : (g.k[a] - first + ph.step[a] - 1) / ph.step[a];
    ph.origin[a] = (r[a] + g.pad[a] - ph.first[a] * d) / s;  // exact when the phase has taps
    ph.origin_step[a] = ph.step[a] * d / s;
  }
  ph.pixels = ph.count[0] * ph.count[1] * ph.count[2];
  ph.phase_taps = ph.taps[0] * ph.taps[1] * ph.taps[2];
  const auto positive = [](int v) { return v > 0 ? v : 1; };
  ph.by_pixels = int_divisor::of(positive(ph.pixels));
  ph.by_count_hw = int_divisor::of(positive(ph.count[1] * ph.count[2]));
  ph.by_count_w = int_divisor::of(positive(ph.count[2]));
  ph.by_phase_taps = int_divisor::of(positive(ph.phase_taps));
  ph.by_taps_hw = int_divisor::of(positive(ph.taps[1] * ph.taps[2]));
  ph.by_taps_w = int_divisor::of(positive(ph.taps[2]));
  return ph;
}

// Per-channel sums of v [N, C, spatial] over images and space (the bias gradient), in two fixed-order
// passes: block (c, chunk) reduces one contiguous chunk of channel c's N·spatial values (a strided share
// per thread, then a tree in shared memory) into partial [C, chunks]; then one thread per channel adds
// its chunks in order. The chunk count depends on the shape only: deterministic, no atomics.
struct channel_sum_kernel {
  static constexpr const char* name = "conv_channel_sums";
  static constexpr unsigned threads = 256;
  template <class Ctx>
  MICROCOUNT_HOST_DEVICE void operator()(const Ctx& ctx, const float* v, int channels, int spatial, int count,
                                         int chunk_length, int_divisor by_spatial, float* partial) const {
    float* shared = ctx.template shared<float>();  // [threads]
    const int c = static_cast<int>(ctx.block_idx().x), chunk = static_cast<int>(ctx.block_idx().y);
    const int t = static_cast<int>(ctx.thread_idx().x);
    const int begin = chunk * chunk_length, end = count - begin < chunk_length ? count : begin + chunk_length;
    float sum = 0.f;
    for (int j = begin + t; j < end; j += static_cast<int>(threads)) {  // j = (image, s)
      const int image = by_spatial.div(j);
      sum += v[(image * channels + c) * spatial + (j - image * spatial)];  // v [N, C, spatial]
    }
    shared[t] = sum;
    ctx.sync();
    for (int half = static_cast<int>(threads) / 2; half > 0; half /= 2) {
      if (t < half) shared[t] += shared[t + half];
      ctx.sync();
    }
    if (t == 0) partial[c * static_cast<int>(ctx.grid_dim().y) + chunk] = shared[0];
  }
};

struct chunk_sum_kernel {
  static constexpr const char* name = "conv_channel_sums_chunks";
  template <class Ctx>
  MICROCOUNT_HOST_DEVICE void operator()(const Ctx& ctx, const float* partial, int channels, int chunks, float* sums) const {
    const int c = static_cast<int>(ctx.block_idx().x * ctx.block_dim().x + ctx.thread_idx().x);
    if (c >= channels) return;
    float sum = 0.f;
    for (int k = 0; k < chunks; ++k) sum += partial[c * chunks + k];  // partial [C, chunks]
    sums[c] = sum;
  }
};

// Chunks per channel of the bias gradient: one block per 16 Ki values, at most 64 (a function of the
// shape only).
inline int channel_sum_chunks(index_t count) {
  constexpr index_t values_per_block = 16 * 1024, max_chunks = 64;
  return static_cast<int>(std::clamp<index_t>(ceil_div(count, values_per_block), 1, max_chunks));
}

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
  g.prepare_divisors();
  return g;
}

// y = conv(x, w) + bias[oc]
inline void conv_forward(const conv_shape& g, const float* x, const float* w, const float* bias, float* y) {
  run_gemm(forward_gemm{g, x, w, bias, y}, g.oc, index_t(g.n) * g.out_size, index_t(g.ic) * g.taps);
}
// dx = convᵀ(dy, w) + bias[ic], overwriting dx: one GEMM per stride phase (every input pixel is in one).
inline void conv_backward_data(const conv_shape& g, const float* dy, const float* w, const float* bias, float* dx) {
  int r[3];
  for (r[0] = 0; r[0] < g.stride[0]; ++r[0])
    for (r[1] = 0; r[1] < g.stride[1]; ++r[1])
      for (r[2] = 0; r[2] < g.stride[2]; ++r[2]) {
        const data_phase ph = make_phase(g, r);
        run_gemm(backward_data_gemm{g, ph, dy, w, bias, dx}, g.ic, index_t(g.n) * ph.pixels,
                 index_t(g.oc) * ph.phase_taps);
      }
}
// dw = dL/dw, overwriting dw
inline void conv_backward_weights(const conv_shape& g, const float* x, const float* dy, float* dw) {
  run_gemm(backward_weights_gemm{g, x, dy, dw}, g.oc, index_t(g.ic) * g.taps, index_t(g.n) * g.out_size);
}
// sums[c] = Σ v [images, channels, spatial] over images and space, overwriting sums
inline void channel_sums(const float* v, int images, int channels, int spatial, float* sums) {
  if (channels == 0) return;
  using sum_kernel = channel_sum_kernel;
  const int count = images * spatial;  // < 2^31: the tensor's size was checked
  const int chunks = channel_sum_chunks(count);
  const int chunk_length = static_cast<int>(ceil_div(count, chunks));
  const cuda::dims3 grid{static_cast<unsigned>(channels), static_cast<unsigned>(chunks), 1};
  const int_divisor by_spatial = int_divisor::of(spatial > 0 ? spatial : 1);
  if (chunks == 1) {  // the block's sum is the channel's: no second pass
    cuda::launch(sum_kernel{}, grid, {sum_kernel::threads}, sum_kernel::threads * sizeof(float), v, channels, spatial,
                 count, chunk_length, by_spatial, sums);
    return;
  }
  float* partial = split_workspace(index_t(channels) * chunks);  // [channels, chunks]
  cuda::launch(sum_kernel{}, grid, {sum_kernel::threads}, sum_kernel::threads * sizeof(float), v, channels, spatial,
               count, chunk_length, by_spatial, partial);
  cuda::launch(chunk_sum_kernel{}, cuda::blocks_for(channels, 128), {128}, 0, partial, channels, chunks, sums);
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
