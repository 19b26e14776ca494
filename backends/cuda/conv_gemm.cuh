#pragma once
// The tiled GEMM engine behind every convolution pass of backend::cuda (conv.cuh):
//
//   C[rows × cols] = A[rows × depth] · B[depth × cols]
//
// where a Problem says how to read A and B (an im2col gather computed on the fly: nothing is
// materialised) and how to store C (scattered back to NC(D)HW, plus a bias). One block computes a
// 64×64 tile of C with 256 threads, each keeping a 4×4 register tile; the depth is walked 16 at a
// time, both operand tiles staged in shared memory (two stages: the next tiles are fetched and stored
// while the current ones are multiplied, one barrier per step). When the grid of C tiles is too small to fill a GPU and the depth is
// long (weight gradients: the depth is batch × output pixels), the depth is split over grid.z: each
// split writes its partial tile, and a second kernel adds the splits in a fixed order and stores, so
// results never depend on scheduling (no float atomics). The split count depends on the shape only.
//
// A Problem is a trivially copyable struct with
//   static constexpr const char* name;          the kernel's name in messages
//   static constexpr bool b_depth_contiguous;    B's neighbouring addresses run along depth (else along cols)
//   struct column;                               what B's gather needs of one column, computed once per thread
//   MICROCOUNT_HOST_DEVICE float a(int row, int k) const;        0 ≤ row < rows, 0 ≤ k < depth
//   MICROCOUNT_HOST_DEVICE column b_column(int col) const;       0 ≤ col < cols
//   MICROCOUNT_HOST_DEVICE float b(int k, const column& c) const;
//   MICROCOUNT_HOST_DEVICE void store(int row, int col, float c) const;
// Each thread fetches B from fixed columns while walking the depth, so the column's share of the
// address arithmetic (image, output position, border offsets) leaves the inner loop.
#include <algorithm>
#include <concepts>
#include <cstdint>
#include <string>
#include <type_traits>

#include "microcount/backends/cuda/launch.cuh"
#include "microcount/core/error.hpp"
#include "microcount/core/shape.hpp"

namespace microcount::cuda_conv_detail {

template <class P>
concept gemm_problem = std::is_trivially_copyable_v<P> && requires(const P& p, int i, float v, const typename P::column& c) {
  { P::name } -> std::convertible_to<const char*>;
  { P::b_depth_contiguous } -> std::convertible_to<bool>;
  { p.a(i, i) } -> std::same_as<float>;
  { p.b_column(i) } -> std::same_as<typename P::column>;
  { p.b(i, c) } -> std::same_as<float>;
  p.store(i, i, v);
};

// x / d and x % d for 0 ≤ x < 2^31 by one multiply and a shift instead of a division (Granlund and
// Montgomery: with l = ⌈log2 d⌉ and m = ⌈2^(31+l) / d⌉, ⌊x·m / 2^(31+l)⌋ = ⌊x / d⌋ for every 31-bit x).
// The im2col gathers divide by the same extents for every element; a GPU has no integer divider.
struct int_divisor {
  std::uint64_t magic = std::uint64_t(1) << 31;
  int shift = 31;

