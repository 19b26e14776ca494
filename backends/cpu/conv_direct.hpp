#pragma once
// Direct (register-tiled) convolution for unit stride, any kernel size, padding and dilation, 2D or 3D.
//
// Forward (and, with flipped and transposed weights, backward-data):
//   Work is split into bands = (image, output plane, a range of output rows). A band's input region,
//   all input channels, is copied once into a zero-padded scratch buffer (channels interleaved by row)
//   whose rows are a whole number of SIMD batches wide, so the inner loop has no border branches. Each band's outputs are the
//   "batch index space" rows × ceil(OW / lanes); a register tile is OCB output channels × V consecutive
//   batches of that space (possibly spanning rows): OCB·V accumulators, V input loads and OCB weight
//   broadcasts per (input channel, tap). Weights are packed [block][IC][taps][OCB] so those broadcasts
//   are adjacent in memory.
// Backward-weights (kernels with 3 columns, unit column dilation, 3 or 9 row taps):
//   tasks are runs of (image·plane, band) units; for each band, block of output channels and input channel,
//   dY[oc block] × shifted X[ic] is accumulated over the band into OCB × taps batch accumulators,
//   reduced horizontally and added to the task's own partial dW. Partials are summed in task order (in
//   double) after the one parallel loop: no barriers inside, and the same bits for any thread count.
#include <algorithm>
#include <concepts>
#include <vector>

#include "microcount/backends/cpu/conv_common.hpp"
#include "microcount/core/parallel.hpp"

namespace microcount::cpu_conv_detail {

// ---- weight packing ---------------------------------------------------------------------------

// Where packed weights come from: weight_at(output channel, input channel, tap) -> float.
template <class F>
concept weight_source = std::invocable<const F&, index_t, index_t, index_t> &&
                        std::convertible_to<std::invoke_result_t<const F&, index_t, index_t, index_t>, float>;

// dst [blocks][IC][taps][ocb] = weight_at(block·ocb + o, ic, tap), 0 past OC.
template <class WeightAt>
void pack_weights(float* dst, index_t oc, index_t ic, index_t taps, index_t ocb, WeightAt weight_at) {
  static_assert(weight_source<WeightAt>, "microcount: weight_at must be callable as (oc, ic, tap) -> float");
  const index_t blocks = ceil_div(oc, ocb);
  for (index_t b = 0; b < blocks; ++b)
    for (index_t c = 0; c < ic; ++c)
      for (index_t t = 0; t < taps; ++t)
        for (index_t o = 0; o < ocb; ++o) {
          const index_t out = b * ocb + o;
          *dst++ = out < oc ? static_cast<float>(weight_at(out, c, t)) : 0.0f;
        }
}

// ---- forward ----------------------------------------------------------------------------------

struct direct_forward_problem {
  conv_geometry g;                   // unit stride
  const float* x = nullptr;          // [N, IC, in...]
  const float* packed = nullptr;     // [blocks][IC][taps][ocb]
  const float* bias = nullptr;       // [OC] or null
  const conv_epilogue* epi = nullptr;
  float* y = nullptr;                // [N, OC, out...]
};

// The band's zero-padded input region, channels interleaved by row: [planes_in][rows_in][IC][pitch], so
// stepping from one input channel to the next is a short constant stride the prefetchers follow.
struct band_layout {
  index_t rows_out = 0, rows_in = 0, planes_in = 0, pitch = 0, batches_per_row = 0;
  index_t channel = 0, row = 0, plane = 0, size = 0;  // strides in floats, and the whole region
  std::vector<index_t> row_offsets;     // [KD·KH] offset of tap row (kd, kh)
  std::vector<index_t> column_offsets;  // [KW]

