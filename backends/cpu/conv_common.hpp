#pragma once
// Shared pieces of the cpu convolution kernels (backends/cpu/conv.hpp):
//   conv_epilogue      optional work fused into the forward (folded BatchNorm + ReLU, BatchNorm statistics);
//   conv_geometry      a 2D or 3D convolution lifted to 3 spatial axes (D, H, W), checked against the views;
//   thread_scratch     per-thread, reused, 64-byte aligned buffers (no page faults per call);
//   copy_padded        a zero-padded copy of an input region, so inner loops have no border branches;
//   epilogue_math      bias, statistics, scale/shift, ReLU on one SIMD batch (used by every path).
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include <xsimd/xsimd.hpp>

#include "microcount/core/config.hpp"
#include "microcount/core/error.hpp"
#include "microcount/core/shape.hpp"
#include "microcount/core/tensor.hpp"
#include "microcount/nn/ops.hpp"

namespace microcount {

// The fused-epilogue parameters are backend-agnostic: ops::conv_epilogue (nn/ops.hpp).
using conv_epilogue = ops::conv_epilogue;

}  // namespace microcount

namespace microcount::cpu_conv_detail {

using batch = xsimd::batch<float>;
inline constexpr index_t lanes = static_cast<index_t>(batch::size);
// SIMD registers the register tiles may fill: 32 with AVX-512, 16 with AVX2 / SSE.
#if XSIMD_WITH_AVX512F
inline constexpr int simd_registers = 32;
#else
inline constexpr int simd_registers = 16;
#endif

inline constexpr index_t round_up(index_t v, index_t m) { return (v + m - 1) / m * m; }
inline constexpr index_t ceil_div(index_t v, index_t m) { return (v + m - 1) / m; }

// ---- geometry ---------------------------------------------------------------------------------

// A convolution x [N, IC, in...] * w [OC, IC, k...] -> y [N, OC, out...] with its spatial axes lifted
// to (D, H, W); unused leading axes have extent 1.
struct conv_geometry {
  index_t n = 0, ic = 0, oc = 0;
  std::array<index_t, 3> in{1, 1, 1}, out{1, 1, 1}, k{1, 1, 1};
  std::array<index_t, 3> stride{1, 1, 1}, pad{0, 0, 0}, dil{1, 1, 1};