  static int_divisor of(int d) {
    require(d >= 1, "cuda conv", "divisor " + std::to_string(d) + " must be positive");
    int l = 0;
    while ((std::int64_t(1) << l) < d) ++l;
    const std::uint64_t p = std::uint64_t(1) << (31 + l);
    return {(p + std::uint64_t(d) - 1) / std::uint64_t(d), 31 + l};
  }
  [[nodiscard]] MICROCOUNT_HOST_DEVICE int div(int x) const {
    return static_cast<int>((static_cast<std::uint64_t>(x) * magic) >> shift);
  }
};

// Tile geometry, shared by the kernel and its launch.
struct gemm_tile {
  static constexpr int rows = 64, cols = 64, depth = 16;
  static constexpr int threads = 256;  // 16 × 16 threads, each 4 × 4 outputs
  static constexpr int side = 16;      // threads per tile side
  static constexpr int reg = 4;        // register tile side: rows ty + 16·i, cols tx + 16·j
  // Shared row pitch: 64 + 2 makes the transposed stores of a warp hit distinct banks.
  static constexpr int pitch = 66;
  static constexpr int stage_floats = 2 * depth * pitch;  // an A and a B tile
  static constexpr std::size_t shared_bytes = 2 * stage_floats * sizeof(float);  // two stages
  // Operand elements each thread fetches per depth step (64 × 16 / 256).
  static constexpr int fetch = rows * depth / threads;
};
static_assert(gemm_tile::rows == gemm_tile::side * gemm_tile::reg && gemm_tile::cols == gemm_tile::side * gemm_tile::reg,
              "microcount: the register tiles must cover the block tile");
static_assert(gemm_tile::shared_bytes <= cuda::max_shared_bytes, "microcount: gemm tiles exceed shared memory");

// One 64×64 tile of C over the depth range [blockIdx.z · depth_per_split, +depth_per_split).
// partial == nullptr: store through the problem; else write the raw sums to partial [splits, rows, cols].
template <gemm_problem Problem>
struct gemm_kernel {
  static constexpr const char* name = Problem::name;
  using tile = gemm_tile;
  Problem problem;
  int rows = 0, cols = 0, depth = 0;
  int depth_per_split = tile::depth;  // a multiple of tile::depth
  float* partial = nullptr;

  template <class Ctx>
  MICROCOUNT_HOST_DEVICE void operator()(const Ctx& ctx) const {
    // Two stages of [A tile | B tile], each [tile::depth][pitch] (a[k · pitch + row], b[k · pitch + col]):
    // step s multiplies stage s % 2 while the fetched step s + 1 is written into the other one, so one
    // barrier per step suffices.
    float* stages = ctx.template shared<float>();
    const int t = static_cast<int>(ctx.thread_idx().x);
    const int tx = t % tile::side, ty = t / tile::side;
    const int row0 = static_cast<int>(ctx.block_idx().y) * tile::rows;
    const int col0 = static_cast<int>(ctx.block_idx().x) * tile::cols;
    const int k_begin = static_cast<int>(ctx.block_idx().z) * depth_per_split;
    const int k_end = depth - k_begin < depth_per_split ? depth : k_begin + depth_per_split;

    // The B columns this thread gathers from: one when B's fetch walks the columns (every fetch of the
    // thread is in column t % 64), four when it walks the depth (columns t / 16 + 16·e).
    constexpr int columns = Problem::b_depth_contiguous ? tile::fetch : 1;
    typename Problem::column column[columns];
    bool column_inside[columns];
    for (int e = 0; e < columns; ++e) {
      int k, c;
      b_slot(t, e, k, c);
      column_inside[e] = col0 + c < cols;
      column[e] = problem.b_column(column_inside[e] ? col0 + c : col0);
    }

    float a_next[tile::fetch], b_next[tile::fetch];  // the next depth step, fetched during the multiply
    float acc[tile::reg][tile::reg] = {};
    if (k_begin < k_end) {
      fetch(k_begin, k_end, row0, t, column, column_inside, a_next, b_next);
      stage(t, a_next, b_next, stages);
    }
    ctx.sync();
    int current = 0;
    // Block-uniform loop: every thread meets every barrier. The barrier at the end of step s publishes
    // stage s + 1 and guarantees every thread is done reading stage s before step s + 1 overwrites it.
    for (int k0 = k_begin; k0 < k_end; k0 += tile::depth) {
      const bool more = k0 + tile::depth < k_end;
      if (more) fetch(k0 + tile::depth, k_end, row0, t, column, column_inside, a_next, b_next);
      const float* a_tile = stages + current * tile::stage_floats;
      const float* b_tile = a_tile + tile::depth * tile::pitch;
      for (int k = 0; k < tile::depth; ++k) {
        float a[tile::reg], b[tile::reg];
        for (int i = 0; i < tile::reg; ++i) a[i] = a_tile[k * tile::pitch + ty + tile::side * i];
        for (int j = 0; j < tile::reg; ++j) b[j] = b_tile[k * tile::pitch + tx + tile::side * j];
        for (int i = 0; i < tile::reg; ++i)
          for (int j = 0; j < tile::reg; ++j) acc[i][j] += a[i] * b[j];
      }
      if (!more) break;  // (uniform) the last step needs no barrier: only registers are read after it
      stage(t, a_next, b_next, stages + (1 - current) * tile::stage_floats);
      ctx.sync();
      current = 1 - current;
    }

    for (int i = 0; i < tile::reg; ++i) {
      const int row = row0 + ty + tile::side * i;
      if (row >= rows) continue;
      for (int j = 0; j < tile::reg; ++j) {
        const int col = col0 + tx + tile::side * j;
        if (col >= cols) continue;
        if (partial)
          partial[(std::int64_t(ctx.block_idx().z) * rows + row) * cols + col] = acc[i][j];
        else
          problem.store(row, col, acc[i][j]);
      }
    }
  }

