#pragma once
// Disk targets from point annotations.
//
//   class_map(points, H, W, {radius})          -> [H, W] int32:  0 background, label + 1 inside a disk
//   class_map_movie(points, T, H, W, {radius}) -> [T, H, W] int32, disks on each point's frame
//   disk_map(points, H, W, {radius}, value)    -> [H, W] float:  1 (value::one) or the label index inside
//   disk_channels(points, H, W, {radius}, C)   -> [C, H, W] float: 1 inside the disks of class c
//
// A pixel (r, c) is inside the disk of a point when its centre is within `radius` of the point:
// (c − x)² + (r − y)² <= radius² (sub-pixel positions respected). A disk always holds the point's own
// pixel (the nearest one), so a point never vanishes for a radius below 0.5.
// Overlap rule: where disks overlap, the pixel goes to the NEAREST point (ties: the earlier point), so
// touching objects of different classes split the space between them (a Voronoi split inside the
// union of disks) and the result does not depend on the order of the points.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include <xtensor/xtensor.hpp>

#include "microcount/core/error.hpp"
#include "microcount/core/parallel.hpp"
#include "microcount/io/annotations.hpp"
#include "microcount/target/checks.hpp"

namespace microcount::target {

struct disk_options {
  double radius = 3.0;        // pixels, >= 0
  bool skip_outside = false;  // false: a point outside the image is an error
};

enum class disk_value { one, label };

namespace detail {

// owner[r·W + c] = index (into pts) of the nearest point whose disk covers pixel (r, c), or -1.
inline std::vector<std::int32_t> disk_owners(std::span<const io::point> pts, std::int64_t h, std::int64_t w, double radius) {
  std::vector<std::int32_t> owner(static_cast<std::size_t>(h * w), -1);  // [H, W]
  std::vector<double> best(static_cast<std::size_t>(h * w), std::numeric_limits<double>::infinity());  // [H, W]
  const double r2 = radius * radius;
  for (std::size_t i = 0; i < pts.size(); ++i) {
    const auto& p = pts[i];
    const std::int64_t own_r = std::clamp<std::int64_t>(std::llround(p.y), 0, h - 1);
    const std::int64_t own_c = std::clamp<std::int64_t>(std::llround(p.x), 0, w - 1);
    const std::int64_t r0 = std::max<std::int64_t>(0, std::min(own_r, static_cast<std::int64_t>(std::ceil(p.y - radius))));
    const std::int64_t r1 = std::min<std::int64_t>(h - 1, std::max(own_r, static_cast<std::int64_t>(std::floor(p.y + radius))));
    const std::int64_t c0 = std::max<std::int64_t>(0, std::min(own_c, static_cast<std::int64_t>(std::ceil(p.x - radius))));
    const std::int64_t c1 = std::min<std::int64_t>(w - 1, std::max(own_c, static_cast<std::int64_t>(std::floor(p.x + radius))));
    for (std::int64_t r = r0; r <= r1; ++r)
      for (std::int64_t c = c0; c <= c1; ++c) {
        const double dy = static_cast<double>(r) - p.y, dx = static_cast<double>(c) - p.x;
        const double d2 = dx * dx + dy * dy;
        if (d2 > r2 && !(r == own_r && c == own_c)) continue;
        const auto k = static_cast<std::size_t>(r * w + c);
        if (d2 < best[k]) {  // strict: on a tie the earlier point keeps the pixel
          best[k] = d2;
          owner[k] = static_cast<std::int32_t>(i);
        }
      }
  }
  return owner;
}

inline void check_radius(double radius, const char* where) {
  require(std::isfinite(radius) && radius >= 0, where, "radius must be >= 0 (got " + std::to_string(radius) + ")");
}

// Class maps accept any non-negative label that leaves room for label + 1.
inline std::size_t label_bound() {
  return static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max() - 1);
}

}  // namespace detail

// [H, W]: 0 background, label + 1 inside the disks (nearest point wins where they overlap).
inline xt::xtensor<std::int32_t, 2> class_map(std::span<const io::point> points, std::size_t height, std::size_t width,
                                              const disk_options& o = {}) {
  const char* where = "class_map";
  detail::check_radius(o.radius, where);
  detail::check_size(1, height, width, where);
  const auto pts = detail::usable_points(points, detail::label_bound(), 0, height, width, o.skip_outside, where);
  const auto h = static_cast<std::int64_t>(height), w = static_cast<std::int64_t>(width);
  const auto owner = detail::disk_owners(pts, h, w, o.radius);
  auto out = xt::xtensor<std::int32_t, 2>::from_shape({height, width});  // [H, W]
  for (std::size_t k = 0; k < owner.size(); ++k) out.data()[k] = owner[k] < 0 ? 0 : pts[static_cast<std::size_t>(owner[k])].label + 1;
  return out;
}

