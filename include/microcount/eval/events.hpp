#pragma once
// Scoring detected movie events against annotated ones, by ExoDeepFinder's (DeepFinder's) rule.
//
// DeepFinder's Evaluator (deepfinder/utils/eval.py) computes the Euclidean distance between every
// annotated and every detected object in (z, y, x) voxels (z = frame, so one frame counts as one pixel)
// and marks pairs with distance <= dist_thr. Then, for each ANNOTATED object:
//   exactly one detection within the distance  → true positive (that detection is "matched");
//   none, or two and more                      → false negative (a crowd of detections is not a find).
// Every detection that is not the single match of some annotation is a false positive, including a
// detection that lies within the distance of an annotation that had two or more. A detection that is
// the single match of two annotations counts once as matched (no FP) and makes both annotations TPs —
// DeepFinder's quirk, kept so numbers agree with its evaluation.
//   precision = TP / (TP + FP), recall = TP / (TP + FN), F1 = 2 P R / (P + R)
// DeepFinder builds a confusion matrix over classes; here one class is scored at a time
// (event_match_options::label, default 2 = events): objects of other classes are left out before
// matching. Edge cases follow eval/metrics.hpp: precision 1 with no detection, recall 1 with nothing to
// find, F1 1 when both are empty (pycm would report "None").
//
// sweep_cluster_size keeps the detections with size >= threshold (DeepFinder's objl.above_thr on
// cluster_size) and scores each threshold: small clusters are usually noise, and the best threshold is
// found on validation data.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include "microcount/core/error.hpp"
#include "microcount/post/event_object.hpp"

namespace microcount::eval {

struct event_match_options {
  double distance = 5;  // voxels; frame counts as one voxel; a pair matches when its distance is <= this
  int label = 2;        // class scored (1 bright spot, 2 event); < 0: every object, labels ignored
};

struct event_scores {
  std::size_t tp = 0, fp = 0, fn = 0;
  double precision = 1, recall = 1, f1 = 1;
};

// Scores with precision, recall and F1 from the three counts (also for sums over several movies).
inline event_scores event_scores_from_counts(std::size_t tp, std::size_t fp, std::size_t fn) {
  event_scores s;
  s.tp = tp;
  s.fp = fp;
  s.fn = fn;
  s.precision = tp + fp == 0 ? 1.0 : static_cast<double>(tp) / static_cast<double>(tp + fp);
  s.recall = tp + fn == 0 ? 1.0 : static_cast<double>(tp) / static_cast<double>(tp + fn);
  s.f1 = 2 * tp + fp + fn == 0 ? 1.0 : 2.0 * static_cast<double>(tp) / static_cast<double>(2 * tp + fp + fn);
  return s;
}

// Sum of per-movie counts, as DeepFinder's "global" scores pool all movies.
inline event_scores operator+(const event_scores& a, const event_scores& b) {
  return event_scores_from_counts(a.tp + b.tp, a.fp + b.fp, a.fn + b.fn);
}

namespace events_detail {

// The objects of class `label` (all when label < 0); a non-finite coordinate is an error (it would
// break the frame ordering the matching relies on).
inline std::vector<post::event_object> of_class(std::span<const post::event_object> objects, int label, const char* which) {
  std::vector<post::event_object> out;
  for (std::size_t i = 0; i < objects.size(); ++i) {
    const auto& o = objects[i];
    if (!std::isfinite(o.frame) || !std::isfinite(o.y) || !std::isfinite(o.x))
      throw error("score_events", std::string(which) + " object " + std::to_string(i) + " has a coordinate that is not finite");
    if (label < 0 || o.label == label) out.push_back(o);
  }
  return out;
}

}  // namespace events_detail

// Scores one movie's detections `found` against its annotation `truth` (see the rule above).
inline event_scores score_events(std::span<const post::event_object> truth, std::span<const post::event_object> found,
                                 const event_match_options& options = {}) {
  require(std::isfinite(options.distance) && options.distance >= 0, "score_events", "distance must be finite and >= 0");
  const std::vector<post::event_object> t = events_detail::of_class(truth, options.label, "annotated");
  std::vector<post::event_object> f = events_detail::of_class(found, options.label, "detected");
  // Sorted by frame, only detections within `distance` frames of an annotation need a distance.
  std::sort(f.begin(), f.end(), [](const auto& a, const auto& b) { return a.frame < b.frame; });
  const double d2 = options.distance * options.distance;
  std::vector<char> matched(f.size(), 0);
  std::size_t tp = 0, fn = 0;
  for (const auto& a : t) {
    auto it = std::lower_bound(f.begin(), f.end(), a.frame - options.distance,
                               [](const post::event_object& o, double frame) { return o.frame < frame; });
    std::size_t near = 0, which = 0;
    for (; it != f.end() && it->frame <= a.frame + options.distance && near < 2; ++it) {
      const double dz = it->frame - a.frame, dy = it->y - a.y, dx = it->x - a.x;
      if (dz * dz + dy * dy + dx * dx <= d2) {
        ++near;
        which = static_cast<std::size_t>(it - f.begin());
      }
    }
    if (near == 1) {
      ++tp;
      matched[which] = 1;
    } else {
      ++fn;
    }
  }
  const auto n_matched = static_cast<std::size_t>(std::count(matched.begin(), matched.end(), 1));
  return event_scores_from_counts(tp, f.size() - n_matched, fn);
}

struct cluster_size_score {
  std::size_t threshold = 0;  // detections with size >= threshold were kept
  event_scores scores;
};

// Scores for each threshold, keeping only detections whose cluster size is >= it.
inline std::vector<cluster_size_score> sweep_cluster_size(std::span<const post::event_object> truth,
                                                          std::span<const post::event_object> found,
                                                          std::span<const std::size_t> thresholds,
                                                          const event_match_options& options = {}) {
  std::vector<cluster_size_score> out;
  std::vector<post::event_object> kept;
  for (const std::size_t threshold : thresholds) {
    kept.clear();
    for (const auto& o : found)
      if (o.size >= threshold) kept.push_back(o);
    out.push_back(cluster_size_score{threshold, score_events(truth, kept, options)});
  }
  return out;
}

}  // namespace microcount::eval
