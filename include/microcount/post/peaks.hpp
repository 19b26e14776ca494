#pragma once
// Local-maximum peaks of density or probability maps: 2D maps [H, W], per-class maps [C, H, W],
// per-frame peaks of movies [T, H, W], and 3D peaks of volumes [T, H, W].
//
// Semantics follow scikit-image's peak_local_max, with the differences written down in
// docs/targets_and_peaks.md:
//   1. threshold = max(threshold_abs (default: the map's minimum), threshold_rel × the map's maximum);
//      a pixel can be a peak only when its value is strictly above the threshold.
//   2. a candidate equals the maximum of its (2d+1)-wide Chebyshev window (clipped at the edges) and lies
//      at least `exclude_border` pixels from every edge.
//   3. plateaus: 8-connected (26 in 3D) candidates form ONE peak, placed at their centroid
//      (skimage reports every pixel of a plateau that survives step 4).
//   4. peaks sorted by value (ties: raster order of their first pixel) are accepted greedily; a peak
//      closer than d to an accepted one is dropped (Chebyshev distance as skimage, or Euclidean).
//   5. single-pixel peaks are refined to sub-pixel precision from their 3×3 neighbourhood.
// Candidates come from a separable max filter vectorised with xsimd or, when at most 1/16 of the
// pixels exceed the threshold (a network output with a threshold), from direct window checks of those
// pixels only; both give the same candidates. Volumes are split into frame chunks that run in parallel
// and whose candidates are concatenated in raster order, so the result does not depend on threads.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include <xsimd/xsimd.hpp>
#include <xtensor/xtensor.hpp>

#include "microcount/core/error.hpp"
#include "microcount/core/parallel.hpp"
#include "microcount/post/scored_point.hpp"
#include "microcount/post/spatial_grid.hpp"
#include "microcount/post/union_find.hpp"

// GCC 12 reports a false -Wmaybe-uninitialized inside avx512fintrin.h (_mm512_undefined_*, GCC bug 105593)
// wherever xsimd's AVX-512 kernels are inlined; silence it for these kernels only.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace microcount::post {

enum class spacing_norm { chebyshev, euclidean };

// Sub-pixel refinement of single-pixel peaks, per axis from the 3 values across the peak:
//   quadratic: vertex of the parabola through them (exact for quadratic tops);
//   gaussian:  vertex of the parabola through their logarithms (exact for sampled Gaussians;
//              falls back to quadratic when a value is <= 0);
//   centroid:  weighted centroid of the 3×3 neighbourhood, weights = value − its minimum.
enum class subpixel { none, quadratic, gaussian, centroid };

struct peak_options {
  int min_distance = 1;                  // d >= 1: window 2d+1, and no two peaks closer than d
  int min_distance_frames = -1;          // 3D only: d along time (-1: same as min_distance)
  std::optional<float> threshold_abs;    // default: the map's minimum
  std::optional<float> threshold_rel;    // fraction of the map's maximum
  int exclude_border = -1;               // pixels dropped at each edge; -1: min_distance (frames: d_t)
  spacing_norm norm = spacing_norm::chebyshev;
  subpixel refine = subpixel::gaussian;
  std::size_t max_peaks = std::numeric_limits<std::size_t>::max();  // per map (per class, per frame)
};

