#pragma once
// Gaussian density targets from point annotations.
//
//   gaussian_density(points, H, W, options)          -> [C, H, W]     one channel per class (point.label)
//   gaussian_density_movie(points, T, H, W, options) -> [C, T, H, W]  a 2D Gaussian on each point's frame
//
// Each point draws exp(-((c - x)² + (r - y)²) / (2σ²)) sampled at pixel centres (pixel (r, c) has its
// centre at x = c, y = r), so sub-pixel positions shift the samples. The kernel is cut to the square
// |c - x|, |r - y| <= max(truncate·σ, 0.5) (square, not round, so it stays separable: gx(c)·gy(r)).
//   unit_mass: the samples of one point that fall INSIDE the image are scaled to sum to exactly 1, so
//              a map sums to its number of points even when Gaussians are cut by the border.
//   peak_one:  the Gaussian is 1 at the point (a pixel on the point reads 1); overlapping Gaussians
//              combine by max (default, the map stays in [0, 1]) or sum.
// σ is fixed, or geometry-adaptive: σ_i = beta × mean distance to the k nearest points of the same
// frame (all classes), clamped to [min_sigma, max_sigma]; points with fewer than k neighbours get the
// fixed σ. Neighbours come from a uniform grid (ring search), not from all pairs.
//
// Speed and determinism: rows are split into bands of 16; every (channel, band) holds the list of
// points whose window meets it, in input order, and bands run in parallel. Each pixel therefore
// accumulates its points in input order whatever the thread count. The per-row work is an xsimd
// loop (exp of the column profile, then fma or max into the row) written once for any batch width.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <xsimd/xsimd.hpp>
#include <xtensor/xtensor.hpp>

#include "microcount/core/error.hpp"
#include "microcount/core/limits.hpp"
#include "microcount/core/parallel.hpp"
#include "microcount/io/annotations.hpp"
#include "microcount/post/spatial_grid.hpp"
#include "microcount/target/checks.hpp"

// GCC 12 reports a false -Wmaybe-uninitialized inside avx512fintrin.h (_mm512_undefined_*, GCC bug 105593)
// wherever xsimd's AVX-512 kernels are inlined; silence it for these kernels only.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace microcount::target {

enum class normalization { unit_mass, peak_one };
enum class overlap { sum, max };

struct adaptive_sigma {
  std::size_t k = 3;        // neighbours averaged
  double beta = 0.3;        // σ_i = beta × mean distance to the k nearest
  double min_sigma = 1.0;   // clamp, >= 0.1
  double max_sigma = 10.0;
};

struct gaussian_options {
  double sigma = 1.5;                        // fixed σ (>= 0.1); with `adaptive`, σ of points lacking k neighbours
  std::optional<adaptive_sigma> adaptive;    // set: geometry-adaptive σ
  normalization norm = normalization::unit_mass;
  overlap combine = overlap::max;            // peak_one only; unit_mass always sums
  double truncate = 4.0;                     // kernel half-width in σ (>= 1)
  std::size_t classes = 0;                   // channels C; 0: largest label + 1
  bool skip_outside = false;                 // false: a point outside the image is an error
};

