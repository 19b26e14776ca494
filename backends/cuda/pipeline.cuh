#pragma once
// The pipeline's hot spots on the GPU: Gaussian density targets, local-maximum peaks, and tiling with
// stitching for whole-image prediction. Each kernel gives what its host function gives (the host one is
// the oracle, tests/cuda/test_pipeline_kernels.cpp):
//
//   gaussian_density(points, H, W, options, scale)        -> [C, H, W]      target::gaussian_density × scale
//   gaussian_density_batch(lists, H, W, options, scale)   -> [N, C, H, W]   the dense part of data::make_batch
//   gaussian_density_movie(points, T, H, W, options, scale) -> [C, T, H, W] target::gaussian_density_movie × scale
//   find_peaks / find_peaks_per_class(maps, options)      -> points         post::find_peaks(_per_class)
//   find_peaks_per_class_batch(maps [N, K, H, W], ...)    -> points per image
//   find_peaks_per_frame(movie [T, H, W], options, label) -> points         post::find_peaks_per_frame
//   gather_tiles<N>(image [C, E...], plan, first, count)  -> [count, C, t...]  infer::detail::gather_tile
//   stitch_tiles<N>(outputs [count, K, t...], plan, first, stitched [K, E...])  infer::detail::scatter_tile
//   apply_symmetry(x, g) / accumulate_inverse(y, g, acc)  infer::detail's test-time flips of tiles
//
// Density: one thread per output pixel, blocks of 16×16 pixels. The host bins every Gaussian's clipped
// window into the 16×16 tiles it meets (input order), so a block reads only its tile's Gaussians: their
// 16 column samples and 16 row samples go to shared memory, and every pixel combines them in input order,
// as the host rasterizer does (fma for sums, max for peak-1 maps). No atomics: the result does not depend
// on scheduling. Unit mass: the amplitude of each point is 1 / (Σ gx · Σ gy) over its window clipped to
// the image, the float samples summed in double (one thread per point), exactly the host's rule.
//
// Peaks: a first kernel reduces each plane to its min, max and first non-finite index (block partials,
// reduced on the host) to resolve the threshold as the host does; a second kernel marks the pixels above
// the threshold that are the maximum of their (2d+1)² window (a shared-memory tile with a d-pixel halo),
// compacts them with a block prefix sum and one atomic per block, and records each candidate's 3×3
// neighbourhood. Only the candidates come back to the host, where they are sorted into raster order
// and resolved as post::find_peaks does (plateaus as one peak at their centroid, greedy spacing by
// score with raster-order ties, sub-pixel refinement from the recorded neighbourhood).
//
// Tiles: one thread per tile value (gather, reflect or zero padding as infer::source_index) and one per
// owned output value (stitch: each pixel from the tile whose cropped interior owns it). Pure copies:
// the results are bit-equal to the host's.
#include <algorithm>
#include <atomic>
#include <concepts>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "microcount/backends/cuda/launch.cuh"
#include "microcount/backends/cuda/runtime.cuh"
#include "microcount/core/error.hpp"
#include "microcount/core/tensor.hpp"
#include "microcount/infer/tiling.hpp"
#include "microcount/io/annotations.hpp"
#include "microcount/post/peaks.hpp"
#include "microcount/post/scored_point.hpp"
#include "microcount/post/spatial_grid.hpp"
#include "microcount/post/union_find.hpp"
#include "microcount/target/checks.hpp"
#include "microcount/target/gaussian.hpp"