// [T, H, W]: the class map of every frame from the points on that frame (point.frame in [0, T)).
inline xt::xtensor<std::int32_t, 3> class_map_movie(std::span<const io::point> points, std::size_t frames,
                                                    std::size_t height, std::size_t width, const disk_options& o = {}) {
  const char* where = "class_map_movie";
  detail::check_radius(o.radius, where);
  require(frames > 0, where, "a movie needs at least one frame");
  detail::check_size(frames, height, width, where);
  const auto pts = detail::usable_points(points, detail::label_bound(), frames, height, width, o.skip_outside, where);
  std::vector<std::vector<io::point>> per_frame(frames);
  for (const auto& p : pts) per_frame[static_cast<std::size_t>(p.frame)].push_back(p);
  auto out = xt::xtensor<std::int32_t, 3>::from_shape({frames, height, width});  // [T, H, W]
  const auto h = static_cast<std::int64_t>(height), w = static_cast<std::int64_t>(width);
  parallel_for(0, static_cast<std::int64_t>(frames), [&](std::int64_t t) {
    const auto& fp = per_frame[static_cast<std::size_t>(t)];
    const auto owner = detail::disk_owners(fp, h, w, o.radius);
    std::int32_t* plane = out.data() + t * h * w;
    for (std::size_t k = 0; k < owner.size(); ++k) plane[k] = owner[k] < 0 ? 0 : fp[static_cast<std::size_t>(owner[k])].label + 1;
  });
  return out;
}

// [H, W]: 1 (disk_value::one) or the point's label index (disk_value::label) inside the disks, 0 outside.
// With labels, label 0 looks like background: use class_map when that matters.
inline xt::xtensor<float, 2> disk_map(std::span<const io::point> points, std::size_t height, std::size_t width,
                                      const disk_options& o = {}, disk_value value = disk_value::one) {
  const char* where = "disk_map";
  detail::check_radius(o.radius, where);
  detail::check_size(1, height, width, where);
  const auto pts = detail::usable_points(points, detail::label_bound(), 0, height, width, o.skip_outside, where);
  const auto owner = detail::disk_owners(pts, static_cast<std::int64_t>(height), static_cast<std::int64_t>(width), o.radius);
  auto out = xt::xtensor<float, 2>::from_shape({height, width});  // [H, W]
  for (std::size_t k = 0; k < owner.size(); ++k) {
    const std::int32_t i = owner[k];
    out.data()[k] = i < 0 ? 0.0f : value == disk_value::one ? 1.0f : static_cast<float>(pts[static_cast<std::size_t>(i)].label);
  }
  return out;
}

// [C, H, W]: channel c is 1 inside the disks of the points of class c (channels may overlap).
inline xt::xtensor<float, 3> disk_channels(std::span<const io::point> points, std::size_t height, std::size_t width,
                                           const disk_options& o, std::size_t classes) {
  const char* where = "disk_channels";
  detail::check_radius(o.radius, where);
  require(classes > 0, where, "classes must be > 0");
  detail::check_size(classes, height, width, where);
  const auto pts = detail::usable_points(points, classes, 0, height, width, o.skip_outside, where);
  std::vector<std::vector<io::point>> per_class(classes);
  for (const auto& p : pts) per_class[static_cast<std::size_t>(p.label)].push_back(p);
  auto out = xt::xtensor<float, 3>::from_shape({classes, height, width});  // [C, H, W]
  const auto h = static_cast<std::int64_t>(height), w = static_cast<std::int64_t>(width);
  parallel_for(0, static_cast<std::int64_t>(classes), [&](std::int64_t c) {
    const auto owner = detail::disk_owners(per_class[static_cast<std::size_t>(c)], h, w, o.radius);
    float* plane = out.data() + c * h * w;
    for (std::size_t k = 0; k < owner.size(); ++k) plane[k] = owner[k] < 0 ? 0.0f : 1.0f;
  });
  return out;
}

}  // namespace microcount::target