namespace detail {

using float_batch = xsimd::batch<float>;

// out[x] = max of in[x-d .. x+d] clipped to [0, n).
inline void window_max_row(const float* in, float* out, std::int64_t n, std::int64_t d) {
  constexpr auto width = static_cast<std::int64_t>(float_batch::size);
  auto scalar_at = [&](std::int64_t x) {
    float m = in[x];
    for (std::int64_t k = std::max<std::int64_t>(0, x - d); k <= std::min(n - 1, x + d); ++k) m = std::max(m, in[k]);
    out[x] = m;
  };
  std::int64_t x = 0;
  for (; x < std::min(d, n); ++x) scalar_at(x);
  // Interior: the whole window is inside the row, one unaligned load per offset.
  for (; x + width <= n - d; x += width) {
    float_batch m = float_batch::load_unaligned(in + x - d);
    for (std::int64_t k = -d + 1; k <= d; ++k) m = xsimd::max(m, float_batch::load_unaligned(in + x + k));
    m.store_unaligned(out + x);
  }
  for (; x < n; ++x) scalar_at(x);
}

// out[i] = max(out[i], in[i]) for i in [0, n).
inline void max_into(float* out, const float* in, std::int64_t n) {
  constexpr auto width = static_cast<std::int64_t>(float_batch::size);
  std::int64_t i = 0;
  for (; i + width <= n; i += width)
    xsimd::max(float_batch::load_unaligned(out + i), float_batch::load_unaligned(in + i)).store_unaligned(out + i);
  for (; i < n; ++i) out[i] = std::max(out[i], in[i]);
}

// Separable (2d+1)×(2d+1) max filter of one plane [H, W]; tmp is [H, W] scratch.
inline void window_max_plane(const float* in, float* out, float* tmp, std::int64_t h, std::int64_t w, std::int64_t d) {
  for (std::int64_t y = 0; y < h; ++y) window_max_row(in + y * w, tmp + y * w, w, d);
  for (std::int64_t y = 0; y < h; ++y) {
    float* o = out + y * w;
    const std::int64_t y0 = std::max<std::int64_t>(0, y - d), y1 = std::min(h - 1, y + d);
    std::copy(tmp + y0 * w, tmp + (y0 + 1) * w, o);
    for (std::int64_t k = y0 + 1; k <= y1; ++k) max_into(o, tmp + k * w, w);
  }
}

struct candidate {
  std::int64_t index;  // linear index in the searched volume, raster order
  float value;
};

// Appends the pixels x in [x0, x1) of one row with v > threshold and v == window max.
inline void collect_row(const float* v, const float* m, std::int64_t x0, std::int64_t x1, float threshold,
                        std::int64_t base, std::vector<candidate>& out) {
  constexpr auto width = static_cast<std::int64_t>(float_batch::size);
  const float_batch thr(threshold);
  std::int64_t x = x0;
  for (; x + width <= x1; x += width) {
    const auto vb = float_batch::load_unaligned(v + x);
    // Most of a map is below the threshold or below its window maximum: skip whole batches.
    if (!xsimd::any((vb > thr) && (vb == float_batch::load_unaligned(m + x)))) continue;
    for (std::int64_t k = x; k < x + width; ++k)
      if (v[k] > threshold && v[k] == m[k]) out.push_back({base + k, v[k]});
  }
  for (; x < x1; ++x)
    if (v[x] > threshold && v[x] == m[x]) out.push_back({base + x, v[x]});
}

struct volume_shape {
  std::int64_t t, h, w;  // frames (1 for a 2D map), rows, columns
};

struct peak_search {
  std::int64_t d = 1, dt = 0;          // dt = 0: a 2D search (no time neighbourhood)
  std::int64_t border = 0, border_t = 0;
  float threshold = 0;
};

struct value_range {
  float lo = std::numeric_limits<float>::infinity(), hi = -std::numeric_limits<float>::infinity();
  bool finite = true;
};

// Minimum, maximum and finiteness of data[0, n), vectorised: Σ (v − v) stays 0 exactly when every v is finite.
inline value_range scan_range(const float* data, std::int64_t n) {
  constexpr auto width = static_cast<std::int64_t>(float_batch::size);
  value_range r;
  std::int64_t i = 0;
  if (n >= width) {
    float_batch lo = float_batch::load_unaligned(data), hi = lo, nan_trap(0.0f);
    for (; i + width <= n; i += width) {
      const auto v = float_batch::load_unaligned(data + i);
      lo = xsimd::min(lo, v);
      hi = xsimd::max(hi, v);
      nan_trap += v - v;
    }
    std::array<float, float_batch::size> l, h, t;
    lo.store_unaligned(l.data());
    hi.store_unaligned(h.data());
    nan_trap.store_unaligned(t.data());
    for (std::size_t k = 0; k < l.size(); ++k) {
      r.lo = std::min(r.lo, l[k]);
      r.hi = std::max(r.hi, h[k]);
      r.finite = r.finite && t[k] == 0.0f;
    }
  }
  for (; i < n; ++i) {
    r.finite = r.finite && std::isfinite(data[i]);
    r.lo = std::min(r.lo, data[i]);
    r.hi = std::max(r.hi, data[i]);
  }
  return r;
}

// Resolves the options against the map: window sizes, borders and the threshold (step 1).
// The map is scanned in `chunks` parallel pieces; a non-finite value is an error naming its index.
inline peak_search plan_search(const float* data, std::int64_t n, const peak_options& o, bool volumetric,
                               const char* where, std::int64_t chunks = 1) {
  require(o.min_distance >= 1, where, "min_distance must be >= 1 (got " + std::to_string(o.min_distance) + ")");
  peak_search s;
  s.d = o.min_distance;
  s.dt = volumetric ? (o.min_distance_frames < 0 ? o.min_distance : o.min_distance_frames) : 0;
  require(!volumetric || s.dt >= 1, where, "min_distance_frames must be >= 1 for 3D peaks");
  require(o.exclude_border >= -1, where, "exclude_border must be >= 0, or -1 for min_distance");
  s.border = o.exclude_border < 0 ? s.d : o.exclude_border;
  s.border_t = volumetric ? (o.exclude_border < 0 ? s.dt : o.exclude_border) : 0;
  require(!o.threshold_rel || std::isfinite(*o.threshold_rel), where, "threshold_rel is not finite");
  require(!o.threshold_abs || !std::isnan(*o.threshold_abs), where, "threshold_abs is NaN");
  chunks = std::max<std::int64_t>(1, std::min(chunks, n));
  std::vector<value_range> parts(static_cast<std::size_t>(chunks));
  parallel_for(0, chunks, [&](std::int64_t k) {
    parts[static_cast<std::size_t>(k)] = scan_range(data + n * k / chunks, n * (k + 1) / chunks - n * k / chunks);
  });
  value_range all;
  for (const auto& p : parts) {
    all.lo = std::min(all.lo, p.lo);
    all.hi = std::max(all.hi, p.hi);
    all.finite = all.finite && p.finite;
  }
  if (!all.finite)
    for (std::int64_t i = 0; i < n; ++i)
      if (!std::isfinite(data[i])) throw error(where, "the map has a non-finite value at index " + std::to_string(i));
  float thr = o.threshold_abs.value_or(all.lo);
  if (o.threshold_rel) thr = std::max(thr, *o.threshold_rel * all.hi);
  s.threshold = thr;
  return s;
}

// True when at most `limit` of data[0, n) exceed the threshold (stops counting past the limit).
inline bool few_above(const float* data, std::int64_t n, float threshold, std::int64_t limit) {
  constexpr auto width = static_cast<std::int64_t>(float_batch::size);
  const float_batch thr(threshold);
  std::int64_t count = 0, i = 0;
  for (; i + width <= n; i += width) {
    const auto v = float_batch::load_unaligned(data + i);
    if (!xsimd::any(v > thr)) continue;
    for (std::int64_t k = i; k < i + width; ++k) count += data[k] > threshold ? 1 : 0;
    if (count > limit) return false;
  }
  for (; i < n; ++i) count += data[i] > threshold ? 1 : 0;
  return count <= limit;
}

// Whether v at (t, y, x) is >= every value of its window, tried on the 3×3(×3) neighbours first
// because on a slope one of them is higher: most pixels are rejected after a few reads.
inline bool is_window_max(const float* data, const volume_shape& shape, const peak_search& s, std::int64_t t,
                          std::int64_t y, std::int64_t x) {
  const std::int64_t plane = shape.h * shape.w;
  const float v = data[t * plane + y * shape.w + x];
  const std::int64_t t0 = std::max<std::int64_t>(0, t - s.dt), t1 = std::min(shape.t - 1, t + s.dt);
  const std::int64_t y0 = std::max<std::int64_t>(0, y - s.d), y1 = std::min(shape.h - 1, y + s.d);
  const std::int64_t x0 = std::max<std::int64_t>(0, x - s.d), x1 = std::min(shape.w - 1, x + s.d);
  for (std::int64_t tt = std::max(t0, t - 1); tt <= std::min(t1, t + 1); ++tt)
    for (std::int64_t yy = std::max(y0, y - 1); yy <= std::min(y1, y + 1); ++yy)
      for (std::int64_t xx = std::max(x0, x - 1); xx <= std::min(x1, x + 1); ++xx)
        if (data[tt * plane + yy * shape.w + xx] > v) return false;
  for (std::int64_t tt = t0; tt <= t1; ++tt)
    for (std::int64_t yy = y0; yy <= y1; ++yy) {
      const float* row = data + tt * plane + yy * shape.w;
      for (std::int64_t xx = x0; xx <= x1; ++xx)
        if (row[xx] > v) return false;
    }
  return true;
}

// Candidates of frames [t0, t1) by direct window checks of the pixels above the threshold.
inline void collect_sparse(const float* data, const volume_shape& shape, const peak_search& s, std::int64_t t0,
                           std::int64_t t1, std::vector<candidate>& out) {
  constexpr auto width = static_cast<std::int64_t>(float_batch::size);
  const float_batch thr(s.threshold);
  const std::int64_t plane = shape.h * shape.w;
  for (std::int64_t t = std::max(t0, s.border_t); t < std::min(t1, shape.t - s.border_t); ++t)
    for (std::int64_t y = s.border; y < shape.h - s.border; ++y) {
      const float* row = data + t * plane + y * shape.w;
      const std::int64_t x1 = shape.w - s.border;
      auto visit = [&](std::int64_t x) {
        if (row[x] > s.threshold && is_window_max(data, shape, s, t, y, x)) out.push_back({t * plane + y * shape.w + x, row[x]});
      };
      std::int64_t x = s.border;
      for (; x + width <= x1; x += width) {
        if (!xsimd::any(float_batch::load_unaligned(row + x) > thr)) continue;
        for (std::int64_t k = x; k < x + width; ++k) visit(k);
      }
      for (; x < x1; ++x) visit(x);
    }
}

// Maps with at most this share of pixels above the threshold take the sparse path.
inline constexpr std::int64_t sparse_share = 16;

inline double parabola_vertex(double fm, double f0, double fp) {
  const double curvature = fm - 2 * f0 + fp;
  if (!(curvature < 0)) return 0;  // not a strict maximum along this axis: no shift
  return std::clamp(0.5 * (fm - fp) / curvature, -0.5, 0.5);
}

inline double axis_offset(double fm, double f0, double fp, subpixel how) {
  if (how == subpixel::gaussian && fm > 0 && f0 > 0 && fp > 0)
    return parabola_vertex(std::log(fm), std::log(f0), std::log(fp));
  return parabola_vertex(fm, f0, fp);
}

// Sub-pixel (dy, dx) of a single-pixel peak at (y, x) of plane p [H, W].
inline std::pair<double, double> refine_peak(const float* p, std::int64_t h, std::int64_t w, std::int64_t y,
                                             std::int64_t x, subpixel how) {
  auto at = [&](std::int64_t yy, std::int64_t xx) { return static_cast<double>(p[yy * w + xx]); };
  if (how == subpixel::none) return {0.0, 0.0};
  if (how == subpixel::centroid) {
    const std::int64_t y0 = std::max<std::int64_t>(0, y - 1), y1 = std::min(h - 1, y + 1);
    const std::int64_t x0 = std::max<std::int64_t>(0, x - 1), x1 = std::min(w - 1, x + 1);
    double lowest = std::numeric_limits<double>::infinity();
    for (auto yy = y0; yy <= y1; ++yy)
      for (auto xx = x0; xx <= x1; ++xx) lowest = std::min(lowest, at(yy, xx));
    double sw = 0, sy = 0, sx = 0;
    for (auto yy = y0; yy <= y1; ++yy)
      for (auto xx = x0; xx <= x1; ++xx) {
        const double wgt = at(yy, xx) - lowest;
        sw += wgt;
        sy += wgt * static_cast<double>(yy - y);
        sx += wgt * static_cast<double>(xx - x);
      }
    if (!(sw > 0)) return {0.0, 0.0};
    return {sy / sw, sx / sw};
  }
  double dy = 0, dx = 0;
  if (y > 0 && y + 1 < h) dy = axis_offset(at(y - 1, x), at(y, x), at(y + 1, x), how);
  if (x > 0 && x + 1 < w) dx = axis_offset(at(y, x - 1), at(y, x), at(y, x + 1), how);
  return {dy, dx};
}

// Steps 3–5 on the candidates of one search (sorted by linear index).
inline std::vector<scored_point> resolve_candidates(const std::vector<candidate>& cands, const float* data,
                                                    volume_shape shape, const peak_search& s,
                                                    const peak_options& o, int label, int frame_of_plane) {
  const std::size_t n = cands.size();
  if (n == 0) return {};
  require(n < std::numeric_limits<std::uint32_t>::max(), "peaks", "too many candidate peaks");
  const std::int64_t plane = shape.h * shape.w;

  // Plateaus: union equal-valued candidates with their raster-earlier neighbours. For each neighbour
  // offset the neighbour's index grows with the candidate's, so one forward-only cursor per offset
  // finds them all in O(candidates).
  union_find sets(n);
  struct offset {
    std::int64_t t, y, x, delta;
    std::size_t cursor = 0;
  };
  std::vector<offset> offsets;
  const std::int64_t tspan = s.dt > 0 ? 1 : 0;
  for (std::int64_t ot = -tspan; ot <= 0; ++ot)
    for (std::int64_t oy = -1; oy <= 1; ++oy)
      for (std::int64_t ox = -1; ox <= 1; ++ox)
        if (ot < 0 || oy < 0 || (oy == 0 && ox < 0)) offsets.push_back({ot, oy, ox, ot * plane + oy * shape.w + ox});
  for (std::size_t i = 0; i < n; ++i) {
    const std::int64_t idx = cands[i].index;
    const std::int64_t t = idx / plane, y = (idx % plane) / shape.w, x = idx % shape.w;
    for (auto& off : offsets) {
      const std::int64_t yy = y + off.y, xx = x + off.x;
      if (t + off.t < 0 || yy < 0 || yy >= shape.h || xx < 0 || xx >= shape.w) continue;
      const std::int64_t target = idx + off.delta;
      while (off.cursor < i && cands[off.cursor].index < target) ++off.cursor;
      if (off.cursor < i && cands[off.cursor].index == target && cands[off.cursor].value == cands[i].value)
        sets.unite(static_cast<std::uint32_t>(i), static_cast<std::uint32_t>(off.cursor));
    }
  }
  struct plateau {
    std::size_t first;  // candidate index of its raster-first pixel (the set's root)
    std::int64_t pixels = 0;
    double st = 0, sy = 0, sx = 0;
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
    const std::int64_t idx = cands[i].index;
    g.pixels += 1;
    g.st += static_cast<double>(idx / plane);
    g.sy += static_cast<double>((idx % plane) / shape.w);
    g.sx += static_cast<double>(idx % shape.w);
  }
  std::stable_sort(groups.begin(), groups.end(), [&](const plateau& a, const plateau& b) {
    return cands[a.first].value > cands[b.first].value;  // groups are already in raster order
  });

  // Greedy spacing in (t·d/dt, y, x). A grid over all plateau positions finds each one's neighbours
  // within d; its cells hold about one plateau each (so its table is dense and lookups are O(1)).
  const double d = static_cast<double>(s.d);
  const double tscale = s.dt > 0 ? d / static_cast<double>(s.dt) : 0.0;
  std::vector<coord<3>> pos(groups.size());
  for (std::size_t k = 0; k < groups.size(); ++k) {
    const double inv = 1.0 / static_cast<double>(groups[k].pixels);
    pos[k] = {groups[k].st * inv * tscale, groups[k].sy * inv, groups[k].sx * inv};
  }
  const double box = static_cast<double>(shape.h) * static_cast<double>(shape.w) *
                     (s.dt > 0 ? static_cast<double>(shape.t) * tscale : 1.0);
  const double per_plateau = box / static_cast<double>(groups.size());
  const double cell = std::max(d, s.dt > 0 ? std::cbrt(per_plateau) : std::sqrt(per_plateau));
  const spatial_grid<3> near(pos, cell);
  std::vector<char> taken(groups.size(), 0);
  auto too_close = [&](const coord<3>& a, const coord<3>& b) {
    const double at = std::abs(a[0] - b[0]), ay = std::abs(a[1] - b[1]), ax = std::abs(a[2] - b[2]);
    if (o.norm == spacing_norm::chebyshev) return std::max({at, ay, ax}) < d;
    return at * at + ay * ay + ax * ax < d * d;
  };

  std::vector<scored_point> peaks;
  for (std::size_t k = 0; k < groups.size(); ++k) {
    if (peaks.size() >= o.max_peaks) break;
    const auto& g = groups[k];
    bool keep = true;
    near.for_each_candidate(pos[k], d, [&](std::size_t j, const coord<3>& q) {
      keep = keep && !(taken[j] && too_close(pos[k], q));
    });
    if (!keep) continue;
    taken[k] = 1;

    const std::int64_t idx = cands[g.first].index;
    const std::int64_t t = idx / plane;
    scored_point p;
    p.score = cands[g.first].value;
    p.point.label = label;
    if (g.pixels == 1) {
      const std::int64_t y = (idx % plane) / shape.w, x = idx % shape.w;
      const auto [dy, dx] = refine_peak(data + t * plane, shape.h, shape.w, y, x, o.refine);
      p.point.y = static_cast<double>(y) + dy;
      p.point.x = static_cast<double>(x) + dx;
      p.point.frame = s.dt > 0 ? static_cast<int>(t) : frame_of_plane;
    } else {
      const double inv = 1.0 / static_cast<double>(g.pixels);
      p.point.y = g.sy * inv;
      p.point.x = g.sx * inv;
      p.point.frame = s.dt > 0 ? static_cast<int>(std::lround(g.st * inv)) : frame_of_plane;
    }
    peaks.push_back(p);
  }
  return peaks;
}

// A 2D search on one plane [H, W]: separable max filter, or direct checks when few pixels pass the threshold.
inline std::vector<scored_point> peaks_of_plane(const float* plane, std::int64_t h, std::int64_t w,
                                                const peak_options& o, int label, int frame) {
  const peak_search s = plan_search(plane, h * w, o, false, "peaks");
  if (h * w == 0) return {};
  std::vector<candidate> cands;
  if (few_above(plane, h * w, s.threshold, h * w / sparse_share)) {
    collect_sparse(plane, {1, h, w}, s, 0, 1, cands);
  } else {
    std::vector<float> filtered(static_cast<std::size_t>(h * w)), tmp(static_cast<std::size_t>(h * w));  // [H, W]
    window_max_plane(plane, filtered.data(), tmp.data(), h, w, s.d);
    for (std::int64_t y = s.border; y < h - s.border; ++y)
      collect_row(plane + y * w, filtered.data() + y * w, s.border, w - s.border, s.threshold, y * w, cands);
  }
  return resolve_candidates(cands, plane, {1, h, w}, s, o, label, frame);
}

}  // namespace detail

