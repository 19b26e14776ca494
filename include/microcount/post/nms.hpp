#pragma once
// Non-maximum suppression of scored points: visiting points by score (descending; ties keep input
// order), a point is dropped when a point already kept lies within `radius` (Euclidean, <= radius).
// Neighbours are found through a uniform grid with cell = radius, so the cost is O(points × local density).
//
// Points are compared only within the same class (per_class) and, for movies, within the same frame
// (frame_scale < 0) or across frames with the frame difference counted as frame_scale pixels.
// Both are done by embedding points in 4D: (label·separation, frame·scale, y, x), where "separation"
// is larger than the radius, so points of different groups are never within reach.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <string>
#include <vector>

#include "microcount/core/error.hpp"
#include "microcount/post/scored_point.hpp"
#include "microcount/post/spatial_grid.hpp"

namespace microcount::post {

struct nms_options {
  double radius = 3.0;        // > 0, pixels
  bool per_class = true;      // only points of the same label suppress each other
  double frame_scale = -1.0;  // < 0: only points of the same frame; >= 0: pixels per frame of difference
};

// The kept points, sorted by score (descending; ties in input order).
inline std::vector<scored_point> non_maximum_suppression(const std::vector<scored_point>& points,
                                                         const nms_options& o = {}) {
  require(o.radius > 0 && std::isfinite(o.radius), "non_maximum_suppression", "radius must be positive and finite");
  require(std::isfinite(o.frame_scale), "non_maximum_suppression", "frame_scale must be finite");
  const std::size_t n = points.size();
  const double apart = 2 * o.radius + 1;  // a coordinate gap that is never within reach
  std::vector<coord<4>> embedded(n);
  for (std::size_t i = 0; i < n; ++i) {
    const auto& p = points[i].point;
    require(std::isfinite(p.x) && std::isfinite(p.y), "non_maximum_suppression",
            "point " + std::to_string(i) + " has a non-finite coordinate");
    require(std::isfinite(points[i].score), "non_maximum_suppression", "point " + std::to_string(i) + " has a non-finite score");
    const double f = static_cast<double>(p.frame);
    // x last: grid rows run along the last axis, and x has the most cells.
    embedded[i] = {o.per_class ? static_cast<double>(p.label) * apart : 0.0,
                   o.frame_scale < 0 ? f * apart : f * o.frame_scale, p.y, p.x};
  }
  const spatial_grid<4> grid(embedded, o.radius);
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return points[a].score > points[b].score; });
  std::vector<char> kept(n, 0);
  std::vector<scored_point> out;
  for (std::size_t i : order) {
    bool suppressed = false;
    grid.for_each_within(embedded[i], o.radius, [&](std::size_t j, const coord<4>&, double) {
      suppressed = suppressed || kept[j];
    });
    if (suppressed) continue;
    kept[i] = 1;
    out.push_back(points[i]);
  }
  return out;
}

}  // namespace microcount::post
