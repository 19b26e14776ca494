#pragma once
// Checks shared by the target builders: map sizes against microcount::limits(), and points that must be
// finite, inside the image, of a known class and (for movies) on an existing frame.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include "microcount/core/error.hpp"
#include "microcount/core/limits.hpp"
#include "microcount/io/annotations.hpp"

namespace microcount::target::detail {

// A map of planes × h × w values of `value_bytes` bytes each must fit the limits.
inline void check_size(std::size_t planes, std::size_t h, std::size_t w, const char* where, std::size_t value_bytes = 4) {
  const auto side = limits().max_image_side;
  require(h <= side && w <= side, where, "image side exceeds the limit of " + std::to_string(side) + " pixels");
  const long double bytes = static_cast<long double>(planes) * h * w * value_bytes;
  require(bytes <= static_cast<long double>(limits().max_total_bytes), where,
          "the map would need " + std::to_string(static_cast<unsigned long long>(bytes)) + " bytes, over the limit");
}

// Points that will be drawn: checked (finite, inside, label and frame in range) or dropped when outside
// and skip_outside is set. frames = 0 for still images (frame ignored).
inline std::vector<io::point> usable_points(std::span<const io::point> points, std::size_t classes, std::size_t frames,
                                            std::size_t h, std::size_t w, bool skip_outside, const char* where) {
  require(points.size() <= limits().max_points, where, "too many points");
  std::vector<io::point> out;
  out.reserve(points.size());
  for (std::size_t i = 0; i < points.size(); ++i) {
    const auto& p = points[i];
    auto who = [&] { return "point " + std::to_string(i) + " (x=" + std::to_string(p.x) + ", y=" + std::to_string(p.y) + ")"; };
    if (!std::isfinite(p.x) || !std::isfinite(p.y)) throw error(where, who() + " has a non-finite coordinate");
    if (p.label < 0 || static_cast<std::size_t>(p.label) >= classes)
      throw error(where, who() + " has label " + std::to_string(p.label) + ", outside the " + std::to_string(classes) + " classes");
    const bool inside = p.x >= -0.5 && p.x <= static_cast<double>(w) - 0.5 && p.y >= -0.5 && p.y <= static_cast<double>(h) - 0.5;
    const bool in_time = frames == 0 || (p.frame >= 0 && static_cast<std::size_t>(p.frame) < frames);
    if (inside && in_time) {
      out.push_back(p);
      continue;
    }
    if (skip_outside) continue;
    if (!inside)
      throw error(where, who() + " is outside the " + std::to_string(w) + "x" + std::to_string(h) + " image");
    throw error(where, who() + " has frame " + std::to_string(p.frame) + ", outside the " + std::to_string(frames) + " frames");
  }
  return out;
}

inline std::size_t class_count(std::span<const io::point> points, std::size_t requested) {
  if (requested > 0) return requested;
  int top = 0;
  for (const auto& p : points) top = std::max(top, p.label);
  return static_cast<std::size_t>(top) + 1;
}

}  // namespace microcount::target::detail