// Peaks of a 2D map [H, W]; points have frame -1 and label `label`, sorted by score (descending).
inline std::vector<scored_point> find_peaks(const xt::xtensor<float, 2>& map, const peak_options& o = {},
                                            int label = 0) {
  const auto h = static_cast<std::int64_t>(map.shape()[0]), w = static_cast<std::int64_t>(map.shape()[1]);
  return detail::peaks_of_plane(map.data(), h, w, o, label, -1);
}

// Peaks of every class channel of [C, H, W], each channel searched on its own (its own thresholds);
// label = channel. Concatenated in channel order.
inline std::vector<scored_point> find_peaks_per_class(const xt::xtensor<float, 3>& maps, const peak_options& o = {}) {
  const auto c = static_cast<std::int64_t>(maps.shape()[0]);
  const auto h = static_cast<std::int64_t>(maps.shape()[1]), w = static_cast<std::int64_t>(maps.shape()[2]);
  std::vector<std::vector<scored_point>> per(static_cast<std::size_t>(c));
  parallel_for(0, c, [&](std::int64_t k) {
    per[static_cast<std::size_t>(k)] = detail::peaks_of_plane(maps.data() + k * h * w, h, w, o, static_cast<int>(k), -1);
  });
  std::vector<scored_point> out;
  for (auto& v : per) out.insert(out.end(), v.begin(), v.end());
  return out;
}

