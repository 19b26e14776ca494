#pragma once
// The general convolution path: im2col / col2im per (image, chunk of output positions) + Eigen GEMM.
// Correct for every stride, padding, dilation and kernel size in 2D and 3D; fast where the "columns"
// are cheap: pointwise (1×1) convolutions read the image in place, and kernel == stride convolutions
// (2×2 stride 2, the U-Net's up-sampling) are a per-pixel GEMM plus a gather or scatter.
// Chunks keep the column matrix cache-sized (~512 KiB) and give the threads independent tasks; the
// task split depends only on the shapes, so results do not depend on the thread count.
#include <algorithm>
#include <vector>

// GCC 12's AVX-512 headers make Eigen's GEMM kernels raise a false -Wmaybe-uninitialized (GCC bug
// 105593, fixed in 12.3); GCC also honours the pragma along the inlining chain of Eigen's code.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <Eigen/Core>
#pragma GCC diagnostic pop

#include "microcount/backends/cpu/conv_common.hpp"
#include "microcount/core/parallel.hpp"

namespace microcount::cpu_conv_detail {

using row_matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using matrix_map = Eigen::Map<row_matrix, Eigen::Unaligned, Eigen::OuterStride<>>;
using const_matrix_map = Eigen::Map<const row_matrix, Eigen::Unaligned, Eigen::OuterStride<>>;

// ---- columns ----------------------------------------------------------------------------------

// For one axis: the outputs o whose input position o·stride − pad + k·dil lies in [0, in), as [lo, hi).
inline std::pair<index_t, index_t> valid_outputs(index_t out, index_t in, index_t stride, index_t pad, index_t offset) {
  // o·stride + offset − pad >= 0  and  < in
  const index_t shift = offset - pad;
  index_t lo = shift >= 0 ? 0 : ceil_div(-shift, stride);
  index_t hi = in - shift <= 0 ? 0 : ceil_div(in - shift, stride);
  lo = std::min(lo, out);
  hi = std::clamp(hi, lo, out);
  return {lo, hi};
}

// Visits the columns of output positions [p0, p1) of one image as runs of consecutive output columns of
// one output row: f(tap, column, source, count, step) where `source` is the input offset (within a
// channel) the first column reads, stepping by `step`, or −1 when the whole run reads padding.
template <class F>
void for_each_column_run(const conv_geometry& g, index_t p0, index_t p1, F&& f) {
  const index_t oh = g.out[1], ow = g.out[2];
  index_t tap = 0;
  for (index_t kd = 0; kd < g.k[0]; ++kd)
    for (index_t kh = 0; kh < g.k[1]; ++kh)
      for (index_t kw = 0; kw < g.k[2]; ++kw, ++tap) {
        const auto [w_lo, w_hi] = valid_outputs(ow, g.in[2], g.stride[2], g.pad[2], kw * g.dil[2]);
        for (index_t p = p0; p < p1;) {
          const index_t row = p / ow, o_w = p % ow;
          const index_t end = std::min(p1, p - o_w + ow);  // end of this output row within the chunk
          const index_t o_d = row / oh, o_h = row % oh;
          const index_t id = o_d * g.stride[0] - g.pad[0] + kd * g.dil[0];
          const index_t ih = o_h * g.stride[1] - g.pad[1] + kh * g.dil[1];
          const index_t a = o_w, b = o_w + (end - p);  // output columns [a, b)
          if (id < 0 || id >= g.in[0] || ih < 0 || ih >= g.in[1]) {
            f(tap, p - p0, index_t{-1}, b - a, index_t{0});
          } else {
            const index_t lo = std::clamp(w_lo, a, b), hi = std::clamp(w_hi, lo, b);
            const index_t row_start = (id * g.in[1] + ih) * g.in[2];
            if (lo > a) f(tap, p - p0, index_t{-1}, lo - a, index_t{0});
            if (hi > lo)
              f(tap, p - p0 + (lo - a), row_start + lo * g.stride[2] - g.pad[2] + kw * g.dil[2], hi - lo, g.stride[2]);
            if (b > hi) f(tap, p - p0 + (hi - a), index_t{-1}, b - hi, index_t{0});
          }
          p = end;
        }
      }
}

// Kernel == stride, no padding, exact cover (2×2 stride 2): every input row segment splits into KW
// interleaved column rows. Visits f(channel, (kd, kh) index, column, input offset of the segment, count)
// per output row segment of [p0, p1); the segment's input is KW·count contiguous floats.
template <class F>
void for_each_tile_segment(const conv_geometry& g, index_t p0, index_t p1, F&& f) {
  const index_t oh = g.out[1], ow = g.out[2];
  for (index_t c = 0; c < g.ic; ++c)
    for (index_t kd = 0; kd < g.k[0]; ++kd)
      for (index_t kh = 0; kh < g.k[1]; ++kh)
        for (index_t p = p0; p < p1;) {
          const index_t row = p / ow, o_w = p % ow;
          const index_t end = std::min(p1, p - o_w + ow);
          const index_t id = (row / oh) * g.k[0] + kd, ih = (row % oh) * g.k[1] + kh;
          f(c, kd * g.k[1] + kh, p - p0, c * g.in_size() + (id * g.in[1] + ih) * g.in[2] + o_w * g.k[2], end - p);
          p = end;
        }
}

// im2col for an exactly tiled geometry: deinterleaves contiguous input segments (vectorisable).
inline void gather_tiles(const conv_geometry& g, const float* x_img, index_t p0, index_t p1, float* col, index_t ld) {
  const index_t kw = g.k[2], taps = g.taps();
  for_each_tile_segment(g, p0, p1, [&](index_t c, index_t row_tap, index_t j, index_t source, index_t count) {
    const float* s = x_img + source;
    float* d = col + (c * taps + row_tap * kw) * ld + j;
    if (kw == 2) {
      float* d1 = d + ld;
      for (index_t i = 0; i < count; ++i) {
        d[i] = s[2 * i];
        d1[i] = s[2 * i + 1];
      }
    } else {
      for (index_t t = 0; t < kw; ++t)
        for (index_t i = 0; i < count; ++i) d[t * ld + i] = s[i * kw + t];
    }
  });
}

// col2im for an exactly tiled geometry: interleaves the column rows into contiguous input segments,
// adding bias[channel] when given.
inline void scatter_tiles(const conv_geometry& g, const float* col, index_t ld, index_t p0, index_t p1, float* dx_img,
                          const float* bias) {
  const index_t kw = g.k[2], taps = g.taps();
  for_each_tile_segment(g, p0, p1, [&](index_t c, index_t row_tap, index_t j, index_t source, index_t count) {
    float* d = dx_img + source;
    const float* s = col + (c * taps + row_tap * kw) * ld + j;
    const float b = bias ? bias[c] : 0.0f;
    if (kw == 2) {
      const float* s1 = s + ld;
      for (index_t i = 0; i < count; ++i) {
        d[2 * i] = s[i] + b;
        d[2 * i + 1] = s1[i] + b;
      }
    } else {
      for (index_t t = 0; t < kw; ++t)
        for (index_t i = 0; i < count; ++i) d[i * kw + t] = s[t * ld + i] + b;
    }
  });
}

// col [IC·taps][ld]: column j holds the input patch of output position p0 + j (zeros for padding).
inline void im2col(const conv_geometry& g, const float* x_img, index_t p0, index_t p1, float* col, index_t ld) {
  if (g.tiles_input_exactly()) {
    gather_tiles(g, x_img, p0, p1, col, ld);
    return;
  }
  const index_t taps = g.taps();
  for (index_t c = 0; c < g.ic; ++c) {
    const float* src = x_img + c * g.in_size();
    float* base = col + c * taps * ld;
    for_each_column_run(g, p0, p1, [&](index_t tap, index_t j, index_t source, index_t count, index_t step) {
      float* dst = base + tap * ld + j;
      if (source < 0) {
        std::fill(dst, dst + count, 0.0f);
        return;
      }
      const float* s = src + source;
      if (step == 1) {
        std::memcpy(dst, s, sizeof(float) * static_cast<std::size_t>(count));
      } else {
        for (index_t i = 0; i < count; ++i) dst[i] = s[i * step];
      }
    });
  }
}

// dx_img [IC, in...] += col.
inline void col2im(const conv_geometry& g, const float* col, index_t ld, index_t p0, index_t p1, float* dx_img) {
  const index_t taps = g.taps();
  for (index_t c = 0; c < g.ic; ++c) {
    float* dst = dx_img + c * g.in_size();
    const float* base = col + c * taps * ld;
    for_each_column_run(g, p0, p1, [&](index_t tap, index_t j, index_t source, index_t count, index_t step) {
      if (source < 0) return;
      const float* s = base + tap * ld + j;
      float* d = dst + source;
      for (index_t i = 0; i < count; ++i) d[i * step] += s[i];
    });
  }
}

// Output positions per chunk: the [IC·taps × chunk] column block stays around 512 KiB, and a small batch
// still makes at least 4 tasks when there are enough positions.
inline index_t gemm_chunk(const conv_geometry& g) {
  const index_t budget = (512 * 1024) / static_cast<index_t>(sizeof(float));
  index_t chunk = round_up(std::max<index_t>(lanes, budget / std::max<index_t>(1, g.ic * g.taps())), lanes);
  if (g.n < 4) chunk = std::min(chunk, round_up(ceil_div(g.out_size(), ceil_div(4, std::max<index_t>(g.n, 1))), lanes));
  return std::min(chunk, std::max<index_t>(g.out_size(), 1));
}

// parallel_for over GEMM tasks. A single task still runs inside a parallel region, so Eigen never starts
// threads of its own: its split of one product depends on the thread count, and so would the bits.
template <class F>
void parallel_gemm_tasks(index_t tasks, F&& f) {
  if (tasks == 1) {
    parallel_for(0, 2, [&](std::int64_t t) {
      if (t == 0) f(std::int64_t{0});
    });
    return;
  }
  parallel_for(0, tasks, f);
}

// ---- forward ----------------------------------------------------------------------------------

// y = conv(x, w) + bias with the epilogue. w [OC, IC·taps] row-major.
inline void gemm_forward(const conv_geometry& g, const float* x, const float* w, const float* bias,
                         const conv_epilogue* epi, float* y) {
  const index_t k = g.ic * g.taps(), out = g.out_size();
  const index_t chunk = gemm_chunk(g), chunks = ceil_div(out, chunk), tasks = g.n * chunks;
  const bool stats = epi && epi->wants_statistics();
  const bool finish = bias || (epi && (epi->transforms() || stats));
  statistics_partials partials(tasks, g.oc, stats);
  const const_matrix_map W(w, g.oc, k, Eigen::OuterStride<>(k));  // [OC, IC·taps]
  parallel_gemm_tasks(tasks, [&](std::int64_t t) {
    const index_t n = t / chunks, p0 = (t % chunks) * chunk, p1 = std::min(out, p0 + chunk), count = p1 - p0;
    const float* x_img = x + n * g.ic * g.in_size();
    float* y_img = y + n * g.oc * out;
    matrix_map Y(y_img + p0, g.oc, count, Eigen::OuterStride<>(out));  // [OC, count]
    if (g.pointwise()) {
      Y.noalias() = W * const_matrix_map(x_img + p0, g.ic, count, Eigen::OuterStride<>(g.in_size()));
    } else {
      float* col = thread_scratch(task_slot, k * count);  // [IC·taps, count]
      im2col(g, x_img, p0, p1, col, count);
      Y.noalias() = W * const_matrix_map(col, k, count, Eigen::OuterStride<>(count));
    }
    if (finish) {
      double* s = partials.sum_of(t);
      double* q = partials.squares_of(t);
      for (index_t o = 0; o < g.oc; ++o) {
        double ds = 0, dq = 0;
        finish_span(y_img + o * out + p0, count, channel_epilogue::make(o, bias, epi), ds, dq);
        if (s) {
          s[o] += ds;
          q[o] += dq;
        }
      }
    }
  });
  if (stats) partials.reduce_into(epi, tasks);
}

// ---- backward data ----------------------------------------------------------------------------

// dx = conv^T(dy, w) (+ bias per input channel: conv_transpose's bias), overwriting dx.
inline void gemm_backward_data(const conv_geometry& g, const float* dy, const float* w, const float* bias, float* dx) {
  const index_t k = g.ic * g.taps(), out = g.out_size(), in = g.in_size();
  const index_t chunk = gemm_chunk(g), chunks = ceil_div(out, chunk);
  const const_matrix_map W(w, g.oc, k, Eigen::OuterStride<>(k));  // [OC, IC·taps]
  auto add_bias = [&](float* img, index_t p0, index_t count) {
    if (!bias) return;
    for (index_t c = 0; c < g.ic; ++c) {
      float* d = img + c * in + p0;
      for (index_t i = 0; i < count; ++i) d[i] += bias[c];
    }
  };
  if (g.pointwise() || g.tiles_input_exactly()) {
    // Chunks write disjoint input positions: (image, chunk) tasks, plain stores.
    parallel_gemm_tasks(g.n * chunks, [&](std::int64_t t) {
      const index_t n = t / chunks, p0 = (t % chunks) * chunk, p1 = std::min(out, p0 + chunk), count = p1 - p0;
      const const_matrix_map DY(dy + n * g.oc * out + p0, g.oc, count, Eigen::OuterStride<>(out));  // [OC, count]
      float* dx_img = dx + n * g.ic * in;
      if (g.pointwise() && g.oc <= 4) {
        // A GEMM of depth ≤ 4 (the 1-channel head's input gradient) is a few scaled copies: stream them.
        const float* dy_img = dy + n * g.oc * out + p0;
        for (index_t c = 0; c < g.ic; ++c) {
          float* d = dx_img + c * in + p0;
          const float b = bias ? bias[c] : 0.0f;
          index_t i = 0;
          for (; i + lanes <= count; i += lanes) {
            batch acc(b);
            for (index_t o = 0; o < g.oc; ++o)
              acc = xsimd::fma(batch(w[o * k + c]), batch::load_unaligned(dy_img + o * out + i), acc);
            acc.store_unaligned(d + i);
          }
          for (; i < count; ++i) {
            float acc = b;
            for (index_t o = 0; o < g.oc; ++o) acc += w[o * k + c] * dy_img[o * out + i];
            d[i] = acc;
          }
        }
        return;
      }
      if (g.pointwise()) {
        matrix_map DX(dx_img + p0, g.ic, count, Eigen::OuterStride<>(in));
        DX.noalias() = W.transpose() * DY;
        add_bias(dx_img, p0, count);
        return;
      }
      float* col = thread_scratch(task_slot, k * count);
      matrix_map C(col, k, count, Eigen::OuterStride<>(count));
      C.noalias() = W.transpose() * DY;
      scatter_tiles(g, col, count, p0, p1, dx_img, bias);
    });
    return;
  }
  // Overlapping or partial cover: one task per image accumulates its chunks in order.
  parallel_gemm_tasks(g.n, [&](std::int64_t n) {
    float* dx_img = dx + n * g.ic * in;
    std::fill(dx_img, dx_img + g.ic * in, 0.0f);
    float* col = thread_scratch(task_slot, k * chunk);
    for (index_t p0 = 0; p0 < out; p0 += chunk) {
      const index_t p1 = std::min(out, p0 + chunk), count = p1 - p0;
      const const_matrix_map DY(dy + n * g.oc * out + p0, g.oc, count, Eigen::OuterStride<>(out));
      matrix_map C(col, k, count, Eigen::OuterStride<>(count));
      C.noalias() = W.transpose() * DY;
      col2im(g, col, count, p0, p1, dx_img);
    }
    add_bias(dx_img, 0, in);
  });
}

// ---- backward weights -------------------------------------------------------------------------

// dw = Σ_images dY · columnsᵀ, overwriting dw [OC, IC·taps]. The work units are (image, chunk) in order;
// at most 16 tasks take contiguous runs of them, each with its own partial, summed in task order.
inline void gemm_backward_weights(const conv_geometry& g, const float* x, const float* dy, float* dw) {
  const index_t k = g.ic * g.taps(), out = g.out_size();
  const index_t chunk = gemm_chunk(g), chunks = ceil_div(out, chunk);
  const index_t units = g.n * chunks, tasks = std::min<index_t>(units, 16), size = g.oc * k;
  float* partial = thread_scratch(shared_slot, tasks * size);  // [tasks, OC, IC·taps], reused across calls
  parallel_gemm_tasks(tasks, [&](std::int64_t t) {
    std::fill(partial + t * size, partial + (t + 1) * size, 0.0f);
    matrix_map P(partial + t * size, g.oc, k, Eigen::OuterStride<>(k));
    for (index_t unit = t * units / tasks; unit < (t + 1) * units / tasks; ++unit) {
      const index_t n = unit / chunks, c = unit % chunks;
      const float* x_img = x + n * g.ic * g.in_size();
      const index_t p0 = c * chunk, p1 = std::min(out, p0 + chunk), count = p1 - p0;
      const const_matrix_map DY(dy + n * g.oc * out + p0, g.oc, count, Eigen::OuterStride<>(out));
      if (g.pointwise()) {
        P.noalias() += DY * const_matrix_map(x_img + p0, g.ic, count, Eigen::OuterStride<>(g.in_size())).transpose();
      } else {
        float* col = thread_scratch(task_slot, k * count);
        im2col(g, x_img, p0, p1, col, count);
        P.noalias() += DY * const_matrix_map(col, k, count, Eigen::OuterStride<>(count)).transpose();
      }
    }
  });
  for (index_t i = 0; i < size; ++i) {
    double s = 0.0;
    for (index_t t = 0; t < tasks; ++t) s += static_cast<double>(partial[t * size + i]);
    dw[i] = static_cast<float>(s);
  }
}

// s[c] = Σ over batch and space of v [N, C, spatial...] (the bias gradient).
inline void channel_sums(const float* v, index_t n, index_t channels, index_t spatial, float* s) {
  parallel_for(0, channels, [&](std::int64_t c) {
    double total = 0;
    for (index_t i = 0; i < n; ++i) {
      const float* p = v + (i * channels + c) * spatial;
      batch acc(0.0f);
      index_t j = 0;
      for (; j + lanes <= spatial; j += lanes) acc += batch::load_unaligned(p + j);
      float tail = 0.0f;
      for (; j < spatial; ++j) tail += p[j];
      total += static_cast<double>(xsimd::hadd(acc)) + static_cast<double>(tail);
    }
    s[c] = static_cast<float>(total);
  });
}

}  // namespace microcount::cpu_conv_detail