namespace detail {

using float_batch = xsimd::batch<float>;

// The Gaussian profile body, written once: V is float or xsimd::batch<float>.
template <class V>
V gaussian_of(V offset, V neg_half_inv_var) {
  return xsimd::exp(offset * offset * neg_half_inv_var);
}

struct add_scaled {
  template <class V>
  V operator()(V out, V a, V g) const { return xsimd::fma(a, g, out); }
};
struct max_scaled {
  template <class V>
  V operator()(V out, V a, V g) const { return xsimd::max(out, a * g); }
};

inline float_batch lane_offsets() {
  std::array<float, float_batch::size> lanes;
  for (std::size_t i = 0; i < lanes.size(); ++i) lanes[i] = static_cast<float>(i);
  return float_batch::load_unaligned(lanes.data());
}

constexpr std::int64_t batch_width = static_cast<std::int64_t>(float_batch::size);

// Room for a profile of n samples: whole batches, so profiles and rows need no scalar tail.
inline std::size_t padded(std::int64_t n) {
  return static_cast<std::size_t>((n + batch_width - 1) / batch_width * batch_width);
}

// g[i] = gaussian_of(first + i) for i in [0, n), and g[i] = 0 for i in [n, padded(n)): the profile of
// one point along one axis. g must hold padded(n) floats.
inline void gaussian_profile(float* g, float first, float neg_half_inv_var, std::int64_t n) {
  static const float_batch lanes = lane_offsets();
  const float_batch k(neg_half_inv_var);
  for (std::int64_t i = 0; i < n; i += batch_width)
    gaussian_of(float_batch(first + static_cast<float>(i)) + lanes, k).store_unaligned(g + i);
  std::fill(g + n, g + padded(n), 0.0f);
}

// out[i] = combine(out[i], a, g[i]) for i in [0, n). `room` >= n is how many floats out may touch: past n,
// g holds zeros, and combining a zero sample leaves a non-negative map unchanged (+0, or max with 0),
// so the last partial batch runs as a whole batch whenever the row has room for it.
template <class Combine>
void combine_row(float* out, const float* g, float a, std::int64_t n, std::int64_t room, Combine combine) {
  const float_batch av(a);
  std::int64_t i = 0;
  for (; i + batch_width <= n || (i < n && i + batch_width <= room); i += batch_width)
    combine(float_batch::load_unaligned(out + i), av, float_batch::load_unaligned(g + i)).store_unaligned(out + i);
  for (; i < n; ++i) out[i] = combine(out[i], a, g[i]);
}

// One Gaussian to draw, with its clipped window.
struct splat {
  double x = 0, y = 0;
  float neg_half_inv_var = 0;  // -1 / (2σ²)
  float amplitude = 1;         // unit mass: 1 / (Σ gx · Σ gy) over the window; peak one: 1
  std::int64_t plane = 0;      // destination plane of the output
  std::int64_t r0 = 0, r1 = -1, c0 = 0, c1 = -1;  // inclusive pixel window inside the image
};

inline void check_options(const gaussian_options& o, const char* where) {
  require(std::isfinite(o.sigma) && o.sigma >= 0.1, where, "sigma must be >= 0.1 (got " + std::to_string(o.sigma) + ")");
  require(std::isfinite(o.truncate) && o.truncate >= 1, where, "truncate must be >= 1");
  if (o.adaptive) {
    const auto& a = *o.adaptive;
    require(a.k >= 1, where, "adaptive sigma needs k >= 1");
    require(std::isfinite(a.beta) && a.beta > 0, where, "adaptive sigma needs beta > 0");
    require(std::isfinite(a.max_sigma) && a.min_sigma >= 0.1 && a.min_sigma <= a.max_sigma, where,
            "adaptive sigma needs 0.1 <= min_sigma <= max_sigma");
  }
}

// Windows and amplitudes of every point (parallel over chunks of points).
inline std::vector<splat> prepare_splats(const std::vector<io::point>& points, const std::vector<double>& sigmas,
                                         std::int64_t h, std::int64_t w, std::int64_t frames, const gaussian_options& o) {
  std::vector<splat> out(points.size());
  // Chunks of >= 512 points: a few hundred points are not worth waking other threads for.
  const std::int64_t chunks = std::min<std::int64_t>((static_cast<std::int64_t>(points.size()) + 511) / 512, 64);
  parallel_for(0, chunks, [&](std::int64_t k) {
    std::vector<float> g;  // column profile scratch
    const std::size_t i0 = points.size() * static_cast<std::size_t>(k) / static_cast<std::size_t>(chunks);
    const std::size_t i1 = points.size() * static_cast<std::size_t>(k + 1) / static_cast<std::size_t>(chunks);
    for (std::size_t i = i0; i < i1; ++i) {
      const auto& p = points[i];
      const double sigma = sigmas[i];
      const double half = std::max(o.truncate * sigma, 0.5);  // >= 0.5: the window holds the point's own pixel
      splat s;
      s.x = p.x;
      s.y = p.y;
      s.neg_half_inv_var = static_cast<float>(-0.5 / (sigma * sigma));
      s.plane = frames > 0 ? static_cast<std::int64_t>(p.label) * frames + p.frame : p.label;
      s.c0 = std::max<std::int64_t>(0, static_cast<std::int64_t>(std::ceil(p.x - half)));
      s.c1 = std::min<std::int64_t>(w - 1, static_cast<std::int64_t>(std::floor(p.x + half)));
      s.r0 = std::max<std::int64_t>(0, static_cast<std::int64_t>(std::ceil(p.y - half)));
      s.r1 = std::min<std::int64_t>(h - 1, static_cast<std::int64_t>(std::floor(p.y + half)));
      if (o.norm == normalization::unit_mass) {
        // The same float samples the rasterizer draws, summed in double.
        const std::int64_t nc = s.c1 - s.c0 + 1, nr = s.r1 - s.r0 + 1;
        g.resize(padded(std::max(nc, nr)));
        double sx = 0, sy = 0;
        gaussian_profile(g.data(), static_cast<float>(static_cast<double>(s.c0) - p.x), s.neg_half_inv_var, nc);
        for (std::int64_t k = 0; k < nc; ++k) sx += g[static_cast<std::size_t>(k)];
        gaussian_profile(g.data(), static_cast<float>(static_cast<double>(s.r0) - p.y), s.neg_half_inv_var, nr);
        for (std::int64_t k = 0; k < nr; ++k) sy += g[static_cast<std::size_t>(k)];
        s.amplitude = static_cast<float>(1.0 / (sx * sy));
      }
      out[i] = s;
    }
  });
  return out;
}

// Draws every splat into out [planes, H, W]. Each task zeroes one band of 16 rows of one plane and draws
// the splats that meet it (while the band is in cache); bands run in parallel.
inline void rasterize(float* out, std::int64_t planes, std::int64_t h, std::int64_t w, const std::vector<splat>& splats,
                      bool take_max) {
  if (planes * h * w == 0) return;
  constexpr std::int64_t band = 16;  // rows per task
  const std::int64_t bands = (h + band - 1) / band;
  std::vector<std::vector<std::uint32_t>> bucket(static_cast<std::size_t>(planes * bands));  // [planes·bands]: splat ids
  double work = static_cast<double>(planes * h * w);  // pixels zeroed + pixels drawn
  for (std::size_t i = 0; i < splats.size(); ++i) {
    const auto& s = splats[i];
    for (std::int64_t b = s.r0 / band; b <= s.r1 / band; ++b)
      bucket[static_cast<std::size_t>(s.plane * bands + b)].push_back(static_cast<std::uint32_t>(i));
    work += static_cast<double>((s.r1 - s.r0 + 1) * (s.c1 - s.c0 + 1));
  }
  const auto tasks = static_cast<std::int64_t>(bucket.size());
  // Small maps (a 256×256 image) are faster on one thread than the cost of waking the others.
  const std::int64_t min_per_thread = work < static_cast<double>(1 << 20) ? tasks : 1;
  parallel_for(0, tasks, [&](std::int64_t task) {
    const std::int64_t plane = task / bands, b = task % bands;
    const std::int64_t band_lo = b * band, band_hi = std::min(h - 1, band_lo + band - 1);
    float* const plane_data = out + plane * h * w;
    std::fill(plane_data + band_lo * w, plane_data + (band_hi + 1) * w, 0.0f);
    const auto& ids = bucket[static_cast<std::size_t>(task)];
    if (ids.empty()) return;
    std::vector<float> gx(padded(w)), gy(padded(h));  // column and row profiles of one point
    for (std::uint32_t id : ids) {
      const auto& s = splats[id];
      const std::int64_t n = s.c1 - s.c0 + 1;
      gaussian_profile(gx.data(), static_cast<float>(static_cast<double>(s.c0) - s.x), s.neg_half_inv_var, n);
      gaussian_profile(gy.data(), static_cast<float>(static_cast<double>(s.r0) - s.y), s.neg_half_inv_var, s.r1 - s.r0 + 1);
      for (std::int64_t r = std::max(s.r0, band_lo); r <= std::min(s.r1, band_hi); ++r) {
        const float a = s.amplitude * gy[static_cast<std::size_t>(r - s.r0)];
        float* row = plane_data + r * w + s.c0;
        if (take_max)
          combine_row(row, gx.data(), a, n, w - s.c0, max_scaled{});
        else
          combine_row(row, gx.data(), a, n, w - s.c0, add_scaled{});
      }
    }
  }, min_per_thread);
}

}  // namespace detail