 private:
  // Thread t's share of the A tile: depth index t % 16 (A is contiguous along depth in every pass),
  // rows t / 16 + 16·e. Its share of B: along whichever axis B is contiguous, so a warp reads runs.
  MICROCOUNT_HOST_DEVICE static void a_slot(int t, int e, int& k, int& row) {
    k = t % tile::depth;
    row = t / tile::depth + (tile::threads / tile::depth) * e;
  }
  MICROCOUNT_HOST_DEVICE static void b_slot(int t, int e, int& k, int& col) {
    if constexpr (Problem::b_depth_contiguous) {
      k = t % tile::depth;
      col = t / tile::depth + (tile::threads / tile::depth) * e;
    } else {
      col = t % tile::cols;
      k = t / tile::cols + (tile::threads / tile::cols) * e;
    }
  }

  // Reads the operand elements of depth step k0 into registers; zeros outside C and outside the split.
  MICROCOUNT_HOST_DEVICE void fetch(int k0, int k_end, int row0, int t, const typename Problem::column* column,
                                    const bool* column_inside, float* a_next, float* b_next) const {
    for (int e = 0; e < tile::fetch; ++e) {
      int k, r;
      a_slot(t, e, k, r);
      a_next[e] = (k0 + k < k_end && row0 + r < rows) ? problem.a(row0 + r, k0 + k) : 0.f;
      int c;
      b_slot(t, e, k, c);
      const int which = Problem::b_depth_contiguous ? e : 0;
      b_next[e] = (k0 + k < k_end && column_inside[which]) ? problem.b(k0 + k, column[which]) : 0.f;
    }
  }

  MICROCOUNT_HOST_DEVICE static void stage(int t, const float* a_next, const float* b_next, float* a_tile) {
    float* b_tile = a_tile + tile::depth * tile::pitch;
    for (int e = 0; e < tile::fetch; ++e) {
      int k, r;
      a_slot(t, e, k, r);
      a_tile[k * tile::pitch + r] = a_next[e];
      int c;
      b_slot(t, e, k, c);
      b_tile[k * tile::pitch + c] = b_next[e];
    }
  }
};

// C = Σ over splits of partial [splits, rows, cols], in split order, stored through the problem.
template <gemm_problem Problem>
struct split_sum_kernel {
  static constexpr const char* name = "conv_gemm_split_sum";
  Problem problem;
  int rows = 0, cols = 0, splits = 1;
  const float* partial = nullptr;