  [[nodiscard]] index_t in_size() const { return in[0] * in[1] * in[2]; }
  [[nodiscard]] index_t out_size() const { return out[0] * out[1] * out[2]; }
  [[nodiscard]] index_t taps() const { return k[0] * k[1] * k[2]; }
  [[nodiscard]] bool unit_stride() const { return stride[0] == 1 && stride[1] == 1 && stride[2] == 1; }
  [[nodiscard]] bool pointwise() const {  // 1×1(×1), stride 1, no padding: a plain GEMM per image
    return taps() == 1 && unit_stride() && pad[0] == 0 && pad[1] == 0 && pad[2] == 0;
  }
  // Every input position is read by exactly one (output, tap) pair: kernel == stride, no padding,
  // no dilation, and the output tiles the input exactly (2×2 stride 2 and the like).
  [[nodiscard]] bool tiles_input_exactly() const {
    for (int a = 0; a < 3; ++a)
      if (k[a] != stride[a] || pad[a] != 0 || (k[a] > 1 && dil[a] != 1) || out[a] * stride[a] != in[a]) return false;
    return true;
  }
};

template <class V>
void require_contiguous(const V& v, const char* who, const char* what) {
  require(v.is_contiguous(), who, std::string(what) + " must be a contiguous view");
}

template <int Rank>
shape shape_of(const std::array<index_t, Rank>& e) {
  shape s;
  s.rank = Rank;
  for (int i = 0; i < Rank; ++i) s[i] = e[i];
  return s;
}

// Geometry of conv `p` with input extents `x`, weight `w` and output `y`; throws a readable error when
// the three do not belong together (the reference kernels trust their caller; the fast ones check).
template <int Dims>
conv_geometry make_geometry(const ops::conv<Dims>& p, const std::array<index_t, Dims + 2>& x,
                            const std::array<index_t, Dims + 2>& w, const std::array<index_t, Dims + 2>& y,
                            const char* who) {
  const shape expected = p.output_shape(shape_of<Dims + 2>(x), shape_of<Dims + 2>(w));
  require(expected == shape_of<Dims + 2>(y), who,
          "output view is " + shape_of<Dims + 2>(y).str() + " but the convolution of " + shape_of<Dims + 2>(x).str() +
              " by " + shape_of<Dims + 2>(w).str() + " gives " + expected.str());
  conv_geometry g;
  g.n = x[0];
  g.ic = x[1];
  g.oc = w[0];
  for (int a = 0; a < Dims; ++a) {
    const int t = 3 - Dims + a;  // align the last Dims axes
    g.in[t] = x[2 + a];
    g.out[t] = y[2 + a];
    g.k[t] = w[2 + a];
    g.stride[t] = p.stride[a];
    g.pad[t] = p.pad[a];
    g.dil[t] = p.dilation[a];
  }
  return g;
}

// ---- scratch memory ---------------------------------------------------------------------------

// A per-thread float buffer, 64-byte aligned, grown on demand and kept for the next call: a fresh
// multi-megabyte allocation per call would pay its page faults every time. `slot` separates buffers one
// thread uses at the same time. Contents are unspecified.
inline float* thread_scratch(int slot, index_t count) {
  struct buffer {
    float* data = nullptr;
    index_t size = 0;
    buffer() = default;
    buffer(const buffer&) = delete;
    buffer& operator=(const buffer&) = delete;
    ~buffer() { std::free(data); }
  };
  thread_local std::array<buffer, 4> buffers;
  buffer& b = buffers[static_cast<std::size_t>(slot)];
  count = std::max<index_t>(count, 16);
  if (b.size < count) {
    std::free(b.data);
    b.data = nullptr;
    b.size = 0;
    const std::size_t bytes = static_cast<std::size_t>(round_up(count, 16)) * sizeof(float);
    b.data = static_cast<float*>(std::aligned_alloc(64, bytes));
    if (!b.data) throw std::bad_alloc();
    b.size = round_up(count, 16);
  }
  return b.data;
}
// Slot numbers: shared buffers owned by the calling thread, and per-task buffers of the workers.
inline constexpr int shared_slot = 0, task_slot = 1, task_slot2 = 2;

// ---- zero-padded copies -----------------------------------------------------------------------

// Copies a box of one channel `src` [D, H, W] into dst rows of `width` floats, row r of plane p at
// dst + p·plane_stride + r·row_stride: dst(p, r, c) = src(d0 + p, r0 + r, c0 + c) where that is inside the
// image, 0 elsewhere. d0/r0/c0 may be negative (padding) or cut into the image (a band of rows, or
// negative padding).
inline void copy_padded(const float* src, const std::array<index_t, 3>& in, index_t d0, index_t planes, index_t r0,
                        index_t rows, index_t c0, index_t width, float* dst, index_t row_stride, index_t plane_stride) {
  const index_t col_lo = std::clamp<index_t>(-c0, 0, width);           // first dst column inside the image
  const index_t col_hi = std::clamp<index_t>(in[2] - c0, col_lo, width);  // one past the last
  for (index_t p = 0; p < planes; ++p) {
    const index_t d = d0 + p;
    for (index_t r = 0; r < rows; ++r) {
      float* out = dst + p * plane_stride + r * row_stride;
      const index_t h = r0 + r;
      if (d < 0 || d >= in[0] || h < 0 || h >= in[1] || col_hi == col_lo) {
        std::memset(out, 0, sizeof(float) * static_cast<std::size_t>(width));
        continue;
      }
      const float* row = src + (d * in[1] + h) * in[2];
      if (col_lo > 0) std::memset(out, 0, sizeof(float) * static_cast<std::size_t>(col_lo));
      std::memcpy(out + col_lo, row + c0 + col_lo, sizeof(float) * static_cast<std::size_t>(col_hi - col_lo));
      if (col_hi < width) std::memset(out + col_hi, 0, sizeof(float) * static_cast<std::size_t>(width - col_hi));
    }
  }
}

// ---- horizontal sums ---------------------------------------------------------------------------

// out[i] = Σ lanes of rows[i], i < count. With AVX-512, 16 rows at a time by a transposing tree
// (~3 shuffles per row instead of ~8 for a hadd each; xsimd 8.1's haddp permutes its AVX-512 result).
// The masked intrinsic forms avoid GCC 12's false -Wuninitialized on the unmasked ones (bug 105593).
inline void horizontal_sums(const batch* rows, int count, float* out) {
#if XSIMD_WITH_AVX512F
  if constexpr (batch::size == 16) {
    for (int base = 0; base < count; base += 16) {
      __m512 r[16];
      for (int j = 0; j < 16; ++j) r[j] = base + j < count ? static_cast<__m512>(rows[base + j]) : _mm512_setzero_ps();
      constexpr __mmask16 all = 0xFFFF;
      // 16 rows -> 8: low 256 bits hold row i folded to 8 lanes, high 256 bits row i + 8.
      __m512 t[8];
      for (int i = 0; i < 8; ++i)
        t[i] = _mm512_add_ps(_mm512_maskz_shuffle_f32x4(all, r[i], r[i + 8], _MM_SHUFFLE(1, 0, 1, 0)),
                             _mm512_maskz_shuffle_f32x4(all, r[i], r[i + 8], _MM_SHUFFLE(3, 2, 3, 2)));
      // 8 -> 4: 128-bit blocks hold rows i, i + 8, i + 4, i + 12, each folded to 4 lanes.
      __m512 u[4];
      for (int i = 0; i < 4; ++i)
        u[i] = _mm512_add_ps(_mm512_maskz_shuffle_f32x4(all, t[i], t[i + 4], _MM_SHUFFLE(2, 0, 2, 0)),
                             _mm512_maskz_shuffle_f32x4(all, t[i], t[i + 4], _MM_SHUFFLE(3, 1, 3, 1)));
      // 4 -> 2 -> 1 inside each 128-bit block: lane 4·k + i ends up holding block k's row of u[i].
      __m512 v[2];
      for (int i = 0; i < 2; ++i)
        v[i] = _mm512_add_ps(_mm512_maskz_unpacklo_ps(all, u[2 * i], u[2 * i + 1]),
                             _mm512_maskz_unpackhi_ps(all, u[2 * i], u[2 * i + 1]));
      const __m512d a = _mm512_castps_pd(v[0]), b = _mm512_castps_pd(v[1]);
      const __m512 w = _mm512_add_ps(_mm512_castpd_ps(_mm512_maskz_unpacklo_pd(0xFF, a, b)),
                                     _mm512_castpd_ps(_mm512_maskz_unpackhi_pd(0xFF, a, b)));
      alignas(64) float lanes_out[16];
      _mm512_store_ps(lanes_out, w);
      constexpr int block_row[4] = {0, 8, 4, 12};
      for (int k = 0; k < 4; ++k)
        for (int i = 0; i < 4; ++i) {
          const int row = base + i + block_row[k];
          if (row < count) out[row] = lanes_out[4 * k + i];
        }
    }
    return;
  }
#endif
  for (int i = 0; i < count; ++i) out[i] = xsimd::hadd(rows[i]);
}

// ---- epilogue on one batch ----------------------------------------------------------------------

// The per-output-channel constants of the epilogue, resolved once per channel.
struct channel_epilogue {
  float bias = 0, scale = 1, shift = 0;
  bool transform = false, relu = false, statistics = false;