// σ of every point: the fixed σ, or the geometry-adaptive one (neighbours in the same frame, all classes).
inline std::vector<double> point_sigmas(std::span<const io::point> points, const gaussian_options& o) {
  detail::check_options(o, "point_sigmas");
  std::vector<double> sigma(points.size(), o.sigma);
  if (!o.adaptive) return sigma;
  const auto& a = *o.adaptive;
  std::map<int, std::vector<std::size_t>> by_frame;
  for (std::size_t i = 0; i < points.size(); ++i) {
    require(std::isfinite(points[i].x) && std::isfinite(points[i].y), "point_sigmas",
            "point " + std::to_string(i) + " has a non-finite coordinate");
    by_frame[points[i].frame].push_back(i);
  }
  for (const auto& [frame, ids] : by_frame) {
    if (ids.size() <= a.k) continue;  // nobody in this frame has k neighbours: all keep the fixed σ
    std::vector<post::coord<2>> xy(ids.size());
    double x0 = std::numeric_limits<double>::infinity(), y0 = x0, x1 = -x0, y1 = -x0;
    for (std::size_t j = 0; j < ids.size(); ++j) {
      xy[j] = {points[ids[j]].x, points[ids[j]].y};
      x0 = std::min(x0, xy[j][0]);
      x1 = std::max(x1, xy[j][0]);
      y0 = std::min(y0, xy[j][1]);
      y1 = std::max(y1, xy[j][1]);
    }
    // About k + 1 points per cell: the k nearest usually lie within the first ring of cells.
    const double area = (x1 - x0 + 1) * (y1 - y0 + 1);
    const double cell = std::max(1.0, std::sqrt(static_cast<double>(a.k + 1) * area / static_cast<double>(ids.size())));
    const post::spatial_grid<2> grid(xy, cell);
    parallel_for(0, static_cast<std::int64_t>(ids.size()), [&](std::int64_t j) {
      const auto near = grid.nearest(xy[static_cast<std::size_t>(j)], a.k, static_cast<std::size_t>(j));
      double mean = 0;
      for (const auto& [d2, id] : near) mean += std::sqrt(d2);
      mean /= static_cast<double>(near.size());
      sigma[ids[static_cast<std::size_t>(j)]] = std::clamp(a.beta * mean, a.min_sigma, a.max_sigma);
    }, 256);
  }
  return sigma;
}

