#pragma once
// Concatenation, add, dropout, linear and the losses' per-channel sum on backend::cuda.
//   concat      one thread per output (forward) / per dy element (backward): pure copies, exact
//   add         the reference's elementwise bodies through the cuda for_each launcher
//   dropout     one thread per element evaluates the same counter-based hash (ops::dropout::kept) as the
//               reference: the mask is equal bit for bit; apply is the shared elementwise body
//   linear      one 16×16 shared-memory tiled GEMM for all three products (strided operands), summing
//               k in ascending order in double like the reference; dbias is a column sum per output
//   channel_sum the two-level deterministic sum of ops_support.cuh; the per-block partials are
//               downloaded and added on the host in index order (the result is host memory)
#include <cstdint>
#include <tuple>
#include <type_traits>
#include <vector>

#include "microcount/backends/cuda/launch.cuh"
#include "microcount/backends/cuda/ops_support.cuh"
#include "microcount/backends/reference/loss.hpp"
#include "microcount/backends/reference/misc.hpp"

namespace microcount::cuda_ops {

// ---- concat ---------------------------------------------------------------------------------------

// y [N, block_a + block_b] = [a [N, block_a], b [N, block_b]] (blocks: everything after the sample axis).
struct concat_forward_kernel {
  static constexpr const char* name = "concat_forward";
  template <class Ctx>
  MICROCOUNT_HOST_DEVICE void operator()(const Ctx& ctx, const float* a, const float* b, float* y, index_t samples,
                                         index_t block_a, index_t block_b) const {
    const index_t row = block_a + block_b, total = samples * row;
    for (index_t e = global_index(ctx); e < total; e += global_stride(ctx)) {
      const index_t i = e / row, j = e % row;
      y[e] = j < block_a ? a[i * block_a + j] : b[i * block_b + (j - block_a)];
    }
  }
};

// da, db = the two channel ranges of dy: every dy element goes to exactly one place.
struct concat_backward_kernel {
  static constexpr const char* name = "concat_backward";
  template <class Ctx>
  MICROCOUNT_HOST_DEVICE void operator()(const Ctx& ctx, const float* dy, float* da, float* db, index_t samples,
                                         index_t block_a, index_t block_b) const {
    const index_t row = block_a + block_b, total = samples * row;
    for (index_t e = global_index(ctx); e < total; e += global_stride(ctx)) {
      const index_t i = e / row, j = e % row;
      if (j < block_a) da[i * block_a + j] = dy[e];
      else db[i * block_b + (j - block_a)] = dy[e];
    }
  }
};

struct concat {
  using op = ops::concat;
  template <int Rank>
  static void forward(const op&, std::type_identity_t<tensor_view<const float, Rank>> a,
                      std::type_identity_t<tensor_view<const float, Rank>> b, tensor_view<float, Rank> y) {
    reference_detail::concat_kernel<float>::check(a, b, y);  // shapes and contiguity, host-side only
    if (elements(y) == 0) return;
    const index_t samples = a.extent[0], block_a = elements(a) / samples, block_b = elements(b) / samples;
    cuda::launch(concat_forward_kernel{}, grid_for(elements(y)), {threads}, 0, a.data, b.data, y.data, samples, block_a,
                 block_b);
  }
  template <int Rank>
  static void backward(const op&, std::type_identity_t<tensor_view<const float, Rank>> dy, tensor_view<float, Rank> da,
                       tensor_view<float, Rank> db) {
    reference_detail::concat_kernel<float>::check(da, db, dy);
    if (elements(dy) == 0) return;
    const index_t samples = da.extent[0], block_a = elements(da) / samples, block_b = elements(db) / samples;
    cuda::launch(concat_backward_kernel{}, grid_for(elements(dy)), {threads}, 0, dy.data, da.data, db.data, samples,
                 block_a, block_b);
  }
};

// ---- dropout --------------------------------------------------------------------------------------

// mask[i] = scale where element i is kept under key, else 0: the reference's hash, per thread.
struct dropout_mask_kernel {
  static constexpr const char* name = "dropout_mask";
  std::uint64_t key;
  std::uint32_t threshold;
  float scale;
  template <class Ctx>
  MICROCOUNT_HOST_DEVICE void operator()(const Ctx& ctx, index_t n, float* mask) const {
    for (index_t i = global_index(ctx); i < n; i += global_stride(ctx))
      mask[i] = ops::dropout::kept(key, std::uint64_t(i), threshold) ? scale : 0.f;
  }
};

struct dropout : body_kernels::dropout_apply<backend::cuda> {
  using op = ops::dropout;
  static void make_mask(const op& p, std::uint64_t key, index_t n, float* mask) {
    if (n <= 0) return;
    cuda::launch(dropout_mask_kernel{key, p.threshold(), p.keep_scale<float>()}, grid_for(n), {threads}, 0, n, mask);
  }
};

// ---- linear ---------------------------------------------------------------------------------------

// A strided matrix operand: element (r, c) at data[r·row + c·col].
struct matrix {
  const float* data;
  index_t row, col;
  MICROCOUNT_HOST_DEVICE float operator()(index_t r, index_t c) const { return data[r * row + c * col]; }
};

// C [rows, cols] = init + A [rows, depth] · B [depth, cols], k ascending, accumulated in double. Each
// 16×16 block stages 16-wide slices of A and B in shared memory; init is bias[col] or 0.
struct gemm_kernel {
  static constexpr const char* name = "linear_gemm";
  static constexpr unsigned tile = 16;
  matrix a, b;
  float* c;
  index_t c_row, c_col;  // strides of C
  index_t rows, cols, depth;
  const float* bias;  // [cols] or null
  template <class Ctx>
  MICROCOUNT_HOST_DEVICE void operator()(const Ctx& ctx) const {
    float* tile_a = ctx.template shared<float>();  // [tile][tile + 1]: A[r0 + ty][k0 + tx]
    float* tile_b = tile_a + tile * (tile + 1);    // [tile][tile + 1]: B[k0 + ty][c0 + tx]
    const unsigned tx = ctx.thread_idx().x, ty = ctx.thread_idx().y;
    const index_t r = index_t(ctx.block_idx().y) * tile + ty, col = index_t(ctx.block_idx().x) * tile + tx;
    const index_t a_row = index_t(ctx.block_idx().y) * tile + ty;  // the A row this thread stages
    const index_t b_col = index_t(ctx.block_idx().x) * tile + tx;  // the B column this thread stages
    double sum = (bias && col < cols) ? double(bias[col]) : 0.0;
    for (index_t k0 = 0; k0 < depth; k0 += tile) {
      tile_a[ty * (tile + 1) + tx] = (a_row < rows && k0 + tx < depth) ? a(a_row, k0 + tx) : 0.f;
      tile_b[ty * (tile + 1) + tx] = (k0 + ty < depth && b_col < cols) ? b(k0 + ty, b_col) : 0.f;
      ctx.sync();
      const index_t span = depth - k0 < index_t(tile) ? depth - k0 : index_t(tile);
      for (index_t k = 0; k < span; ++k) sum += double(tile_a[ty * (tile + 1) + k]) * tile_b[k * (tile + 1) + tx];
      ctx.sync();
    }
    if (r < rows && col < cols) c[r * c_row + col * c_col] = float(sum);
  }

