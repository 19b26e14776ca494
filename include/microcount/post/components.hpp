#pragma once
// Connected components of binary maps: 2D [H, W] with 4- or 8-connectivity, 3D [T, H, W] with 6- or
// 26-connectivity. Labels are numbered 1..n in raster order of each component's first pixel (as
// scipy.ndimage.label and skimage.measure.label number them); 0 is background.
//
// Run-based two-pass labelling: pass 1 finds the foreground runs of every row (rows of different frames
// in parallel) and unites runs that touch a run of an earlier neighbouring row; pass 2 writes the
// labels and accumulates per-component statistics from the runs. Work is O(pixels) for the scan and
// O(runs) for everything else, so sparse volumes (1% foreground) label at memory speed.
#include <algorithm>
#include <array>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include <xsimd/xsimd.hpp>
#include <xtensor/xtensor.hpp>

#include "microcount/core/error.hpp"
#include "microcount/core/parallel.hpp"
#include "microcount/post/union_find.hpp"

namespace microcount::post {

// Per-component statistics; coordinates in axis order: (y, x) for 2D, (t, y, x) for 3D.
template <std::size_t N>
struct component {
  std::int64_t size = 0;                          // pixels
  std::array<double, N> centroid{};               // mean coordinates
  std::array<std::int64_t, N> box_min{};          // inclusive bounding box
  std::array<std::int64_t, N> box_max{};
  double intensity_sum = 0;                       // with intensities: sum over the component
  std::array<double, N> weighted_centroid{};      // with intensities: intensity-weighted mean (else = centroid)
};

template <std::size_t N>
struct labelling {
  xt::xtensor<std::int32_t, N> labels;      // [H, W] or [T, H, W]: 0 background, i+1 for components[i]
  std::vector<component<N>> components;     // in label order
};

// The default foreground test: value != 0.
struct nonzero {
  template <class T>
  constexpr bool operator()(const T& v) const { return v != T(0); }
};

// A foreground test for maps of T: called with a value, answers whether it belongs to an object.
template <class F, class T>
concept foreground_test = std::predicate<const F&, const T&>;

namespace detail {

template <class V>
inline constexpr bool simd_scalar =
    std::is_same_v<V, float> || std::is_same_v<V, double> || std::is_same_v<V, std::int8_t> ||
    std::is_same_v<V, std::uint8_t> || std::is_same_v<V, std::int16_t> || std::is_same_v<V, std::uint16_t> ||
    std::is_same_v<V, std::int32_t> || std::is_same_v<V, std::uint32_t> || std::is_same_v<V, std::int64_t> ||
    std::is_same_v<V, std::uint64_t>;

// The first x' >= x with fg(row[x']), or w. With the default predicate, whole batches of zeros are
// skipped at once: masks of sparse objects are mostly background.
template <class V, class Foreground>
std::int64_t next_foreground(const V* row, std::int64_t x, std::int64_t w, const Foreground& fg) {
  if constexpr (std::is_same_v<Foreground, nonzero> && simd_scalar<V>) {
    using batch = xsimd::batch<V>;
    constexpr auto width = static_cast<std::int64_t>(batch::size);
    const batch zero(V(0));
    while (x + width <= w && !xsimd::any(batch::load_unaligned(row + x) != zero)) x += width;
  }
  while (x < w && !fg(row[x])) ++x;
  return x;
}

struct run {
  std::int32_t x0, x1;  // inclusive columns
};

// Unites the runs of row `cur` with those of an earlier row `prev` they touch. `reach` = 1 when diagonal
// neighbours count along x, 0 when only overlapping columns touch.
inline void unite_rows(const std::vector<run>& runs, std::size_t cur_begin, std::size_t cur_end,
                       std::size_t prev_begin, std::size_t prev_end, std::int32_t reach, union_find& sets) {
  std::size_t p = prev_begin;
  for (std::size_t c = cur_begin; c < cur_end; ++c) {
    const auto lo = runs[c].x0 - reach, hi = runs[c].x1 + reach;
    while (p < prev_end && runs[p].x1 < lo) ++p;  // runs ending left of this one cannot touch later ones either
    for (std::size_t q = p; q < prev_end && runs[q].x0 <= hi; ++q)
      sets.unite(static_cast<std::uint32_t>(c), static_cast<std::uint32_t>(q));
  }
}

template <std::size_t N, class V, class Foreground>
labelling<N> label_runs(const xt::xtensor<V, N>& mask, const float* intensity, int connectivity, Foreground fg) {
  static_assert(N == 2 || N == 3, "connected_components: 2D [H, W] or 3D [T, H, W] maps only");
  static_assert(foreground_test<Foreground, V>, "connected_components: foreground(value) must return bool");
  const bool full = (N == 2) ? connectivity == 8 : connectivity == 26;
  if (N == 2)
    require(connectivity == 4 || connectivity == 8, "connected_components",
            "2D connectivity must be 4 or 8 (got " + std::to_string(connectivity) + ")");
  else
    require(connectivity == 6 || connectivity == 26, "connected_components",
            "3D connectivity must be 6 or 26 (got " + std::to_string(connectivity) + ")");
  const std::int64_t T = N == 3 ? static_cast<std::int64_t>(mask.shape()[0]) : 1;
  const auto h = static_cast<std::int64_t>(mask.shape()[N - 2]), w = static_cast<std::int64_t>(mask.shape()[N - 1]);
  require(w < std::numeric_limits<std::int32_t>::max(), "connected_components", "rows are too long");
  const V* data = mask.data();

  // Pass 1a: runs of every row, frames in parallel.
  std::vector<std::vector<run>> frame_runs(static_cast<std::size_t>(T));
  std::vector<std::vector<std::uint32_t>> frame_row_start(static_cast<std::size_t>(T));  // [H + 1] per frame
  parallel_for(0, T, [&](std::int64_t t) {
    auto& runs = frame_runs[static_cast<std::size_t>(t)];
    auto& starts = frame_row_start[static_cast<std::size_t>(t)];
    starts.resize(static_cast<std::size_t>(h + 1));
    for (std::int64_t y = 0; y < h; ++y) {
      starts[static_cast<std::size_t>(y)] = static_cast<std::uint32_t>(runs.size());
      const V* row = data + (t * h + y) * w;
      std::int64_t x = 0;
      while (x < w) {
        x = next_foreground(row, x, w, fg);
        if (x == w) break;
        const std::int64_t x0 = x;
        while (x < w && fg(row[x])) ++x;
        runs.push_back({static_cast<std::int32_t>(x0), static_cast<std::int32_t>(x - 1)});
      }
    }
    starts[static_cast<std::size_t>(h)] = static_cast<std::uint32_t>(runs.size());
  });
  std::vector<run> runs;
  std::vector<std::size_t> row_start(static_cast<std::size_t>(T * h + 1));  // [T·H + 1] into runs
  for (std::int64_t t = 0; t < T; ++t) {
    const auto base = runs.size();
    require(base + frame_runs[static_cast<std::size_t>(t)].size() < std::numeric_limits<std::uint32_t>::max(),
            "connected_components", "too many foreground runs");
    for (std::int64_t y = 0; y < h; ++y) row_start[static_cast<std::size_t>(t * h + y)] = base + frame_row_start[static_cast<std::size_t>(t)][static_cast<std::size_t>(y)];
    runs.insert(runs.end(), frame_runs[static_cast<std::size_t>(t)].begin(), frame_runs[static_cast<std::size_t>(t)].end());
    std::vector<run>().swap(frame_runs[static_cast<std::size_t>(t)]);
  }
  row_start.back() = runs.size();

  // Pass 1b: unite with earlier neighbouring rows (the raster-earlier half of the neighbourhood).
  union_find sets(runs.size());
  auto rows = [&](std::int64_t t, std::int64_t y) { return std::make_pair(row_start[static_cast<std::size_t>(t * h + y)], row_start[static_cast<std::size_t>(t * h + y + 1)]); };
  const std::int32_t reach = full ? 1 : 0;
  for (std::int64_t t = 0; t < T; ++t)
    for (std::int64_t y = 0; y < h; ++y) {
      const auto [cb, ce] = rows(t, y);
      if (cb == ce) continue;
      if (y > 0) {
        const auto [pb, pe] = rows(t, y - 1);
        unite_rows(runs, cb, ce, pb, pe, reach, sets);
      }
      if (N == 3 && t > 0) {
        const auto [pb, pe] = rows(t - 1, y);
        unite_rows(runs, cb, ce, pb, pe, reach, sets);
        if (full) {
          for (std::int64_t oy : {-1, 1}) {
            if (y + oy < 0 || y + oy >= h) continue;
            const auto [qb, qe] = rows(t - 1, y + oy);
            unite_rows(runs, cb, ce, qb, qe, 1, sets);
          }
        }
      }
    }

  // Labels in order of each set's first run (its root, the smallest run index).
  std::vector<std::int32_t> run_label(runs.size());
  std::int32_t count = 0;
  for (std::size_t r = 0; r < runs.size(); ++r) {
    const auto root = sets.find(static_cast<std::uint32_t>(r));
    if (root == r) {
      require(count < std::numeric_limits<std::int32_t>::max(), "connected_components", "too many components");
      run_label[r] = ++count;
    } else {
      run_label[r] = run_label[root];
    }
  }

  labelling<N> out;
  out.labels = xt::xtensor<std::int32_t, N>::from_shape(mask.shape());
  std::int32_t* lab = out.labels.data();
  parallel_for(0, T, [&](std::int64_t t) {
    std::fill(lab + t * h * w, lab + (t + 1) * h * w, 0);
    for (std::int64_t y = 0; y < h; ++y) {
      const auto [b, e] = rows(t, y);
      for (std::size_t r = b; r < e; ++r)
        std::fill(lab + (t * h + y) * w + runs[r].x0, lab + (t * h + y) * w + runs[r].x1 + 1, run_label[r]);
    }
  });

  // Statistics from the runs (intensity-weighted ones need the pixels of each run).
  std::vector<std::array<double, N>> sums(static_cast<std::size_t>(count), std::array<double, N>{});
  std::vector<std::array<double, N>> wsums(intensity ? static_cast<std::size_t>(count) : 0, std::array<double, N>{});
  out.components.resize(static_cast<std::size_t>(count));
  for (auto& c : out.components) {
    c.box_min.fill(std::numeric_limits<std::int64_t>::max());
    c.box_max.fill(std::numeric_limits<std::int64_t>::min());
  }
  for (std::int64_t t = 0; t < T; ++t)
    for (std::int64_t y = 0; y < h; ++y) {
      const auto [b, e] = rows(t, y);
      for (std::size_t r = b; r < e; ++r) {
        const auto k = static_cast<std::size_t>(run_label[r] - 1);
        auto& c = out.components[k];
        const std::int64_t len = runs[r].x1 - runs[r].x0 + 1;
        const double xsum = 0.5 * static_cast<double>(runs[r].x0 + runs[r].x1) * static_cast<double>(len);
        c.size += len;
        std::array<std::int64_t, N> lo, hi;
        if constexpr (N == 3) {
          lo = {t, y, runs[r].x0};
          hi = {t, y, runs[r].x1};
          sums[k][0] += static_cast<double>(t * len);
        } else {
          lo = {y, runs[r].x0};
          hi = {y, runs[r].x1};
        }
        sums[k][N - 2] += static_cast<double>(y * len);
        sums[k][N - 1] += xsum;
        for (std::size_t a = 0; a < N; ++a) {
          c.box_min[a] = std::min(c.box_min[a], lo[a]);
          c.box_max[a] = std::max(c.box_max[a], hi[a]);
        }
        if (intensity) {
          const float* v = intensity + (t * h + y) * w;
          double s = 0, sx = 0;
          for (std::int32_t x = runs[r].x0; x <= runs[r].x1; ++x) {
            s += v[x];
            sx += static_cast<double>(v[x]) * x;
          }
          c.intensity_sum += s;
          if constexpr (N == 3) wsums[k][0] += s * static_cast<double>(t);
          wsums[k][N - 2] += s * static_cast<double>(y);
          wsums[k][N - 1] += sx;
        }
      }
    }
  for (std::size_t k = 0; k < out.components.size(); ++k) {
    auto& c = out.components[k];
    for (std::size_t a = 0; a < N; ++a) {
      c.centroid[a] = sums[k][a] / static_cast<double>(c.size);
      // A component whose intensities sum to 0 has no weighted centre: fall back to the plain one.
      c.weighted_centroid[a] = (intensity && c.intensity_sum != 0) ? wsums[k][a] / c.intensity_sum : c.centroid[a];
    }
  }
  return out;
}

}  // namespace detail

// Components of the pixels where fg(value) holds (default: value != 0). connectivity: 4 or 8 for
// [H, W], 6 or 26 for [T, H, W].
template <class T, std::size_t N, class Foreground = nonzero>
labelling<N> connected_components(const xt::xtensor<T, N>& mask, int connectivity, Foreground fg = {}) {
  return detail::label_runs<N>(mask, nullptr, connectivity, fg);
}

// Same, with intensity-weighted centroids and intensity sums from `intensity` (same shape as mask).
template <class T, std::size_t N, class Foreground = nonzero>
labelling<N> connected_components(const xt::xtensor<T, N>& mask, const xt::xtensor<float, N>& intensity,
                                  int connectivity, Foreground fg = {}) {
  require(mask.shape() == intensity.shape(), "connected_components", "mask and intensity shapes differ");
  return detail::label_runs<N>(mask, intensity.data(), connectivity, fg);
}

}  // namespace microcount::post