// Density map [C, H, W] of points on a still image (point.frame is ignored).
inline xt::xtensor<float, 3> gaussian_density(std::span<const io::point> points, std::size_t height, std::size_t width,
                                              const gaussian_options& o = {}) {
  const char* where = "gaussian_density";
  detail::check_options(o, where);
  const std::size_t classes = detail::class_count(points, o.classes);
  detail::check_size(classes, height, width, where);
  auto usable = detail::usable_points(points, classes, 0, height, width, o.skip_outside, where);
  for (auto& p : usable) p.frame = -1;  // one neighbourhood for adaptive σ: the whole image
  const auto sigmas = point_sigmas(usable, o);
  const auto h = static_cast<std::int64_t>(height), w = static_cast<std::int64_t>(width);
  const auto splats = detail::prepare_splats(usable, sigmas, h, w, 0, o);
  auto out = xt::xtensor<float, 3>::from_shape({classes, height, width});  // [C, H, W]
  detail::rasterize(out.data(), static_cast<std::int64_t>(classes), h, w, splats,
                    o.norm == normalization::peak_one && o.combine == overlap::max);
  return out;
}

// Density movie [C, T, H, W]: each point draws a 2D Gaussian on its own frame (point.frame in [0, T)).
inline xt::xtensor<float, 4> gaussian_density_movie(std::span<const io::point> points, std::size_t frames,
                                                    std::size_t height, std::size_t width, const gaussian_options& o = {}) {
  const char* where = "gaussian_density_movie";
  detail::check_options(o, where);
  require(frames > 0, where, "a movie needs at least one frame");
  const std::size_t classes = detail::class_count(points, o.classes);
  detail::check_size(classes * frames, height, width, where);
  const auto usable = detail::usable_points(points, classes, frames, height, width, o.skip_outside, where);
  const auto sigmas = point_sigmas(usable, o);
  const auto h = static_cast<std::int64_t>(height), w = static_cast<std::int64_t>(width);
  const auto splats = detail::prepare_splats(usable, sigmas, h, w, static_cast<std::int64_t>(frames), o);
  auto out = xt::xtensor<float, 4>::from_shape({classes, frames, height, width});  // [C, T, H, W]
  detail::rasterize(out.data(), static_cast<std::int64_t>(classes * frames), h, w, splats,
                    o.norm == normalization::peak_one && o.combine == overlap::max);
  return out;
}

// The density [C, H, W] of one annotated image: C = the number of labels, H and W from the annotation.
inline xt::xtensor<float, 3> gaussian_density(const io::annotations& ann, const io::image_points& image,
                                              gaussian_options o = {}) {
  require(image.width > 0 && image.height > 0, image.name, "the annotation does not give the image size");
  if (o.classes == 0) o.classes = std::max<std::size_t>(1, ann.labels.size());
  try {
    return gaussian_density(image.points, static_cast<std::size_t>(image.height), static_cast<std::size_t>(image.width), o);
  } catch (const error& e) {
    throw error(image.name, e.what());  // say which image the bad point belongs to
  }
}

}  // namespace microcount::target

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