// 2D peaks of every frame of a movie [T, H, W] (frame = t, label `label`), each frame searched on its
// own with its own thresholds. Concatenated in frame order.
inline std::vector<scored_point> find_peaks_per_frame(const xt::xtensor<float, 3>& movie, const peak_options& o = {},
                                                      int label = 0) {
  const auto t = static_cast<std::int64_t>(movie.shape()[0]);
  const auto h = static_cast<std::int64_t>(movie.shape()[1]), w = static_cast<std::int64_t>(movie.shape()[2]);
  std::vector<std::vector<scored_point>> per(static_cast<std::size_t>(t));
  parallel_for(0, t, [&](std::int64_t k) {
    per[static_cast<std::size_t>(k)] = detail::peaks_of_plane(movie.data() + k * h * w, h, w, o, label, static_cast<int>(k));
  });
  std::vector<scored_point> out;
  for (auto& v : per) out.insert(out.end(), v.begin(), v.end());
  return out;
}

// 3D peaks of a volume [T, H, W]: window (2·d_t+1)×(2d+1)×(2d+1), 26-connected plateaus, spacing measured
// with time scaled by d/d_t. frame = t of the peak pixel (plateaus: rounded mean t); x, y refined in
// the peak's frame. Sorted by score (descending).
inline std::vector<scored_point> find_peaks_3d(const xt::xtensor<float, 3>& volume, const peak_options& o = {},
                                               int label = 0) {
  const auto T = static_cast<std::int64_t>(volume.shape()[0]);
  const auto h = static_cast<std::int64_t>(volume.shape()[1]), w = static_cast<std::int64_t>(volume.shape()[2]);
  const float* data = volume.data();
  const std::int64_t plane = h * w;
  const std::int64_t chunks = std::min<std::int64_t>(T, 4 * static_cast<std::int64_t>(max_threads()));
  const detail::peak_search s = detail::plan_search(data, T * plane, o, true, "peaks_3d", chunks);
  if (T * plane == 0) return {};
  // Sparse when few voxels pass the threshold (decided on the whole volume, so the answer is one).
  std::vector<char> sparse(static_cast<std::size_t>(chunks));
  parallel_for(0, chunks, [&](std::int64_t k) {
    const std::int64_t a = T * k / chunks * plane, b = T * (k + 1) / chunks * plane;
    sparse[static_cast<std::size_t>(k)] = detail::few_above(data + a, b - a, s.threshold, (b - a) / detail::sparse_share);
  });
  const bool go_sparse = std::all_of(sparse.begin(), sparse.end(), [](char c) { return c != 0; });
  // Frame chunks in parallel; the dense path keeps a ring of 2D-filtered planes t-dt .. t+dt per chunk.
  std::vector<std::vector<detail::candidate>> found(static_cast<std::size_t>(chunks));
  parallel_for(0, chunks, [&](std::int64_t k) {
    const std::int64_t t0 = T * k / chunks, t1 = T * (k + 1) / chunks;
    auto& out = found[static_cast<std::size_t>(k)];
    if (go_sparse) {
      detail::collect_sparse(data, {T, h, w}, s, t0, t1, out);
      return;
    }
    const std::int64_t ring = 2 * s.dt + 1;
    std::vector<float> planes(static_cast<std::size_t>(ring * plane));  // [ring, H, W]
    std::vector<float> tmp(static_cast<std::size_t>(plane)), window(static_cast<std::size_t>(plane));  // [H, W]
    std::int64_t next = std::max<std::int64_t>(0, t0 - s.dt);  // next frame to filter in 2D
    for (std::int64_t t = t0; t < t1; ++t) {
      for (; next <= std::min(T - 1, t + s.dt); ++next)
        detail::window_max_plane(data + next * plane, planes.data() + (next % ring) * plane, tmp.data(), h, w, s.d);
      if (t < s.border_t || t >= T - s.border_t) continue;
      const std::int64_t ta = std::max<std::int64_t>(0, t - s.dt), tb = std::min(T - 1, t + s.dt);
      std::copy_n(planes.data() + (ta % ring) * plane, plane, window.data());
      for (std::int64_t u = ta + 1; u <= tb; ++u) detail::max_into(window.data(), planes.data() + (u % ring) * plane, plane);
      for (std::int64_t y = s.border; y < h - s.border; ++y)
        detail::collect_row(data + t * plane + y * w, window.data() + y * w, s.border, w - s.border, s.threshold,
                            t * plane + y * w, out);
    }
  });
  std::vector<detail::candidate> cands;
  for (auto& v : found) cands.insert(cands.end(), v.begin(), v.end());
  return detail::resolve_candidates(cands, data, {T, h, w}, s, o, label, -1);
}

}  // namespace microcount::post

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
