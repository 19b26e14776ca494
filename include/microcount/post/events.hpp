#pragma once
// From a movie's class scores to a list of events: argmax over the classes, then a mean-shift of the
// voxels of each chosen class (ExoDeepFinder's post-processing), one event_object per cluster.
//
//   xt::xtensor<std::uint8_t, 3> seg = post::argmax_labels(scores);         // [K, T, H, W] -> [T, H, W]
//   auto events = post::detect_events(seg, {.bandwidth = 5, .min_size = 10});
//
// Clustering: every voxel (t, y, x) whose class is one of `labels` is a point; the points of one class
// are clustered by post::mean_shift (flat kernel, bin seeding, scikit-learn's semantics, as ExoDeepFinder
// calls it), with time scaled by `time_scale` (1: a frame counts as one pixel, as in ExoDeepFinder).
// An object's position is the MEAN of its cluster's voxels (not the mode: ExoDeepFinder reports the
// cluster centroid), its size the number of voxels, which separates real events (tens of voxels: a
// cone has 63) from single-voxel noise; clusters smaller than min_size are dropped.
// Output order: by label, then frame, row, column (a stable list for files and tests).
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include <xtensor/xtensor.hpp>

#include "microcount/core/error.hpp"
#include "microcount/core/parallel.hpp"
#include "microcount/post/event_object.hpp"
#include "microcount/post/mean_shift.hpp"

namespace microcount::post {

struct event_detection_options {
  double bandwidth = 5;             // mean-shift radius in voxels (after time scaling), > 0
  double time_scale = 1;            // frame index multiplied by this before clustering, > 0
  std::size_t min_size = 1;         // clusters with fewer voxels are dropped
  std::vector<int> labels = {2};    // classes to cluster (1 = bright spot, 2 = event)
  // Guard: more voxels than this in one class means a segmentation that is mostly foreground (an
  // untrained or wrong model); clustering it would take hours, so it is refused with a message.
  std::size_t max_voxels = 20'000'000;
};

// Argmax over K class planes for `frames` frames of `plane` pixels: scores [K, frames, plane] (the class
// stride is `class_stride` floats, so a time slice of a larger [K, T, H, W] block works) -> out [frames, plane].
// Ties go to the lower class (numpy.argmax); NaN scores never win.
inline void argmax_labels_into(const float* scores, std::size_t classes, std::size_t class_stride, std::size_t frames,
                               std::size_t plane, std::uint8_t* out) {
  require(classes >= 1 && classes <= 255, "argmax_labels", "1 to 255 classes expected, got " + std::to_string(classes));
  parallel_for(0, static_cast<std::int64_t>(frames), [&](std::int64_t t) {
    const std::size_t base = static_cast<std::size_t>(t) * plane;
    std::uint8_t* o = out + base;
    const float* s0 = scores + base;
    std::vector<float> best(s0, s0 + plane);  // [plane] the best score so far
    std::fill(o, o + plane, std::uint8_t{0});
    for (std::size_t k = 1; k < classes; ++k) {
      const float* sk = scores + k * class_stride + base;
      for (std::size_t i = 0; i < plane; ++i)
        if (sk[i] > best[i] || (best[i] != best[i] && sk[i] == sk[i])) {  // greater, or replacing a NaN
          best[i] = sk[i];
          o[i] = static_cast<std::uint8_t>(k);
        }
    }
  });
}

// scores [K, T, H, W] -> class index map [T, H, W].
inline xt::xtensor<std::uint8_t, 3> argmax_labels(const xt::xtensor<float, 4>& scores) {
  const auto& s = scores.shape();
  xt::xtensor<std::uint8_t, 3> out = xt::xtensor<std::uint8_t, 3>::from_shape({s[1], s[2], s[3]});  // [T, H, W]
  if (out.size() == 0) return out;
  argmax_labels_into(scores.data(), s[0], s[1] * s[2] * s[3], s[1], s[2] * s[3], out.data());
  return out;
}

// Clusters of one class of a label map [T, H, W] as objects (unsorted, min_size applied).
inline std::vector<event_object> cluster_class(const xt::xtensor<std::uint8_t, 3>& label_map, int label,
                                               const event_detection_options& o) {
  const auto value = static_cast<std::uint8_t>(label);
  const std::vector<coord<3>> voxels =
      voxel_coordinates(label_map, [value](std::uint8_t v) { return v == value; });  // [n] (t, y, x)
  std::vector<event_object> out;
  if (voxels.empty()) return out;
  require(voxels.size() <= o.max_voxels, "detect_events",
          std::to_string(voxels.size()) + " voxels of class " + std::to_string(label) + " (more than max_voxels = " +
              std::to_string(o.max_voxels) + "): the segmentation is mostly foreground; is the model trained for these movies?");
  mean_shift_options<3> ms;
  ms.bandwidth = o.bandwidth;
  ms.axis_scale = {o.time_scale, 1.0, 1.0};
  const mean_shift_result<3> r = mean_shift<3>(voxels, ms);
  std::vector<std::array<double, 3>> sum(r.centers.size(), {0.0, 0.0, 0.0});  // [clusters] Σ (t, y, x)
  for (std::size_t i = 0; i < voxels.size(); ++i) {
    const auto l = r.labels[i];
    if (l < 0) continue;
    for (std::size_t a = 0; a < 3; ++a) sum[static_cast<std::size_t>(l)][a] += voxels[i][a];
  }
  for (std::size_t c = 0; c < r.centers.size(); ++c) {
    const std::size_t n = r.cluster_size[c];
    if (n == 0 || n < o.min_size) continue;
    const double inv = 1.0 / static_cast<double>(n);
    out.push_back({label, sum[c][0] * inv, sum[c][1] * inv, sum[c][2] * inv, n});
  }
  return out;
}

// A class index map [T, H, W] (argmax of the network's scores) -> the objects of the classes in o.labels.
inline std::vector<event_object> detect_events(const xt::xtensor<std::uint8_t, 3>& label_map,
                                               const event_detection_options& o = {}) {
  require(o.bandwidth > 0 && o.bandwidth < std::numeric_limits<double>::infinity(), "detect_events",
          "bandwidth must be positive and finite");
  require(o.time_scale > 0 && o.time_scale < std::numeric_limits<double>::infinity(), "detect_events",
          "time_scale must be positive and finite");
  std::vector<event_object> out;
  for (const int label : o.labels) {
    require(label >= 1 && label <= 255, "detect_events", "class labels to cluster are 1..255, got " + std::to_string(label));
    const auto found = cluster_class(label_map, label, o);
    out.insert(out.end(), found.begin(), found.end());
  }
  std::sort(out.begin(), out.end(), [](const event_object& a, const event_object& b) {
    if (a.label != b.label) return a.label < b.label;
    if (a.frame != b.frame) return a.frame < b.frame;
    if (a.y != b.y) return a.y < b.y;
    return a.x < b.x;
  });
  return out;
}

}  // namespace microcount::post