  static void run(const gemm_kernel& g) {
    if (g.rows == 0 || g.cols == 0) return;
    const dims3 grid{static_cast<unsigned>((g.cols + tile - 1) / tile), static_cast<unsigned>((g.rows + tile - 1) / tile), 1};
    require(grid.y <= cuda::max_grid_yz, "linear", "more than 65535·16 rows");
    cuda::launch(g, grid, {tile, tile, 1}, sizeof(float) * 2 * tile * (tile + 1));
  }
};

// dbias[o] = Σ_n dy(n, o), n ascending in double.
struct column_sum_kernel {
  static constexpr const char* name = "linear_bias_grad";
  template <class Ctx>
  MICROCOUNT_HOST_DEVICE void operator()(const Ctx& ctx, matrix dy, index_t rows, index_t cols, float* out) const {
    for (index_t o = global_index(ctx); o < cols; o += global_stride(ctx)) {
      double s = 0;
      for (index_t n = 0; n < rows; ++n) s += dy(n, o);
      out[o] = float(s);
    }
  }
};

struct linear {
  using op = ops::linear;
  using in_view = tensor_view<const float, 2>;
  using out_view = tensor_view<float, 2>;

  // y [N, out] = x [N, in] · wᵀ [in, out] + bias [out] (bias may be null).
  static void forward(const op&, in_view x, in_view w, const float* bias, out_view y) {
    gemm_kernel::run({{x.data, x.stride[0], x.stride[1]}, {w.data, w.stride[1], w.stride[0]}, y.data, y.stride[0],
                      y.stride[1], x.extent[0], w.extent[0], x.extent[1], bias});
  }
  // dx [N, in] = dy [N, out] · w [out, in]
  static void backward_data(const op&, in_view dy, in_view w, out_view dx) {
    gemm_kernel::run({{dy.data, dy.stride[0], dy.stride[1]}, {w.data, w.stride[0], w.stride[1]}, dx.data, dx.stride[0],
                      dx.stride[1], dx.extent[0], dx.extent[1], w.extent[0], nullptr});
  }
  // dw [out, in] = dyᵀ · x, dbias [out] = Σ_n dy (when non-null)
  static void backward_weights(const op&, in_view x, in_view dy, out_view dw, float* dbias) {
    gemm_kernel::run({{dy.data, dy.stride[1], dy.stride[0]}, {x.data, x.stride[0], x.stride[1]}, dw.data, dw.stride[0],
                      dw.stride[1], dw.extent[0], dw.extent[1], x.extent[0], nullptr});
    if (dbias && dw.extent[0] > 0)
      cuda::launch(column_sum_kernel{}, grid_for(dw.extent[0]), {threads}, 0, matrix{dy.data, dy.stride[0], dy.stride[1]},
                   dy.extent[0], dw.extent[0], dbias);
  }
};

// ---- channel_sum (losses, gradient norms) -----------------------------------------------------------

// Σ x (or x²) of channel c over x read as [outer, channels, inner].
template <class T>
struct channel_term {
  const T* x;
  index_t channels, inner;
  bool squares;
  MICROCOUNT_HOST_DEVICE double operator()(index_t c, index_t e) const {
    const double v = double(x[((e / inner) * channels + c) * inner + e % inner]);
    return squares ? v * v : v;
  }
};

struct channel_sum {
  using op = ops::channel_sum;
  // x [outer, channels, inner] in device memory -> out [channels] in HOST memory.
  template <class T>
  static void run(const op& o, const T* x, index_t outer, index_t channels, index_t inner, double* out) {
    if (channels <= 0) return;
    if (outer * inner == 0) {
      for (index_t c = 0; c < channels; ++c) out[c] = 0;
      return;
    }
    const segment_sums sums(channel_term<T>{x, channels, inner, o.squares}, channels, outer * inner);
    const std::vector<double> partials = sums.partials.download();  // [channels, blocks]
    for (index_t c = 0; c < channels; ++c) out[c] = sum_partials(partials.data(), sums.blocks, c);
  }
};

}  // namespace microcount::cuda_ops

namespace microcount {

template <>
struct kernel<ops::concat, backend::cuda> : cuda_ops::concat {};
template <>
struct kernel<ops::add, backend::cuda> : body_kernels::add<backend::cuda> {};
template <>
struct kernel<ops::dropout, backend::cuda> : cuda_ops::dropout {};
template <>
struct kernel<ops::linear, backend::cuda> : cuda_ops::linear {};
template <>
struct kernel<ops::channel_sum, backend::cuda> : cuda_ops::channel_sum {};

}  // namespace microcount