  band_layout(const conv_geometry& g, index_t rows) {
    rows_out = rows;
    batches_per_row = ceil_div(g.out[2], lanes);
    rows_in = rows + (g.k[1] - 1) * g.dil[1];
    planes_in = (g.k[0] - 1) * g.dil[0] + 1;
    pitch = round_up(batches_per_row * lanes + (g.k[2] - 1) * g.dil[2], lanes);
    channel = pitch;
    row = g.ic * pitch;
    plane = rows_in * row;
    size = planes_in * plane;
    for (index_t kd = 0; kd < g.k[0]; ++kd)
      for (index_t kh = 0; kh < g.k[1]; ++kh) row_offsets.push_back(kd * g.dil[0] * plane + kh * g.dil[1] * row);
    for (index_t kw = 0; kw < g.k[2]; ++kw) column_offsets.push_back(kw * g.dil[2]);
  }
  // Copies input channel c of image `image` [IC, in...] for the band starting at output (od, oh0).
  void copy_channel(const conv_geometry& g, const float* image, index_t c, index_t od, index_t oh0, float* dst) const {
    copy_padded(image + c * g.in_size(), g.in, od - g.pad[0], planes_in, oh0 - g.pad[1], rows_in, -g.pad[2], pitch,
                dst + c * channel, row, plane);
  }
};

// acc[o][v] += w[o] · in[v][offset] for one input tap.
template <int OCB, int V>
MICROCOUNT_INLINE void fma_tap(batch (&acc)[OCB][V], const float* const (&in)[V], index_t offset, const float* w) {
  batch xv[V];
  for (int v = 0; v < V; ++v) xv[v] = batch::load_unaligned(in[v] + offset);
  for (int o = 0; o < OCB; ++o) {
    const batch wv(w[o]);
    for (int v = 0; v < V; ++v) acc[o][v] = xsimd::fma(wv, xv[v], acc[o][v]);
  }
}

// acc[o][v] += Σ_c Σ_taps w[c][tap][o] · in[v][c·channel + offset(tap)].
// KW > 0: that many column taps at offsets 0, 1, ... (unit dilation), known at compile time.
template <int OCB, int V, int KW>
MICROCOUNT_INLINE void accumulate_tile(batch (&acc)[OCB][V], const float* const (&in)[V], index_t channels,
                                       index_t channel, const band_layout& L, const float* w) {
  static_assert(OCB >= 1 && V >= 1 && OCB * V + V + 1 <= simd_registers, "microcount: register tile exceeds the SIMD registers");
  const index_t row_taps = static_cast<index_t>(L.row_offsets.size());
  const index_t col_taps = KW > 0 ? KW : static_cast<index_t>(L.column_offsets.size());
  const index_t* row_off = L.row_offsets.data();
  const index_t* col_off = L.column_offsets.data();
  for (index_t c = 0; c < channels; ++c) {
    for (index_t r = 0; r < row_taps; ++r) {
      const index_t base = c * channel + row_off[r];
      if constexpr (KW > 0) {
        for (int kw = 0; kw < KW; ++kw) fma_tap<OCB, V>(acc, in, base + kw, w + kw * OCB);
      } else {
        for (index_t kw = 0; kw < col_taps; ++kw) fma_tap<OCB, V>(acc, in, base + col_off[kw], w + kw * OCB);
      }
      w += col_taps * OCB;
    }
  }
}

// One band: outputs of image n, plane od, rows [oh0, oh1), all output channels.
template <int OCB, int V, int KW>
void direct_forward_band(const direct_forward_problem& pr, index_t n, index_t od, index_t oh0, index_t oh1,
                         double* sum, double* sum_squares) {
  const conv_geometry& g = pr.g;
  const band_layout L(g, oh1 - oh0);
  const index_t taps = g.taps();

  float* xs = thread_scratch(task_slot, L.size);  // [planes_in][rows_in][IC][pitch]
  for (index_t c = 0; c < g.ic; ++c) L.copy_channel(g, pr.x + n * g.ic * g.in_size(), c, od, oh0, xs);

  const index_t ow = g.out[2], per_row = L.batches_per_row;
  const index_t batches = L.rows_out * per_row;
  const index_t blocks = ceil_div(g.oc, OCB);
  for (index_t b = 0; b < blocks; ++b) {
    const float* wb = pr.packed + b * g.ic * taps * OCB;
    const index_t valid = std::min<index_t>(OCB, g.oc - b * OCB);
    channel_epilogue ce[OCB];
    float* yc[OCB];
    for (index_t o = 0; o < valid; ++o) {
      const index_t oc = b * OCB + o;
      ce[o] = channel_epilogue::make(oc, pr.bias, pr.epi);
      yc[o] = pr.y + ((n * g.oc + oc) * g.out[0] + od) * g.out[1] * g.out[2] + oh0 * ow;
    }
    batch stat_sum[OCB], stat_squares[OCB];
    for (int o = 0; o < OCB; ++o) stat_sum[o] = stat_squares[o] = batch(0.0f);

    for (index_t v0 = 0; v0 < batches; v0 += V) {
      const float* in[V];
      index_t out_offset[V], count[V];
      for (int v = 0; v < V; ++v) {
        const index_t i = v0 + v;
        if (i < batches) {
          const index_t q = i / per_row, col = (i % per_row) * lanes;
          in[v] = xs + q * L.row + col;
          out_offset[v] = q * ow + col;
          count[v] = std::min(lanes, ow - col);
        } else {  // past the band: recompute batch 0 and drop it
          in[v] = in[0];
          out_offset[v] = 0;
          count[v] = 0;
        }
      }
      batch acc[OCB][V];
      for (int o = 0; o < OCB; ++o)
        for (int v = 0; v < V; ++v) acc[o][v] = batch(0.0f);
      accumulate_tile<OCB, V, KW>(acc, in, g.ic, L.channel, L, wb);
      for (index_t o = 0; o < valid; ++o)
        for (int v = 0; v < V; ++v)
          if (count[v] > 0) finish_batch(acc[o][v], ce[o], yc[o] + out_offset[v], count[v], stat_sum[o], stat_squares[o]);
    }
    if (sum)
      for (index_t o = 0; o < valid; ++o) {
        sum[b * OCB + o] += static_cast<double>(xsimd::hadd(stat_sum[o]));
        sum_squares[b * OCB + o] += static_cast<double>(xsimd::hadd(stat_squares[o]));
      }
  }
}

// Output rows per band: the padded input region of all channels stays within ~512 KiB (L2-resident while
// every output-channel block sweeps it), and there are at least 8 bands when the batch is small.
inline index_t forward_band_rows(const conv_geometry& g) {
  const band_layout one(g, 1);
  const index_t budget = (512 * 1024) / static_cast<index_t>(sizeof(float));
  const index_t per_row = std::max<index_t>(1, g.ic * one.planes_in * one.pitch);
  index_t rows = std::max<index_t>(1, budget / per_row - (g.k[1] - 1) * g.dil[1]);
  const index_t images = g.n * g.out[0];
  if (images < 8) rows = std::min(rows, ceil_div(g.out[1], ceil_div(8, std::max<index_t>(images, 1))));
  return std::clamp<index_t>(rows, 1, std::max<index_t>(g.out[1], 1));
}

template <int OCB, int V, int KW>
void direct_forward_run(const direct_forward_problem& pr) {
  const conv_geometry& g = pr.g;
  const index_t rows = forward_band_rows(g);
  const index_t bands_per_plane = ceil_div(g.out[1], rows);
  const index_t tasks = g.n * g.out[0] * bands_per_plane;
  const bool stats = pr.epi && pr.epi->wants_statistics();
  statistics_partials partials(tasks, g.oc, stats);
  parallel_for(0, tasks, [&](std::int64_t t) {
    const index_t band = t % bands_per_plane, plane = t / bands_per_plane;
    const index_t n = plane / g.out[0], od = plane % g.out[0];
    const index_t oh0 = band * rows, oh1 = std::min(g.out[1], oh0 + rows);
    direct_forward_band<OCB, V, KW>(pr, n, od, oh0, oh1, partials.sum_of(t), partials.squares_of(t));
  });
  if (stats) partials.reduce_into(pr.epi, tasks);
}

// Output channels per register block, by how many there are: with 32 registers 8 channels × 3 batches
// for wide layers, narrower blocks with more batches when there are few (a 1-channel output must not
// pay for 8); with 16 registers (AVX2) 4 × 3, 2 × 4, 1 × 6.
inline index_t direct_block_channels(index_t oc) {
  if constexpr (simd_registers >= 32) return oc >= 5 ? 8 : oc >= 3 ? 4 : oc == 2 ? 2 : 1;
  return oc >= 3 ? 4 : oc == 2 ? 2 : 1;
}

template <int KW>
void direct_forward_dispatch_kw(const direct_forward_problem& pr, index_t ocb) {
  if constexpr (simd_registers >= 32) {
    switch (ocb) {
      case 8: direct_forward_run<8, 3, KW>(pr); break;
      case 4: direct_forward_run<4, 6, KW>(pr); break;
      case 2: direct_forward_run<2, 8, KW>(pr); break;
      default: direct_forward_run<1, 8, KW>(pr); break;
    }
  } else {
    switch (ocb) {
      case 4: direct_forward_run<4, 3, KW>(pr); break;
      case 2: direct_forward_run<2, 4, KW>(pr); break;
      default: direct_forward_run<1, 6, KW>(pr); break;
    }
  }
}

// y = conv(x, w') + bias with the epilogue, unit stride; w'(o, i, tap) = weight_at(o, i, tap).
template <class WeightAt>
void direct_forward(const conv_geometry& g, const float* x, WeightAt weight_at, const float* bias,
                    const conv_epilogue* epi, float* y) {
  static_assert(weight_source<WeightAt>, "microcount: weight_at must be callable as (oc, ic, tap) -> float");
  const index_t ocb = direct_block_channels(g.oc);
  const index_t taps = g.taps();
  float* packed = thread_scratch(shared_slot, ceil_div(g.oc, ocb) * ocb * g.ic * taps);
  pack_weights(packed, g.oc, g.ic, taps, ocb, weight_at);
  direct_forward_problem pr{g, x, packed, bias, epi, y};
  if (g.k[2] == 3 && g.dil[2] == 1)
    direct_forward_dispatch_kw<3>(pr, ocb);
  else
    direct_forward_dispatch_kw<0>(pr, ocb);
}

// ---- backward weights -------------------------------------------------------------------------

// acc[o][rt·3 + kw] += Σ over the band of dy[o] · x shifted by (row tap rt, column kw), then added to
// dw[o][tap]. xs: one input channel's padded band; dy: OCB channels' band, zero past OW.
template <int OCB, int RT>
void accumulate_weight_block(const float* xs, const band_layout& L, const float* dy, index_t dy_channel,
                             index_t dy_pitch, float* dw, index_t dw_channel) {
  constexpr int taps = RT * 3;
  static_assert(OCB >= 1 && OCB * taps + OCB + 1 <= simd_registers, "microcount: weight accumulators exceed the SIMD registers");
  batch acc[OCB][taps];
  for (int o = 0; o < OCB; ++o)
    for (int t = 0; t < taps; ++t) acc[o][t] = batch(0.0f);
  index_t row_off[RT];
  for (int r = 0; r < RT; ++r) row_off[r] = L.row_offsets[static_cast<std::size_t>(r)];
  for (index_t q = 0; q < L.rows_out; ++q) {
    const float* xq = xs + q * L.row;
    const float* dq = dy + q * dy_pitch;
    for (index_t col = 0; col < L.batches_per_row * lanes; col += lanes) {
      batch d[OCB];
      for (int o = 0; o < OCB; ++o) d[o] = batch::load_unaligned(dq + o * dy_channel + col);
      for (int r = 0; r < RT; ++r) {
        const float* xr = xq + col + row_off[r];
        for (int kw = 0; kw < 3; ++kw) {
          const batch xv = batch::load_unaligned(xr + kw);
          for (int o = 0; o < OCB; ++o) acc[o][r * 3 + kw] = xsimd::fma(d[o], xv, acc[o][r * 3 + kw]);
        }
      }
    }
  }
  constexpr int count = OCB * taps;
  batch rows[count];
  for (int o = 0; o < OCB; ++o)
    for (int t = 0; t < taps; ++t) rows[o * taps + t] = acc[o][t];
  float sums[count];
  horizontal_sums(rows, count, sums);
  for (int o = 0; o < OCB; ++o)
    for (int t = 0; t < taps; ++t) dw[o * dw_channel + t] += sums[o * taps + t];
}

// Whether the direct backward-weights path covers g: unit stride, 3 kernel columns without dilation,
// 3 or 9 (kd, kh) row taps (3×3, 1×3×3, 3×3×3; 27 accumulators need AVX-512's 32 registers).
inline bool direct_weights_supported(const conv_geometry& g) {
  const index_t row_taps = g.k[0] * g.k[1];
  return g.unit_stride() && g.k[2] == 3 && g.dil[2] == 1 && (row_taps == 3 || (row_taps == 9 && simd_registers >= 32));
}

template <int RT>
void direct_backward_weights_rt(const conv_geometry& g, const float* x, const float* dy, float* dw) {
  constexpr index_t max_block = RT == 3 && simd_registers >= 32 ? 3 : 1;  // OCB·taps accumulators fit the registers
  const index_t taps = g.taps(), size = g.oc * g.ic * taps;

  // Output-channel blocks of near-equal size (16 -> 3,3,3,3,2,2).
  const index_t nblocks = ceil_div(g.oc, max_block);
  std::vector<index_t> block_start(static_cast<std::size_t>(nblocks + 1));
  for (index_t b = 0; b <= nblocks; ++b) block_start[static_cast<std::size_t>(b)] = b * g.oc / nblocks;

  // Bands of output rows whose dY (all output channels) and padded X (all input channels) stay within
  // ~1.5 MiB of L2: each block of output channels keeps its dY in L1 while it sweeps every input
  // channel's X from L2; at least 8 bands in all when the batch is small.
  const index_t ow = g.out[2], per_row = ceil_div(ow, lanes);
  const bool copy_dy = ow % lanes != 0;  // tail lanes must read zeros
  const band_layout one_row(g, 1);
  const index_t x_per_row = g.ic * one_row.planes_in * one_row.pitch;
  const index_t budget = (1536 * 1024) / static_cast<index_t>(sizeof(float)) - x_per_row * (g.k[1] - 1) * g.dil[1];
  const index_t planes = g.n * g.out[0];
  index_t rows = std::clamp<index_t>(budget / std::max<index_t>(1, g.oc * per_row * lanes + x_per_row), 1, g.out[1]);
  if (planes < 8) rows = std::min(rows, ceil_div(g.out[1], ceil_div(8, planes)));
  const index_t bands = ceil_div(g.out[1], rows);
  // Work units (plane, band) in order; at most 16 tasks take contiguous runs of them, which bounds the
  // partials' memory (16 · OC · IC · taps floats) however many images and planes there are.
  const index_t units = planes * bands;
  const index_t tasks = std::min<index_t>(units, 16);
  float* partial = thread_scratch(shared_slot, tasks * size);  // [tasks][OC][IC][taps], reused across calls

  parallel_for(0, tasks, [&](std::int64_t t) {
    float* acc = partial + t * size;
    std::fill(acc, acc + size, 0.0f);
    for (index_t unit = t * units / tasks; unit < (t + 1) * units / tasks; ++unit) {
      const index_t plane = unit / bands, band = unit % bands;
      const index_t n = plane / g.out[0], od = plane % g.out[0];
      const index_t oh0 = band * rows, oh1 = std::min(g.out[1], oh0 + rows);
      const band_layout L(g, oh1 - oh0);
      const float* dy_band = dy + ((n * g.oc) * g.out[0] + od) * g.out[1] * ow + oh0 * ow;
      index_t dy_channel = g.out_size(), dy_pitch = ow;
      if (copy_dy) {
        dy_pitch = per_row * lanes;
        dy_channel = L.rows_out * dy_pitch;
        float* copy = thread_scratch(task_slot2, g.oc * dy_channel);
        const std::array<index_t, 3> rows_of_channel{1, L.rows_out, ow};
        for (index_t o = 0; o < g.oc; ++o)
          copy_padded(dy_band + o * g.out_size(), rows_of_channel, 0, 1, 0, L.rows_out, 0, dy_pitch, copy + o * dy_channel,
                      dy_pitch, dy_channel);
        dy_band = copy;
      }
      float* xs = thread_scratch(task_slot, L.size);  // [planes_in][rows_in][IC][pitch]
      for (index_t c = 0; c < g.ic; ++c) L.copy_channel(g, x + n * g.ic * g.in_size(), c, od, oh0, xs);
      for (index_t b = 0; b < nblocks; ++b) {
        const index_t o0 = block_start[static_cast<std::size_t>(b)];
        const index_t count = block_start[static_cast<std::size_t>(b + 1)] - o0;
        const float* d = dy_band + o0 * dy_channel;
        for (index_t c = 0; c < g.ic; ++c) {
          const float* xc = xs + c * L.channel;
          float* w = acc + (o0 * g.ic + c) * taps;
          const index_t wc = g.ic * taps;
          if constexpr (max_block == 3) {
            if (count == 3) accumulate_weight_block<3, RT>(xc, L, d, dy_channel, dy_pitch, w, wc);
            else if (count == 2) accumulate_weight_block<2, RT>(xc, L, d, dy_channel, dy_pitch, w, wc);
            else accumulate_weight_block<1, RT>(xc, L, d, dy_channel, dy_pitch, w, wc);
          } else {
            accumulate_weight_block<1, RT>(xc, L, d, dy_channel, dy_pitch, w, wc);
          }
        }
      }
    }
  });
  // Partials summed in task order: the same bits for any thread count.
  parallel_for(0, ceil_div(size, 4096), [&](std::int64_t chunk) {
    for (index_t i = chunk * 4096; i < std::min(size, (chunk + 1) * 4096); ++i) {
      double s = 0;
      for (index_t t = 0; t < tasks; ++t) s += static_cast<double>(partial[t * size + i]);
      dw[i] = static_cast<float>(s);
    }
  });
}

inline void direct_backward_weights(const conv_geometry& g, const float* x, const float* dy, float* dw) {
  if constexpr (simd_registers >= 32) {
    if (g.k[0] * g.k[1] == 9) {
      direct_backward_weights_rt<9>(g, x, dy, dw);
      return;
    }
  }
  direct_backward_weights_rt<3>(g, x, dy, dw);
}

}  // namespace microcount::cpu_conv_detail