namespace microcount::cuda {

using device_tensor = tensor<float, backend::cuda>;

namespace pipeline_detail {

// The shape [n] (built member by member: GCC 12 falsely warns on the initializer-list path here).
inline shape vector_shape(index_t n) {
  shape s;
  s.rank = 1;
  s.dims[0] = n;
  return s;
}

// A small host array copied to a new device buffer (tile lists, splats, tile boxes).
template <class T>
tensor<T, backend::cuda> upload_array(const std::vector<T>& host) {
  tensor<T, backend::cuda> d(vector_shape(static_cast<index_t>(std::max<std::size_t>(host.size(), 1))));
  if (!host.empty()) memory<backend::cuda>::upload(d.data(), host.data(), sizeof(T) * host.size());
  return d;
}

// atomicAdd returning the previous value (the launch context's atomic_add returns nothing).
MICROCOUNT_HOST_DEVICE inline unsigned long long fetch_add(unsigned long long* p, unsigned long long v) {
#if defined(__CUDA_ARCH__)
  return atomicAdd(p, v);
#else
  return std::atomic_ref<unsigned long long>(*p).fetch_add(v, std::memory_order_relaxed);
#endif
}

}  // namespace pipeline_detail

// ============================================================================================
// Density rasterization
// ============================================================================================

// One Gaussian: its window clipped to the image, where its profiles start, and its amplitude.
struct density_splat {
  float first_x = 0, first_y = 0;  // c0 − x and r0 − y: the offsets of the window's first column and row
  float neg_half_inv_var = 0;      // −1 / (2σ²)
  float amplitude = 1;             // unit mass: 1 / (Σ gx · Σ gy), written by splat_amplitude_kernel
  std::int32_t r0 = 0, r1 = -1, c0 = 0, c1 = -1;  // inclusive window inside the image
  std::int64_t plane = 0;          // destination plane of [planes, H, W]
};

// One sample of a Gaussian profile: k steps from the window's first pixel (the host's float formula).
MICROCOUNT_HOST_DEVICE inline float gaussian_sample(float first, std::int32_t k, float neg_half_inv_var) {
  const float offset = first + static_cast<float>(k);
  return math::exp(offset * offset * neg_half_inv_var);
}

// Unit mass: one thread per splat sums its float samples in double over the clipped window.
struct splat_amplitude_kernel {
  static constexpr const char* name = "splat_amplitude";
  template <class Ctx>
  MICROCOUNT_HOST_DEVICE void operator()(const Ctx& ctx, density_splat* splats, std::int64_t n) const {
    const std::int64_t i = std::int64_t(ctx.block_idx().x) * ctx.block_dim().x + ctx.thread_idx().x;
    if (i >= n) return;
    density_splat& s = splats[i];
    double sx = 0, sy = 0;
    for (std::int32_t k = 0; k <= s.c1 - s.c0; ++k) sx += static_cast<double>(gaussian_sample(s.first_x, k, s.neg_half_inv_var));
    for (std::int32_t k = 0; k <= s.r1 - s.r0; ++k) sy += static_cast<double>(gaussian_sample(s.first_y, k, s.neg_half_inv_var));
    s.amplitude = static_cast<float>(1.0 / (sx * sy));
  }
};

// One block per 16×16 pixel tile of one plane; block (16, 16). Shared: chunk × 32 floats (the chunk's
// column samples over the tile's 16 columns and amplitude × row samples over its 16 rows; zeros outside
// a window, which leave a non-negative sum or max unchanged, as on the host).
struct density_tile_kernel {
  static constexpr const char* name = "density_tile";
  static constexpr int tile = 16;
  static constexpr int chunk = 64;  // splats staged per round: 8 KiB of shared memory
  static constexpr std::size_t shared_bytes = sizeof(float) * chunk * 2 * tile;
  template <class Ctx>
  MICROCOUNT_HOST_DEVICE void operator()(const Ctx& ctx, const density_splat* splats, const std::int64_t* tile_begin,
                                         const std::int32_t* tile_splats, std::int64_t h, std::int64_t w, bool take_max,
                                         float scale, float* out) const {
    float* columns = ctx.template shared<float>();  // [chunk, tile]
    float* rows = columns + chunk * tile;           // [chunk, tile]
    const int tx = static_cast<int>(ctx.thread_idx().x), ty = static_cast<int>(ctx.thread_idx().y);
    const int rank = ty * tile + tx;
    const std::int64_t col0 = std::int64_t(ctx.block_idx().x) * tile, row0 = std::int64_t(ctx.block_idx().y) * tile;
    const std::int64_t plane = ctx.block_idx().z;
    const std::int64_t list = (plane * ctx.grid_dim().y + ctx.block_idx().y) * ctx.grid_dim().x + ctx.block_idx().x;
    const std::int64_t begin = tile_begin[list], end = tile_begin[list + 1];
    float acc = 0.0f;
    for (std::int64_t first = begin; first < end; first += chunk) {
      const int n = static_cast<int>(math::min<std::int64_t>(chunk, end - first));
      for (int j = rank; j < n * 2 * tile; j += tile * tile) {
        const int s = j / (2 * tile), k = j % (2 * tile);
        const density_splat& g = splats[tile_splats[first + s]];
        if (k < tile) {
          const std::int64_t c = col0 + k;
          columns[s * tile + k] = (c >= g.c0 && c <= g.c1)
                                      ? gaussian_sample(g.first_x, static_cast<std::int32_t>(c - g.c0), g.neg_half_inv_var)
                                      : 0.0f;
        } else {
          const std::int64_t r = row0 + (k - tile);
          rows[s * tile + (k - tile)] =
              (r >= g.r0 && r <= g.r1)
                  ? g.amplitude * gaussian_sample(g.first_y, static_cast<std::int32_t>(r - g.r0), g.neg_half_inv_var)
                  : 0.0f;
        }
      }
      ctx.sync();
      if (take_max)
        for (int s = 0; s < n; ++s) acc = math::max(acc, rows[s * tile + ty] * columns[s * tile + tx]);
      else
        for (int s = 0; s < n; ++s) acc = fmaf(rows[s * tile + ty], columns[s * tile + tx], acc);
      ctx.sync();  // the next chunk overwrites the samples
    }
    const std::int64_t y = row0 + ty, x = col0 + tx;
    if (y < h && x < w) out[(plane * h + y) * w + x] = acc * scale;
  }
};

namespace pipeline_detail {

// The splats of one image's usable points (target::detail::prepare_splats without the amplitude, which
// the device computes), their planes offset by image × classes.
inline void append_splats(std::vector<density_splat>& out, const std::vector<io::point>& usable,
                          const std::vector<double>& sigmas, std::int64_t h, std::int64_t w, std::int64_t plane_base,
                          const target::gaussian_options& o) {
  for (std::size_t i = 0; i < usable.size(); ++i) {
    const auto& p = usable[i];
    const double sigma = sigmas[i];
    const double half = std::max(o.truncate * sigma, 0.5);  // >= 0.5: the window holds the point's own pixel
    density_splat s;
    s.neg_half_inv_var = static_cast<float>(-0.5 / (sigma * sigma));
    s.plane = plane_base + p.label;
    s.c0 = static_cast<std::int32_t>(std::max<std::int64_t>(0, static_cast<std::int64_t>(std::ceil(p.x - half))));
    s.c1 = static_cast<std::int32_t>(std::min<std::int64_t>(w - 1, static_cast<std::int64_t>(std::floor(p.x + half))));
    s.r0 = static_cast<std::int32_t>(std::max<std::int64_t>(0, static_cast<std::int64_t>(std::ceil(p.y - half))));
    s.r1 = static_cast<std::int32_t>(std::min<std::int64_t>(h - 1, static_cast<std::int64_t>(std::floor(p.y + half))));
    s.first_x = static_cast<float>(static_cast<double>(s.c0) - p.x);
    s.first_y = static_cast<float>(static_cast<double>(s.r0) - p.y);
    out.push_back(s);
  }
}

// Rasterizes splats into out [planes, H, W] (device): per-tile lists on the host, amplitudes and pixels on the device.
inline void rasterize(std::vector<density_splat>& splats, std::int64_t planes, std::int64_t h, std::int64_t w,
                      const target::gaussian_options& o, float scale, float* out, const char* where) {
  constexpr std::int64_t tile = density_tile_kernel::tile;
  const std::int64_t tiles_x = (w + tile - 1) / tile, tiles_y = (h + tile - 1) / tile;
  require(planes <= std::int64_t(max_grid_yz), where, "more than 65535 planes (images × classes) in one launch");
  require(tiles_y <= std::int64_t(max_grid_yz), where, "more than 65535 × 16 rows");
  require(splats.size() < std::size_t(std::numeric_limits<std::int32_t>::max()), where, "too many points");
  // Per-tile lists of splat ids in input order (counting sort by tile, stable).
  std::vector<std::int64_t> begin(static_cast<std::size_t>(planes * tiles_y * tiles_x + 1), 0);
  auto for_each_tile = [&](const density_splat& s, auto&& f) {
    for (std::int64_t ty = s.r0 / tile; ty <= s.r1 / tile; ++ty)
      for (std::int64_t tx = s.c0 / tile; tx <= s.c1 / tile; ++tx) f((s.plane * tiles_y + ty) * tiles_x + tx);
  };
  for (const auto& s : splats) for_each_tile(s, [&](std::int64_t t) { ++begin[static_cast<std::size_t>(t + 1)]; });
  for (std::size_t t = 1; t < begin.size(); ++t) begin[t] += begin[t - 1];
  std::vector<std::int32_t> ids(static_cast<std::size_t>(begin.back()));
  std::vector<std::int64_t> next(begin.begin(), begin.end() - 1);
  for (std::size_t i = 0; i < splats.size(); ++i)
    for_each_tile(splats[i], [&](std::int64_t t) { ids[static_cast<std::size_t>(next[static_cast<std::size_t>(t)]++)] = static_cast<std::int32_t>(i); });

  auto d_splats = upload_array(splats);  // [points]
  auto d_begin = upload_array(begin);    // [planes · tiles + 1]
  auto d_ids = upload_array(ids);        // [Σ tiles met per point]
  const auto n = static_cast<std::int64_t>(splats.size());
  if (o.norm == target::normalization::unit_mass && n > 0)
    launch(splat_amplitude_kernel{}, blocks_for(n, 128), {128}, 0, d_splats.data(), n);
  const bool take_max = o.norm == target::normalization::peak_one && o.combine == target::overlap::max;
  if (planes * h * w == 0) return;
  launch(density_tile_kernel{}, {unsigned(tiles_x), unsigned(tiles_y), unsigned(planes)}, {unsigned(tile), unsigned(tile)},
         density_tile_kernel::shared_bytes, static_cast<const density_splat*>(d_splats.data()),
         static_cast<const std::int64_t*>(d_begin.data()), static_cast<const std::int32_t*>(d_ids.data()), h, w, take_max,
         scale, out);
}

}  // namespace pipeline_detail

// Density maps [N, C, H, W] of N images, image n drawn from point_lists[n]: each plane equals
// target::gaussian_density(point_lists[n], H, W, o) × scale (within float rounding of exp). C = o.classes,
// or the largest label over all images + 1. With scale = density scale and o.skip_outside this is the
// density tensor data::make_batch builds on the host.
inline device_tensor gaussian_density_batch(std::span<const std::span<const io::point>> point_lists, std::size_t height,
                                            std::size_t width, const target::gaussian_options& o = {}, float scale = 1.0f) {
  const char* where = "gaussian_density";
  target::detail::check_options(o, where);
  std::size_t classes = o.classes;
  if (classes == 0)
    for (const auto& pts : point_lists) classes = std::max(classes, target::detail::class_count(pts, 0));
  classes = std::max<std::size_t>(classes, 1);
  const std::size_t images = point_lists.size();
  target::detail::check_size(images * classes, height, width, where);
  const auto h = static_cast<std::int64_t>(height), w = static_cast<std::int64_t>(width);
  std::vector<density_splat> splats;
  for (std::size_t n = 0; n < images; ++n) {
    auto usable = target::detail::usable_points(point_lists[n], classes, 0, height, width, o.skip_outside, where);
    for (auto& p : usable) p.frame = -1;  // one neighbourhood for adaptive σ: the whole image
    const auto sigmas = target::point_sigmas(usable, o);
    pipeline_detail::append_splats(splats, usable, sigmas, h, w, static_cast<std::int64_t>(n * classes), o);
  }
  device_tensor out({static_cast<index_t>(images), static_cast<index_t>(classes), h, w});  // [N, C, H, W]
  pipeline_detail::rasterize(splats, static_cast<std::int64_t>(images * classes), h, w, o, scale, out.data(), where);
  return out;
}

// Density movie [C, T, H, W]: target::gaussian_density_movie(points, T, H, W, o) × scale — each point a
// 2D Gaussian on its own frame (point.frame in [0, T)), adaptive σ from neighbours in the same frame.
inline device_tensor gaussian_density_movie(std::span<const io::point> points, std::size_t frames, std::size_t height,
                                            std::size_t width, const target::gaussian_options& o = {}, float scale = 1.0f) {
  const char* where = "gaussian_density_movie";
  target::detail::check_options(o, where);
  require(frames > 0, where, "a movie needs at least one frame");
  const std::size_t classes = target::detail::class_count(points, o.classes);
  target::detail::check_size(classes * frames, height, width, where);
  const auto usable = target::detail::usable_points(points, classes, frames, height, width, o.skip_outside, where);
  const auto sigmas = target::point_sigmas(usable, o);
  const auto h = static_cast<std::int64_t>(height), w = static_cast<std::int64_t>(width);
  std::vector<density_splat> splats;
  pipeline_detail::append_splats(splats, usable, sigmas, h, w, 0, o);
  for (std::size_t i = 0; i < usable.size(); ++i)  // plane (label, frame) of [C, T]
    splats[i].plane = static_cast<std::int64_t>(usable[i].label) * static_cast<std::int64_t>(frames) + usable[i].frame;
  device_tensor out({static_cast<index_t>(classes), static_cast<index_t>(frames), h, w});  // [C, T, H, W]
  pipeline_detail::rasterize(splats, static_cast<std::int64_t>(classes * frames), h, w, o, scale, out.data(), where);
  return out;
}

// Density map [C, H, W] of one image: target::gaussian_density(points, H, W, o) × scale.
inline device_tensor gaussian_density(std::span<const io::point> points, std::size_t height, std::size_t width,
                                      const target::gaussian_options& o = {}, float scale = 1.0f) {
  const std::span<const io::point> one[1] = {points};
  device_tensor out = gaussian_density_batch(one, height, width, o, scale);  // [1, C, H, W]
  out.reshape({out.dim(1), out.dim(2), out.dim(3)});
  return out;
}

// ============================================================================================
// Peak finding
// ============================================================================================

// Min, max and first non-finite index of each plane: grid (blocks per plane, planes), block 256.
// Shared: 256 × (2 floats + 1 int64).
struct plane_range_kernel {
  static constexpr const char* name = "plane_range";
  static constexpr unsigned threads = 256;
  static constexpr std::size_t shared_bytes = threads * (2 * sizeof(float) + sizeof(std::int64_t));
  static constexpr std::int64_t none = std::numeric_limits<std::int64_t>::max();
  template <class Ctx>
  MICROCOUNT_HOST_DEVICE void operator()(const Ctx& ctx, const float* maps, std::int64_t plane_size, float* lo_out,
                                         float* hi_out, std::int64_t* bad_out) const {
    std::int64_t* bad = ctx.template shared<std::int64_t>();  // [threads]
    float* lo = reinterpret_cast<float*>(bad + threads);     // [threads]
    float* hi = lo + threads;                                // [threads]
    const unsigned t = ctx.thread_idx().x;
    const float* plane = maps + std::int64_t(ctx.block_idx().y) * plane_size;
    float l = INFINITY, u = -INFINITY;
    std::int64_t b = none;
    const std::int64_t stride = std::int64_t(ctx.grid_dim().x) * threads;
    for (std::int64_t i = std::int64_t(ctx.block_idx().x) * threads + t; i < plane_size; i += stride) {
      const float v = plane[i];
      if (!(v - v == 0.0f)) b = math::min(b, i);  // NaN or ±inf
      l = math::min(l, v);
      u = math::max(u, v);
    }
    bad[t] = b;
    lo[t] = l;
    hi[t] = u;
    ctx.sync();
    for (unsigned half = threads / 2; half > 0; half /= 2) {
      if (t < half) {
        bad[t] = math::min(bad[t], bad[t + half]);
        lo[t] = math::min(lo[t], lo[t + half]);
        hi[t] = math::max(hi[t], hi[t + half]);
      }
      ctx.sync();
    }
    if (t == 0) {
      const std::int64_t slot = std::int64_t(ctx.block_idx().y) * ctx.grid_dim().x + ctx.block_idx().x;
      lo_out[slot] = lo[0];
      hi_out[slot] = hi[0];
      bad_out[slot] = bad[0];
    }
  }
};

// A pixel that passed: its index in the planes [P, H, W] (raster order), value and 3×3 neighbourhood.
struct peak_candidate {
  std::int64_t index = 0;
  float value = 0;
  float around[9] = {};  // rows y−1..y+1, columns x−1..x+1 (entries outside the image are unused)
};

// Candidates of planes [P, H, W]: grid (⌈W/16⌉, ⌈H/16⌉, P), block (16, 16). Shared: the block's base
// offset, the prefix-sum scratch, and (halo) the (16 + 2d)² window values (−inf outside the image).
struct peak_candidate_kernel {
  static constexpr const char* name = "peak_candidates";
  static constexpr int tile = 16;
  static constexpr int threads = tile * tile;
  static constexpr std::size_t header_bytes = 16 + sizeof(int) * (threads + tile);
  static constexpr std::size_t halo_limit = 40 * 1024;  // above: windows read from global memory
  static std::size_t halo_bytes(std::int64_t d) { return sizeof(float) * std::size_t((tile + 2 * d) * (tile + 2 * d)); }

