#pragma once
// ExoDeepFinder's training target for TIRF movies of exocytosis: a class map [T, H, W] with
// 0 = background, 1 = bright spot, 2 = exocytosis event.
//
// The shape is ExoDeepFinder's "cone" (its target generation builds a t×y×x mask frame by frame and
// stamps it at every event; see docs/targets_and_peaks.md):
//   frame z     : disk of radius 4   (49 pixels: integer offsets with dx² + dy² <= 16)
//   frame z + 1 : disk of radius 2   (13 pixels)
//   frame z + 2 : the centre pixel   (1 pixel)
// i.e. a cone whose radius decays over the frames after the event, because a fusing vesicle is
// brightest at fusion and its content spreads and fades over the next frames. Nothing is drawn
// before frame z, and the cone is cut at the last frame and the image edges. The radii are options.
// Bright spots (ExoDeepFinder takes them from a spot detector's segmentation) are drawn as a disk
// of `spot_radius` on their own frame only. Events are drawn after spots and win where they overlap,
// as ExoDeepFinder overwrites the detector segmentation with the events.
// The centre is the point's nearest pixel (ExoDeepFinder truncates with int(); the same for the
// integer coordinates its object lists hold).
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <xtensor/xtensor.hpp>

#include "microcount/core/error.hpp"
#include "microcount/io/annotations.hpp"
#include "microcount/target/checks.hpp"

namespace microcount::target {

inline constexpr std::uint8_t exo_background = 0;
inline constexpr std::uint8_t exo_bright_spot = 1;
inline constexpr std::uint8_t exo_event = 2;

// Which annotation labels (indices into annotations::labels) are bright spots and events; -1: none.
// Points of any other label are not drawn.
struct exo_labels {
  int spot = -1;
  int event = -1;
};

struct cone_options {
  std::vector<double> event_radii = {4, 2, 0};  // disk radius on frames z, z+1, …; 0 = the centre pixel only
  double spot_radius = 2;                       // bright-spot disk on its own frame; < 0: spots not drawn
};

// Finds the labels by name: "2", "event", "exocytosis", "exo" → events; "1", "spot", "bright spot",
// "bright_spot" → bright spots (case-insensitive). ExoDeepFinder object lists use class_label 1 and 2.
inline exo_labels find_exo_labels(const io::annotations& ann) {
  exo_labels out;
  for (std::size_t i = 0; i < ann.labels.size(); ++i) {
    std::string n = ann.labels[i];
    std::transform(n.begin(), n.end(), n.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (n == "2" || n == "event" || n == "exocytosis" || n == "exo") out.event = static_cast<int>(i);
    if (n == "1" || n == "spot" || n == "bright spot" || n == "bright_spot") out.spot = static_cast<int>(i);
  }
  return out;
}

namespace detail {

// Sets value on the pixels of plane [H, W] with integer offsets dx² + dy² <= r² around (cy, cx).
inline void stamp_disk(std::uint8_t* plane, std::int64_t h, std::int64_t w, std::int64_t cy, std::int64_t cx,
                       double radius, std::uint8_t value) {
  const auto reach = static_cast<std::int64_t>(std::floor(radius));
  const double r2 = radius * radius;
  for (std::int64_t dy = -reach; dy <= reach; ++dy) {
    const std::int64_t y = cy + dy;
    if (y < 0 || y >= h) continue;
    for (std::int64_t dx = -reach; dx <= reach; ++dx) {
      const std::int64_t x = cx + dx;
      if (x < 0 || x >= w || static_cast<double>(dx * dx + dy * dy) > r2) continue;
      plane[y * w + x] = value;
    }
  }
}

}  // namespace detail

// [T, H, W] uint8 class map of one movie's points (point.frame = the frame of the spot or event).
inline xt::xtensor<std::uint8_t, 3> exo_cone_target(std::span<const io::point> points, exo_labels labels,
                                                    std::size_t frames, std::size_t height, std::size_t width,
                                                    const cone_options& o = {}) {
  const char* where = "exo_cone_target";
  require(labels.event >= 0 || labels.spot >= 0, where, "neither an event label nor a bright-spot label is given");
  require(frames > 0, where, "a movie needs at least one frame");
  for (double r : o.event_radii) require(std::isfinite(r) && r >= 0, where, "event radii must be >= 0");
  require(std::isfinite(o.spot_radius), where, "spot_radius must be finite");
  detail::check_size(frames, height, width, where, 1);
  const auto pts = detail::usable_points(points, static_cast<std::size_t>(std::numeric_limits<int>::max()), frames,
                                         height, width, false, where);
  const auto nt = static_cast<std::int64_t>(frames);
  const auto h = static_cast<std::int64_t>(height), w = static_cast<std::int64_t>(width);
  xt::xtensor<std::uint8_t, 3> out = xt::zeros<std::uint8_t>({frames, height, width});  // [T, H, W]
  auto plane = [&](std::int64_t t) { return out.data() + t * h * w; };
  auto centre = [&](const io::point& p) {
    return std::pair{std::clamp<std::int64_t>(std::llround(p.y), 0, h - 1), std::clamp<std::int64_t>(std::llround(p.x), 0, w - 1)};
  };
  if (o.spot_radius >= 0)
    for (const auto& p : pts)
      if (p.label == labels.spot) {
        const auto [cy, cx] = centre(p);
        detail::stamp_disk(plane(p.frame), h, w, cy, cx, o.spot_radius, exo_bright_spot);
      }
  for (const auto& p : pts)
    if (p.label == labels.event) {
      const auto [cy, cx] = centre(p);
      for (std::size_t k = 0; k < o.event_radii.size() && p.frame + static_cast<std::int64_t>(k) < nt; ++k)
        detail::stamp_disk(plane(p.frame + static_cast<std::int64_t>(k)), h, w, cy, cx, o.event_radii[k], exo_event);
    }
  return out;
}

// The target of the annotated movie `image_name` of `ann`, labels found by name (find_exo_labels).
inline xt::xtensor<std::uint8_t, 3> exo_cone_target(const io::annotations& ann, const std::string& image_name,
                                                    std::size_t frames, std::size_t height, std::size_t width,
                                                    const cone_options& o = {}) {
  const io::image_points* im = ann.find(image_name);
  require(im != nullptr, image_name, "no annotations for this movie");
  const exo_labels labels = find_exo_labels(ann);
  require(labels.event >= 0 || labels.spot >= 0, image_name,
          "no label named like an event (\"2\", \"event\") or a bright spot (\"1\", \"spot\")");
  try {
    return exo_cone_target(im->points, labels, frames, height, width, o);
  } catch (const error& e) {
    throw error(image_name, e.what());
  }
}

}  // namespace microcount::target