  static channel_epilogue make(index_t c, const float* bias, const conv_epilogue* e) {
    channel_epilogue ce;
    ce.bias = bias ? bias[c] : 0.0f;
    if (e) {
      ce.scale = e->scale ? e->scale[c] : 1.0f;
      ce.shift = e->shift ? e->shift[c] : 0.0f;
      ce.relu = e->relu;
      ce.transform = e->transforms();
      ce.statistics = e->wants_statistics();
    }
    return ce;
  }
};

// Lanes [0, count) set: which lanes of a row's last, partial batch are real outputs.
inline batch first_lanes_mask(index_t count) {
  alignas(64) static constexpr float iota[64] = {0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15,
                                                 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31,
                                                 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47,
                                                 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63};
  static_assert(batch::size <= 64, "microcount: SIMD wider than 64 floats");
  return xsimd::select(batch::load_aligned(iota) < batch(static_cast<float>(count)), batch(1.0f), batch(0.0f));
}

// Stores the first `count` lanes of v at p (all of them when count == lanes).
MICROCOUNT_INLINE void store_lanes(float* p, const batch& v, index_t count) {
  if (count == lanes) {
    v.store_unaligned(p);
    return;
  }
  alignas(64) float tmp[batch::size];
  v.store_aligned(tmp);
  for (index_t i = 0; i < count; ++i) p[i] = tmp[i];
}

// z = acc + bias; statistics of z over the `count` real lanes; y = relu?(z·scale + shift); stores y.
MICROCOUNT_INLINE void finish_batch(const batch& acc, const channel_epilogue& ce, float* out, index_t count,
                                    batch& sum, batch& sum_squares) {
  batch z = acc + batch(ce.bias);
  if (ce.statistics) {
    const batch zs = count == lanes ? z : z * first_lanes_mask(count);
    sum += zs;
    sum_squares = xsimd::fma(zs, zs, sum_squares);
  }
  if (ce.transform) {
    z = xsimd::fma(z, batch(ce.scale), batch(ce.shift));
    if (ce.relu) z = xsimd::select(z > batch(0.0f), z, batch(0.0f));  // (xsimd::max trips GCC 12 bug 105593)
  }
  store_lanes(out, z, count);
}

// Applies bias and the epilogue in place to `count` contiguous outputs of one channel (the GEMM paths,
// whose products land in memory first), accumulating statistics into sum / sum_squares.
inline void finish_span(float* y, index_t count, const channel_epilogue& ce, double& sum, double& sum_squares) {
  batch s(0.0f), q(0.0f);
  index_t i = 0;
  for (; i + lanes <= count; i += lanes) finish_batch(batch::load_unaligned(y + i), ce, y + i, lanes, s, q);
  if (i < count) {
    alignas(64) float tmp[batch::size] = {};
    for (index_t j = i; j < count; ++j) tmp[j - i] = y[j];
    finish_batch(batch::load_aligned(tmp), ce, y + i, count - i, s, q);
  }
  if (ce.statistics) {
    sum += static_cast<double>(xsimd::hadd(s));
    sum_squares += static_cast<double>(xsimd::hadd(q));
  }
}

// Per-task partial statistics, reduced in task order after the parallel loop (deterministic: the
// result does not depend on which thread ran which task, nor on the thread count).
struct statistics_partials {
  index_t channels = 0;
  std::vector<double> sum, sum_squares;  // [tasks, channels]

  statistics_partials(index_t tasks, index_t c, bool on) : channels(c) {
    if (on) {
      sum.assign(static_cast<std::size_t>(tasks * c), 0.0);
      sum_squares.assign(static_cast<std::size_t>(tasks * c), 0.0);
    }
  }
  [[nodiscard]] bool on() const { return !sum.empty(); }
  double* sum_of(index_t task) { return on() ? sum.data() + task * channels : nullptr; }
  double* squares_of(index_t task) { return on() ? sum_squares.data() + task * channels : nullptr; }
  void reduce_into(const conv_epilogue* e, index_t tasks) const {
    if (!e) return;
    for (index_t c = 0; c < channels; ++c) {
      double s = 0, q = 0;
      for (index_t t = 0; t < tasks && on(); ++t) {
        s += sum[static_cast<std::size_t>(t * channels + c)];
        q += sum_squares[static_cast<std::size_t>(t * channels + c)];
      }
      if (e->sum) e->sum[c] = s;
      if (e->sum_squares) e->sum_squares[c] = q;
    }
  }
};

}  // namespace microcount::cpu_conv_detail