  bool halo = true;  // stage the window in shared memory
  template <class Ctx>
  MICROCOUNT_HOST_DEVICE void operator()(const Ctx& ctx, const float* maps, std::int64_t h, std::int64_t w, std::int64_t d,
                                         std::int64_t border, const float* thresholds, peak_candidate* out,
                                         unsigned long long capacity, unsigned long long* count) const {
    unsigned char* shared = ctx.template shared<unsigned char>();
    unsigned long long* base = reinterpret_cast<unsigned long long*>(shared);  // [1]
    int* scan = reinterpret_cast<int*>(shared + 16);                            // [threads]
    float* window = reinterpret_cast<float*>(shared + header_bytes);            // [tile + 2d, tile + 2d]
    const int tx = static_cast<int>(ctx.thread_idx().x), ty = static_cast<int>(ctx.thread_idx().y);
    const int rank = ty * tile + tx;
    const std::int64_t p = ctx.block_idx().z;
    const float* plane = maps + p * h * w;
    const std::int64_t x0 = std::int64_t(ctx.block_idx().x) * tile, y0 = std::int64_t(ctx.block_idx().y) * tile;
    const std::int64_t span = tile + 2 * d;
    if (halo) {
      for (std::int64_t i = rank; i < span * span; i += threads) {
        const std::int64_t yy = y0 - d + i / span, xx = x0 - d + i % span;
        window[i] = (yy >= 0 && yy < h && xx >= 0 && xx < w) ? plane[yy * w + xx] : -INFINITY;
      }
    }
    ctx.sync();
    const std::int64_t y = y0 + ty, x = x0 + tx;
    bool keep = false;
    if (y >= border && y < h - border && x >= border && x < w - border) {
      const float v = plane[y * w + x];
      keep = v > thresholds[p];
      // The host's test: no value of the window clipped to the image exceeds v.
      for (std::int64_t yy = math::max<std::int64_t>(0, y - d); keep && yy <= math::min(h - 1, y + d); ++yy)
        for (std::int64_t xx = math::max<std::int64_t>(0, x - d); keep && xx <= math::min(w - 1, x + d); ++xx) {
          const float u = halo ? window[(yy - y0 + d) * span + (xx - x0 + d)] : plane[yy * w + xx];
          keep = !(u > v);
        }
    }
    // Block prefix sum of the flags in two levels (each row of 16 by its first thread, then the 16 row
    // totals by thread 0: three barriers), then one atomic per block for its output offset.
    int* row_total = scan + threads;  // [tile]
    scan[rank] = keep ? 1 : 0;
    ctx.sync();
    if (tx == 0)
      for (int k = 1; k < tile; ++k) scan[ty * tile + k] += scan[ty * tile + k - 1];  // inclusive within the row
    ctx.sync();
    if (rank == 0) {
      int before = 0;
      for (int r = 0; r < tile; ++r) {
        row_total[r] = before;  // exclusive over rows
        before += scan[r * tile + tile - 1];
      }
      *base = before > 0 ? pipeline_detail::fetch_add(count, static_cast<unsigned long long>(before)) : 0;
    }
    ctx.sync();
    if (!keep) return;
    const unsigned long long slot = *base + static_cast<unsigned long long>(row_total[ty] + scan[rank] - 1);
    if (slot >= capacity) return;  // the host sees the count and runs again with room for all
    peak_candidate& c = out[slot];
    c.index = (p * h + y) * w + x;
    c.value = plane[y * w + x];
    for (int dy = -1; dy <= 1; ++dy)
      for (int dx = -1; dx <= 1; ++dx) {
        const std::int64_t yy = y + dy, xx = x + dx;
        c.around[(dy + 1) * 3 + dx + 1] = (yy >= 0 && yy < h && xx >= 0 && xx < w) ? plane[yy * w + xx] : 0.0f;
      }
  }
};

namespace pipeline_detail {

// Steps 3–5 of post::detail::resolve_candidates for one 2D plane, on candidates in raster order that
// carry their 3×3 neighbourhood instead of a host copy of the map (same plateaus, same greedy order,
// same refinement). Indices are local to the plane.
inline std::vector<post::scored_point> resolve_plane(const peak_candidate* cands, std::size_t n, std::int64_t h,
                                                     std::int64_t w, const post::detail::peak_search& s,
                                                     const post::peak_options& o, int label, int frame) {
  if (n == 0) return {};
  require(n < std::numeric_limits<std::uint32_t>::max(), "peaks", "too many candidate peaks");
  // Plateaus: equal-valued 8-neighbours, joined to their raster-earlier neighbours (cursor per offset).
  post::union_find sets(n);
  struct offset {
    std::int64_t y, x, delta;
    std::size_t cursor = 0;
  };
  offset offsets[4] = {{-1, -1, -w - 1}, {-1, 0, -w}, {-1, 1, -w + 1}, {0, -1, -1}};
  for (std::size_t i = 0; i < n; ++i) {
    const std::int64_t idx = cands[i].index, y = idx / w, x = idx % w;
    for (auto& off : offsets) {
      const std::int64_t yy = y + off.y, xx = x + off.x;
      if (yy < 0 || yy >= h || xx < 0 || xx >= w) continue;
      const std::int64_t target = idx + off.delta;
      while (off.cursor < i && cands[off.cursor].index < target) ++off.cursor;
      if (off.cursor < i && cands[off.cursor].index == target && cands[off.cursor].value == cands[i].value)
        sets.unite(static_cast<std::uint32_t>(i), static_cast<std::uint32_t>(off.cursor));
    }
  }
  struct plateau {
    std::size_t first;  // candidate of its raster-first pixel (the set's root)
    std::int64_t pixels = 0;
    double sy = 0, sx = 0;
  };
  std::vector<std::int64_t> slot(n, -1);
  std::vector<plateau> groups;
  for (std::size_t i = 0; i < n; ++i) {
    const auto root = sets.find(static_cast<std::uint32_t>(i));
    if (slot[root] < 0) {
      slot[root] = static_cast<std::int64_t>(groups.size());
      groups.push_back({root});
    }
    auto& g = groups[static_cast<std::size_t>(slot[root])];
    g.pixels += 1;
    g.sy += static_cast<double>(cands[i].index / w);
    g.sx += static_cast<double>(cands[i].index % w);
  }
  std::stable_sort(groups.begin(), groups.end(),
                   [&](const plateau& a, const plateau& b) { return cands[a.first].value > cands[b.first].value; });
  // Greedy spacing (a grid finds each plateau's neighbours within d).
  const double d = static_cast<double>(s.d);
  std::vector<post::coord<3>> pos(groups.size());
  for (std::size_t k = 0; k < groups.size(); ++k) {
    const double inv = 1.0 / static_cast<double>(groups[k].pixels);
    pos[k] = {0.0, groups[k].sy * inv, groups[k].sx * inv};
  }
  const double per_plateau = static_cast<double>(h) * static_cast<double>(w) / static_cast<double>(groups.size());
  const post::spatial_grid<3> near(pos, std::max(d, std::sqrt(per_plateau)));
  std::vector<char> taken(groups.size(), 0);
  auto too_close = [&](const post::coord<3>& a, const post::coord<3>& b) {
    const double ay = std::abs(a[1] - b[1]), ax = std::abs(a[2] - b[2]);
    if (o.norm == post::spacing_norm::chebyshev) return std::max(ay, ax) < d;
    return ay * ay + ax * ax < d * d;
  };
  std::vector<post::scored_point> peaks;
  for (std::size_t k = 0; k < groups.size(); ++k) {
    if (peaks.size() >= o.max_peaks) break;
    bool keep = true;
    near.for_each_candidate(pos[k], d, [&](std::size_t j, const post::coord<3>& q) {
      keep = keep && !(taken[j] && too_close(pos[k], q));
    });
    if (!keep) continue;
    taken[k] = 1;
    const auto& g = groups[k];
    const peak_candidate& c = cands[g.first];
    post::scored_point p;
    p.score = c.value;
    p.point.label = label;
    p.point.frame = frame;
    if (g.pixels == 1) {
      const std::int64_t y = c.index / w, x = c.index % w;
      // The neighbourhood clipped to the image, with the peak at (y − ya, x − xa) in it: the host's
      // refinement sees exactly these values and borders.
      const std::int64_t ya = std::max<std::int64_t>(0, y - 1), yb = std::min(h - 1, y + 1);
      const std::int64_t xa = std::max<std::int64_t>(0, x - 1), xb = std::min(w - 1, x + 1);
      float patch[9];
      for (std::int64_t yy = ya; yy <= yb; ++yy)
        for (std::int64_t xx = xa; xx <= xb; ++xx) patch[(yy - ya) * (xb - xa + 1) + (xx - xa)] = c.around[(yy - y + 1) * 3 + (xx - x + 1)];
      const auto [dy, dx] = post::detail::refine_peak(patch, yb - ya + 1, xb - xa + 1, y - ya, x - xa, o.refine);
      p.point.y = static_cast<double>(y) + dy;
      p.point.x = static_cast<double>(x) + dx;
    } else {
      const double inv = 1.0 / static_cast<double>(g.pixels);
      p.point.y = g.sy * inv;
      p.point.x = g.sx * inv;
    }
    peaks.push_back(p);
  }
  return peaks;
}

// Peaks of every plane of maps [P, H, W] (device), plane p searched on its own with its own threshold
// and labelled label_of(p) (label, frame); one list per plane.
template <class LabelOf>
std::vector<std::vector<post::scored_point>> peaks_of_planes(const float* maps, std::int64_t planes, std::int64_t h,
                                                             std::int64_t w, const post::peak_options& o, LabelOf label_of) {
  // Options checked and window sizes resolved by the host's own planner (on no data: it scans nothing).
  post::detail::peak_search s = post::detail::plan_search(nullptr, 0, o, false, "peaks");
  std::vector<std::vector<post::scored_point>> result(static_cast<std::size_t>(planes));
  const std::int64_t plane_size = h * w;
  if (planes == 0 || plane_size == 0) return result;
  require(planes <= std::int64_t(max_grid_yz), "peaks", "more than 65535 maps in one search");
  require((h + 15) / 16 <= std::int64_t(max_grid_yz), "peaks", "more than 65535 × 16 rows");

  // Thresholds from each plane's range (the host's step 1), non-finite values reported as the host does.
  constexpr unsigned threads = plane_range_kernel::threads;
  const auto blocks = static_cast<unsigned>(std::clamp<std::int64_t>((plane_size + 16 * threads - 1) / (16 * threads), 1, 64));
  const shape partials = vector_shape(planes * blocks);
  tensor<float, backend::cuda> lo(partials), hi(partials);  // [P, blocks]
  tensor<std::int64_t, backend::cuda> bad(partials);        // [P, blocks]
  launch(plane_range_kernel{}, {blocks, unsigned(planes)}, {threads}, plane_range_kernel::shared_bytes, maps, plane_size,
         lo.data(), hi.data(), bad.data());
  const auto lo_h = lo.to_vector(), hi_h = hi.to_vector();
  const auto bad_h = bad.to_vector();
  std::vector<float> thresholds(static_cast<std::size_t>(planes));
  for (std::int64_t p = 0; p < planes; ++p) {
    float l = INFINITY, u = -INFINITY;
    std::int64_t first_bad = plane_range_kernel::none;
    for (unsigned b = 0; b < blocks; ++b) {
      const auto k = static_cast<std::size_t>(p * blocks + b);
      l = std::min(l, lo_h[k]);
      u = std::max(u, hi_h[k]);
      first_bad = std::min(first_bad, bad_h[k]);
    }
    if (first_bad != plane_range_kernel::none)
      throw error("peaks", "the map has a non-finite value at index " + std::to_string(first_bad));
    float thr = o.threshold_abs.value_or(l);
    if (o.threshold_rel) thr = std::max(thr, *o.threshold_rel * u);
    thresholds[static_cast<std::size_t>(p)] = thr;
  }
  auto d_thresholds = upload_array(thresholds);  // [P]

  // Candidates, compacted; room for 1/32 of the pixels first, all of them if more passed.
  constexpr int tile = peak_candidate_kernel::tile;
  const bool halo = peak_candidate_kernel::halo_bytes(s.d) <= peak_candidate_kernel::halo_limit;
  const std::size_t shared = peak_candidate_kernel::header_bytes + (halo ? peak_candidate_kernel::halo_bytes(s.d) : 0);
  const dims3 grid{unsigned((w + tile - 1) / tile), unsigned((h + tile - 1) / tile), unsigned(planes)};
  auto capacity = static_cast<unsigned long long>(std::max<std::int64_t>(1024, planes * plane_size / 32));
  std::vector<peak_candidate> cands;
  for (;;) {
    tensor<peak_candidate, backend::cuda> found(vector_shape(static_cast<index_t>(capacity)));  // [capacity]
    tensor<unsigned long long, backend::cuda> count(vector_shape(1));
    count.fill_zero();
    launch(peak_candidate_kernel{halo}, grid, {unsigned(tile), unsigned(tile)}, shared, maps, h, w, s.d, s.border,
           static_cast<const float*>(d_thresholds.data()), found.data(), capacity, count.data());
    const unsigned long long total = count.to_vector()[0];
    if (total > capacity) {
      capacity = total;
      continue;
    }
    cands.resize(static_cast<std::size_t>(total));
    if (total > 0) memory<backend::cuda>::download(cands.data(), found.data(), sizeof(peak_candidate) * cands.size());
    break;
  }
  // Blocks finished in any order: raster order (planes first) makes the answer the host's.
  std::sort(cands.begin(), cands.end(), [](const peak_candidate& a, const peak_candidate& b) { return a.index < b.index; });
  std::size_t at = 0;
  for (std::int64_t p = 0; p < planes; ++p) {
    std::size_t end = at;
    while (end < cands.size() && cands[end].index < (p + 1) * plane_size) ++end;
    for (std::size_t i = at; i < end; ++i) cands[i].index -= p * plane_size;
    const auto [label, frame] = label_of(p);
    result[static_cast<std::size_t>(p)] = resolve_plane(cands.data() + at, end - at, h, w, s, o, label, frame);
    at = end;
  }
  return result;
}

}  // namespace pipeline_detail

// Peaks of one map [H, W] (device): post::find_peaks(map, o, label) — sorted by score, frame −1.
inline std::vector<post::scored_point> find_peaks(const device_tensor& map, const post::peak_options& o = {}, int label = 0) {
  require(map.rank() == 2, "peaks", "expected a map [H, W], got " + map.shape().str());
  auto r = pipeline_detail::peaks_of_planes(map.data(), 1, map.dim(0), map.dim(1), o, [&](std::int64_t) { return std::pair{label, -1}; });
  return std::move(r[0]);
}

// Peaks of every class channel of maps [C, H, W] (device): post::find_peaks_per_class(maps, o) —
// label = channel, each channel with its own threshold, concatenated in channel order.
inline std::vector<post::scored_point> find_peaks_per_class(const device_tensor& maps, const post::peak_options& o = {}) {
  require(maps.rank() == 3, "peaks", "expected maps [C, H, W], got " + maps.shape().str());
  auto per = pipeline_detail::peaks_of_planes(maps.data(), maps.dim(0), maps.dim(1), maps.dim(2), o,
                                              [](std::int64_t p) { return std::pair{static_cast<int>(p), -1}; });
  std::vector<post::scored_point> out;
  for (auto& v : per) out.insert(out.end(), v.begin(), v.end());
  return out;
}

// 2D peaks of every frame of a movie [T, H, W] (device): post::find_peaks_per_frame(movie, o, label) —
// frame = t, each frame with its own threshold, concatenated in frame order.
inline std::vector<post::scored_point> find_peaks_per_frame(const device_tensor& movie, const post::peak_options& o = {},
                                                            int label = 0) {
  require(movie.rank() == 3, "peaks", "expected a movie [T, H, W], got " + movie.shape().str());
  auto per = pipeline_detail::peaks_of_planes(movie.data(), movie.dim(0), movie.dim(1), movie.dim(2), o,
                                              [label](std::int64_t t) { return std::pair{label, static_cast<int>(t)}; });
  std::vector<post::scored_point> out;
  for (auto& v : per) out.insert(out.end(), v.begin(), v.end());
  return out;
}

// A network's batch output [N, K, H, W] (device): one list per image, each what find_peaks_per_class
// gives for that image's [K, H, W]. One launch for the whole batch.
inline std::vector<std::vector<post::scored_point>> find_peaks_per_class_batch(const device_tensor& maps,
                                                                               const post::peak_options& o = {}) {
  require(maps.rank() == 4, "peaks", "expected maps [N, K, H, W], got " + maps.shape().str());
  const std::int64_t n = maps.dim(0), k = maps.dim(1);
  auto per = pipeline_detail::peaks_of_planes(maps.data(), n * k, maps.dim(2), maps.dim(3), o,
                                              [k](std::int64_t p) { return std::pair{static_cast<int>(p % k), -1}; });
  std::vector<std::vector<post::scored_point>> out(static_cast<std::size_t>(n));
  for (std::int64_t p = 0; p < n * k; ++p) {
    auto& v = per[static_cast<std::size_t>(p)];
    out[static_cast<std::size_t>(p / k)].insert(out[static_cast<std::size_t>(p / k)].end(), v.begin(), v.end());
  }
  return out;
}

// ============================================================================================
// Tiling and stitching
// ============================================================================================

// Extents or coordinates (t, y, x); 2D plans use t = 0 and an extent of 1.
struct extent3 {
  std::int64_t t = 1, y = 1, x = 1;
  [[nodiscard]] MICROCOUNT_HOST_DEVICE std::int64_t volume() const { return t * y * x; }
};

// One tile of a plan on the device: where its input box starts and the box of output it owns.
struct device_tile_box {
  extent3 origin{0, 0, 0}, own_begin{0, 0, 0}, own_end{1, 1, 1};
};

// infer::source_index on the device: the image coordinate of padded coordinate i (−1: a zero).
MICROCOUNT_HOST_DEVICE inline std::int64_t padded_source(std::int64_t i, std::int64_t extent, bool zero_padding) {
  if (i >= 0 && i < extent) return i;
  if (zero_padding) return -1;
  if (extent == 1) return 0;
  const std::int64_t period = 2 * (extent - 1);
  std::int64_t r = i % period;
  if (r < 0) r += period;
  return r < extent ? r : period - r;
}

// tiles [count, C, t, y, x] from image [C, T, H, W]: one thread per tile value (grid-stride).
struct gather_tiles_kernel {
  static constexpr const char* name = "gather_tiles";
  template <class Ctx>
  MICROCOUNT_HOST_DEVICE void operator()(const Ctx& ctx, const float* image, std::int64_t channels, extent3 image_ext,
                                         extent3 tile_ext, const device_tile_box* boxes, std::int64_t count,
                                         bool zero_padding, float* tiles) const {
    const std::int64_t per_tile = tile_ext.volume(), n = count * channels * per_tile;
    const std::int64_t stride = std::int64_t(ctx.grid_dim().x) * ctx.block_dim().x;
    for (std::int64_t i = std::int64_t(ctx.block_idx().x) * ctx.block_dim().x + ctx.thread_idx().x; i < n; i += stride) {
      const std::int64_t tile = i / (channels * per_tile), c = i / per_tile % channels, local = i % per_tile;
      const extent3 o = boxes[tile].origin;
      const std::int64_t st = padded_source(o.t + local / (tile_ext.y * tile_ext.x), image_ext.t, zero_padding);
      const std::int64_t sy = padded_source(o.y + local / tile_ext.x % tile_ext.y, image_ext.y, zero_padding);
      const std::int64_t sx = padded_source(o.x + local % tile_ext.x, image_ext.x, zero_padding);
      tiles[i] = (st < 0 || sy < 0 || sx < 0) ? 0.0f : image[((c * image_ext.t + st) * image_ext.y + sy) * image_ext.x + sx];
    }
  }
};

// output [K, T, H, W] ← the owned boxes of outputs [count, K, t, y, x]: one thread per owned value of
// the largest box (threads past a smaller box idle).
struct stitch_tiles_kernel {
  static constexpr const char* name = "stitch_tiles";
  template <class Ctx>
  MICROCOUNT_HOST_DEVICE void operator()(const Ctx& ctx, const float* outputs, std::int64_t channels, extent3 image_ext,
                                         extent3 tile_ext, const device_tile_box* boxes, std::int64_t count,
                                         std::int64_t largest_box, float* stitched) const {
    const std::int64_t n = count * channels * largest_box;
    const std::int64_t stride = std::int64_t(ctx.grid_dim().x) * ctx.block_dim().x;
    for (std::int64_t i = std::int64_t(ctx.block_idx().x) * ctx.block_dim().x + ctx.thread_idx().x; i < n; i += stride) {
      const std::int64_t tile = i / (channels * largest_box), k = i / largest_box % channels, j = i % largest_box;
      const device_tile_box b = boxes[tile];
      const extent3 own{b.own_end.t - b.own_begin.t, b.own_end.y - b.own_begin.y, b.own_end.x - b.own_begin.x};
      if (j >= own.volume()) continue;
      const std::int64_t t = b.own_begin.t + j / (own.y * own.x), y = b.own_begin.y + j / own.x % own.y,
                         x = b.own_begin.x + j % own.x;
      const std::int64_t from = (((tile * channels + k) * tile_ext.t + (t - b.origin.t)) * tile_ext.y + (y - b.origin.y)) * tile_ext.x +
                                (x - b.origin.x);
      stitched[((k * image_ext.t + t) * image_ext.y + y) * image_ext.x + x] = outputs[from];
    }
  }
};

namespace pipeline_detail {

template <int N>
extent3 as_extent3(const infer::extents<N>& e) {
  if constexpr (N == 2) return {1, e[0], e[1]};
  else return {e[0], e[1], e[2]};
}
template <int N>
extent3 as_coord3(const infer::extents<N>& e) {
  if constexpr (N == 2) return {0, e[0], e[1]};
  else return {e[0], e[1], e[2]};
}

// The boxes of plan.tiles[first, first + count) in device form (2D boxes span t = [0, 1)).
template <int N>
std::vector<device_tile_box> device_boxes(const infer::tile_plan<N>& plan, index_t first, index_t count, const char* where) {
  require(first >= 0 && count >= 1 && first + count <= plan.count(), where,
          "tiles [" + std::to_string(first) + ", " + std::to_string(first + count) + ") are not in the plan of " +
              std::to_string(plan.count()) + " tiles");
  std::vector<device_tile_box> boxes;
  for (index_t i = first; i < first + count; ++i) {
    const auto& t = plan.tiles[static_cast<std::size_t>(i)];
    device_tile_box b;
    b.origin = as_coord3<N>(t.origin);
    b.own_begin = as_coord3<N>(t.own_begin);
    b.own_end = N == 2 ? extent3{1, t.own_end[0], t.own_end[1]} : as_coord3<N>(t.own_end);
    boxes.push_back(b);
  }
  return boxes;
}

template <int N>
void check_spatial(const device_tensor& t, int lead, const infer::extents<N>& want, const char* where, const char* what) {
  bool ok = t.rank() == lead + N;
  for (int a = 0; ok && a < N; ++a) ok = t.dim(lead + a) == want[a];
  if (!ok) {
    std::string s = "[";
    for (int a = 0; a < N; ++a) s += (a ? ", " : "") + std::to_string(want[a]);
    throw error(where, std::string(what) + " " + t.shape().str() + " does not have the plan's extents " + s + "]");
  }
}

inline unsigned long elementwise_blocks(std::int64_t n) {
  return std::min<std::int64_t>(blocks_for(n, 256).x, 4096);  // grid-stride covers the rest
}

}  // namespace pipeline_detail

// Network inputs [count, C, t...] of plan.tiles[first, first + count) cut from image [C, E...] (device),
// padded as `pad` (reflect or zero): bit-equal to infer::detail::gather_tile of each tile. N = 2: image
// [C, H, W], tiles [count, C, th, tw]; N = 3: movie [C, T, H, W], tiles [count, C, tt, th, tw].
template <int N>
device_tensor gather_tiles(const device_tensor& image, const infer::tile_plan<N>& plan, index_t first, index_t count,
                           infer::padding pad = infer::padding::reflect) {
  const char* where = "gather_tiles";
  pipeline_detail::check_spatial<N>(image, 1, plan.image, where, "image");
  const auto boxes = pipeline_detail::device_boxes<N>(plan, first, count, where);
  auto d_boxes = pipeline_detail::upload_array(boxes);  // [count]
  shape s{count, image.dim(0)};
  s.rank = N + 2;
  for (int a = 0; a < N; ++a) s[2 + a] = plan.tile[a];
  device_tensor tiles(s);  // [count, C, t...]
  const std::int64_t n = tiles.size();
  launch(gather_tiles_kernel{}, {unsigned(pipeline_detail::elementwise_blocks(n))}, {256}, 0, image.data(), image.dim(0),
         pipeline_detail::as_extent3<N>(plan.image), pipeline_detail::as_extent3<N>(plan.tile),
         static_cast<const device_tile_box*>(d_boxes.data()), count, pad == infer::padding::zero, tiles.data());
  return tiles;
}

// Writes the owned boxes of plan.tiles[first, first + count) from outputs [count, K, t...] (device) into
// stitched [K, E...] (device): bit-equal to infer::detail::scatter_tile of each tile. Over all tiles of
// the plan every pixel of stitched is written exactly once.
template <int N>
void stitch_tiles(const device_tensor& outputs, const infer::tile_plan<N>& plan, index_t first, device_tensor& stitched) {
  const char* where = "stitch_tiles";
  require(outputs.rank() == N + 2, where, "expected tile outputs [count, K, tile...], got " + outputs.shape().str());
  pipeline_detail::check_spatial<N>(outputs, 2, plan.tile, where, "tile outputs");
  pipeline_detail::check_spatial<N>(stitched, 1, plan.image, where, "output");
  require(stitched.dim(0) == outputs.dim(1), where,
          "output " + stitched.shape().str() + " and tile outputs " + outputs.shape().str() + " differ in channels");
  const index_t count = outputs.dim(0);
  const auto boxes = pipeline_detail::device_boxes<N>(plan, first, count, where);
  std::int64_t largest = 0;
  for (const auto& b : boxes)
    largest = std::max(largest, (b.own_end.t - b.own_begin.t) * (b.own_end.y - b.own_begin.y) * (b.own_end.x - b.own_begin.x));
  auto d_boxes = pipeline_detail::upload_array(boxes);  // [count]
  const std::int64_t n = count * outputs.dim(1) * largest;
  if (n == 0) return;
  launch(stitch_tiles_kernel{}, {unsigned(pipeline_detail::elementwise_blocks(n))}, {256}, 0, outputs.data(),
         outputs.dim(1), pipeline_detail::as_extent3<N>(plan.image), pipeline_detail::as_extent3<N>(plan.tile),
         static_cast<const device_tile_box*>(d_boxes.data()), count, largest, stitched.data());
}

// ---- test-time symmetries of tiles (infer::predict's flips and d4) ---------------------------------

// A symmetry of the image plane (infer::plane_symmetry has these members): flip rows, flip columns,
// then transpose.
template <class S>
concept plane_symmetry_like = requires(const S& g) {
  { g.flip_rows } -> std::convertible_to<bool>;
  { g.flip_cols } -> std::convertible_to<bool>;
  { g.transpose } -> std::convertible_to<bool>;
};

// The symmetry's pixel map on one rows × cols plane: source pixel (r, c) lands at `transformed_index`
// of the transformed plane (cols × rows when transposed), as infer::detail::for_each_plane_pixel.
struct plane_map {
  bool flip_rows = false, flip_cols = false, transpose = false;
  std::int64_t rows = 1, cols = 1;
  [[nodiscard]] MICROCOUNT_HOST_DEVICE std::int64_t transformed_index(std::int64_t src) const {
    const std::int64_t r = src / cols, c = src % cols;
    const std::int64_t fr = flip_rows ? rows - 1 - r : r, fc = flip_cols ? cols - 1 - c : c;
    return transpose ? fc * rows + fr : fr * cols + fc;
  }
  [[nodiscard]] MICROCOUNT_HOST_DEVICE std::int64_t source_index(std::int64_t dst) const {
    const std::int64_t fr = transpose ? dst % rows : dst / cols, fc = transpose ? dst / rows : dst % cols;
    return (flip_rows ? rows - 1 - fr : fr) * cols + (flip_cols ? cols - 1 - fc : fc);
  }
};

// y = g(x) over planes: one thread per value of y (grid-stride).
struct apply_symmetry_kernel {
  static constexpr const char* name = "apply_symmetry";
  template <class Ctx>
  MICROCOUNT_HOST_DEVICE void operator()(const Ctx& ctx, const float* x, plane_map g, std::int64_t n, float* y) const {
    const std::int64_t plane = g.rows * g.cols, stride = std::int64_t(ctx.grid_dim().x) * ctx.block_dim().x;
    for (std::int64_t i = std::int64_t(ctx.block_idx().x) * ctx.block_dim().x + ctx.thread_idx().x; i < n; i += stride)
      y[i] = x[i / plane * plane + g.source_index(i % plane)];
  }
};

// acc += g⁻¹(y) over planes: one thread per value of acc (each adds one value: no races).
struct accumulate_inverse_kernel {
  static constexpr const char* name = "accumulate_inverse";
  template <class Ctx>
  MICROCOUNT_HOST_DEVICE void operator()(const Ctx& ctx, const float* y, plane_map g, std::int64_t n, float* acc) const {
    const std::int64_t plane = g.rows * g.cols, stride = std::int64_t(ctx.grid_dim().x) * ctx.block_dim().x;
    for (std::int64_t i = std::int64_t(ctx.block_idx().x) * ctx.block_dim().x + ctx.thread_idx().x; i < n; i += stride)
      acc[i] += y[i / plane * plane + g.transformed_index(i % plane)];
  }
};

// g(x) of x [n, C, lead..., rows, cols] (device): infer::detail::apply_symmetry, bit-equal.
template <plane_symmetry_like S>
device_tensor apply_symmetry(const device_tensor& x, const S& g) {
  require(x.rank() >= 2, "apply_symmetry", "expected planes [..., rows, cols], got " + x.shape().str());
  shape s = x.shape();
  const plane_map map{bool(g.flip_rows), bool(g.flip_cols), bool(g.transpose), s[s.rank - 2], s[s.rank - 1]};
  if (map.transpose) std::swap(s[s.rank - 2], s[s.rank - 1]);
  device_tensor y(s);  // [n, C, lead..., rows', cols']
  if (y.size() > 0)
    launch(apply_symmetry_kernel{}, {unsigned(pipeline_detail::elementwise_blocks(y.size()))}, {256}, 0, x.data(), map,
           y.size(), y.data());
  return y;
}

// acc [n, K, lead..., rows, cols] += g⁻¹(y), y [n, K, lead..., rows', cols'] the model's output for g(x)
// (device): infer::detail::accumulate_inverse, bit-equal.
template <plane_symmetry_like S>
void accumulate_inverse(const device_tensor& y, const S& g, device_tensor& acc) {
  shape expect = acc.shape();
  require(expect.rank >= 2, "accumulate_inverse", "expected planes [..., rows, cols], got " + expect.str());
  if (g.transpose) std::swap(expect[expect.rank - 2], expect[expect.rank - 1]);
  require(y.shape() == expect, "accumulate_inverse", "output " + y.shape().str() + " does not match " + expect.str());
  const plane_map map{bool(g.flip_rows), bool(g.flip_cols), bool(g.transpose), acc.dim(acc.rank() - 2), acc.dim(acc.rank() - 1)};
  if (acc.size() > 0)
    launch(accumulate_inverse_kernel{}, {unsigned(pipeline_detail::elementwise_blocks(acc.size()))}, {256}, 0, y.data(), map,
           acc.size(), acc.data());
}

}  // namespace microcount::cuda