  template <class Ctx>
  MICROCOUNT_HOST_DEVICE void operator()(const Ctx& ctx) const {
    const std::int64_t count = std::int64_t(rows) * cols;
    const std::int64_t step = std::int64_t(ctx.grid_dim().x) * ctx.block_dim().x;
    for (std::int64_t i = std::int64_t(ctx.block_idx().x) * ctx.block_dim().x + ctx.thread_idx().x; i < count; i += step) {
      float sum = 0.f;
      for (int s = 0; s < splits; ++s) sum += partial[s * count + i];
      problem.store(static_cast<int>(i / cols), static_cast<int>(i % cols), sum);
    }
  }
};

inline constexpr index_t ceil_div(index_t a, index_t b) { return (a + b - 1) / b; }

// How many depth splits a rows × cols × depth GEMM runs with: enough blocks for about two waves of a
// large GPU, but every split at least 16 depth steps (256 terms) long, at most 64 splits. A function
// of the shape only, so the summation order (and the result) is the same on every run and device.
inline int gemm_splits(index_t rows, index_t cols, index_t depth) {
  constexpr index_t target_blocks = 256, min_steps = 16, max_splits = 64;
  const index_t tiles = ceil_div(rows, gemm_tile::rows) * ceil_div(cols, gemm_tile::cols);
  const index_t steps = ceil_div(depth, gemm_tile::depth);
  if (tiles >= target_blocks || steps < 2 * min_steps) return 1;
  const index_t wanted = std::min({ceil_div(target_blocks, tiles), steps / min_steps, max_splits});
  // Equal splits of whole depth steps; recount so that no split is empty.
  const index_t per_split = ceil_div(steps, wanted);
  return static_cast<int>(ceil_div(steps, per_split));
}

// Device scratch for the split partial sums, kept per host thread and grown on demand: a cudaMalloc and
// cudaFree per call would synchronise the device every time. Kernels go to the default stream and run in
// order, so a call reusing the buffer cannot overtake the previous call's kernels (and cudaFree, when the
// buffer grows, waits for them).
inline float* split_workspace(index_t floats) {
  struct buffer {
    void* data = nullptr;
    index_t floats = 0;
    buffer() = default;
    buffer(const buffer&) = delete;
    buffer& operator=(const buffer&) = delete;
    ~buffer() { memory<backend::cuda>::release(data); }
  };
  thread_local buffer scratch;
  if (scratch.floats < floats) {
    memory<backend::cuda>::release(scratch.data);
    scratch.data = nullptr;
    scratch.floats = 0;
    scratch.data = memory<backend::cuda>::allocate(static_cast<std::size_t>(floats) * sizeof(float));
    scratch.floats = floats;
  }
  return static_cast<float*>(scratch.data);
}

// Runs the problem's GEMM (rows, cols, depth < 2^31, checked by the caller).
template <gemm_problem Problem>
void run_gemm(const Problem& problem, index_t rows, index_t cols, index_t depth) {
  if (rows == 0 || cols == 0) return;
  using tile = gemm_tile;
  const int splits = gemm_splits(rows, cols, depth);
  const index_t steps = std::max<index_t>(1, ceil_div(depth, tile::depth));
  const int depth_per_split = static_cast<int>(ceil_div(steps, splits) * tile::depth);
  const cuda::dims3 grid{static_cast<unsigned>(ceil_div(cols, tile::cols)), static_cast<unsigned>(ceil_div(rows, tile::rows)),
                         static_cast<unsigned>(splits)};
  require(grid.y <= cuda::max_grid_yz, Problem::name,
          std::to_string(rows) + " output rows need more than 65535 row tiles (at most " +
              std::to_string(index_t(cuda::max_grid_yz) * tile::rows) + " channels)");
  gemm_kernel<Problem> gemm{problem, static_cast<int>(rows), static_cast<int>(cols), static_cast<int>(depth), depth_per_split,
                            nullptr};
  if (splits == 1) {
    cuda::launch(gemm, grid, {tile::threads}, tile::shared_bytes);
    return;
  }
  // At most about (256 + tiles) · 64 · 64 floats: splits are only used while tiles < 256.
  float* partial = split_workspace(splits * rows * cols);  // [splits, rows, cols]
  gemm.partial = partial;
  cuda::launch(gemm, grid, {tile::threads}, tile::shared_bytes);
  constexpr unsigned threads = 256;
  cuda::dims3 sum_grid = cuda::blocks_for(rows * cols, threads);
  sum_grid.x = std::min(sum_grid.x, 4096u);  // grid-stride beyond
  cuda::launch(split_sum_kernel<Problem>{problem, static_cast<int>(rows), static_cast<int>(cols), splits, partial},
               sum_grid, {threads}, 0);
}

}  // namespace microcount::cuda_conv_detail
