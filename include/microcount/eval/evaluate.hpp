#pragma once
// Evaluation of predicted point annotations against ground truth over a set of images: point matching
// per image (and per frame, and per class when asked), detection metrics summed over all images, count
// metrics over the per-image counts, overall and per class, and the JSON form the CLI prints.
//
// Pairing of images: a truth image takes the prediction of the same name, else of the same stem
// (file name without folder and extension: "image_001.tif" ↔ "out/image_001.csv"). A truth image with
// no prediction counts as "nothing detected". Predicted images absent from the truth are ignored
// (predictions on training images, say) and reported. Labels are paired by name.
#include <cmath>
#include <cstddef>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "microcount/core/error.hpp"
#include "microcount/core/parallel.hpp"
#include "microcount/eval/matching.hpp"
#include "microcount/eval/metrics.hpp"
#include "microcount/io/annotations.hpp"

namespace microcount::eval {

struct evaluation_options {
  double radius = 5.0;     // pixels: matching radius (distance ≤ radius)
  bool per_class = false;  // match only points of the same label, and report every label
};

struct class_evaluation {
  std::string label;            // empty for the overall figures
  detection_counts detection;   // summed over images
  count_errors counts;          // over the per-image counts of this class
  double total_distance = 0;    // summed distance of the matched pairs
  std::size_t truth_points = 0;
  std::size_t predicted_points = 0;

  // Mean localisation error of the matched pairs; NaN without a match.
  [[nodiscard]] double mean_distance() const {
    return detection.true_positives == 0 ? std::nan("")
                                         : total_distance / static_cast<double>(detection.true_positives);
  }
};

struct image_evaluation {
  std::string name;                 // the truth image name
  bool has_prediction = false;      // a predicted image was paired with it
  detection_counts detection;
  std::size_t truth_points = 0;
  std::size_t predicted_points = 0;
};

struct evaluation {
  double radius = 0;
  bool per_class = false;
  class_evaluation overall;
  std::vector<class_evaluation> classes;  // per_class only: truth labels first, then prediction-only labels
  std::vector<image_evaluation> images;   // one per truth image, in the truth's order
  std::size_t images_without_prediction = 0;
  std::vector<std::string> images_only_in_prediction;
};

namespace detail {

inline std::string stem_of(const std::string& name) { return std::filesystem::path(name).stem().string(); }

// Name of label `index` of `a`, or "label<k>" when the file gave none.
inline std::string label_name(const io::annotations& a, int index) {
  if (index >= 0 && static_cast<std::size_t>(index) < a.labels.size()) return a.labels[index];
  return "label" + std::to_string(index);
}

}  // namespace detail

inline evaluation evaluate(const io::annotations& truth, const io::annotations& predicted,
                           const evaluation_options& options = {}) {
  evaluation out;
  out.radius = options.radius;
  out.per_class = options.per_class;

  // One label list for both sides, by name: truth labels first.
  std::vector<std::string> labels;
  std::map<std::string, int> label_id;
  const auto unify = [&](const std::string& name) {
    auto [it, inserted] = label_id.emplace(name, static_cast<int>(labels.size()));
    if (inserted) labels.push_back(name);
    return it->second;
  };
  const auto unified_points = [&](const io::annotations& a, const io::image_points& im) {
    std::vector<io::point> points = im.points;
    for (auto& p : points) p.label = unify(detail::label_name(a, p.label));
    return points;
  };
  for (const auto& name : truth.labels) unify(name);

  // Pair truth images with predicted ones: same name, else same (unambiguous) stem.
  std::map<std::string, std::size_t> by_name, by_stem;
  std::map<std::string, int> stem_uses;
  for (std::size_t i = 0; i < predicted.images.size(); ++i) {
    by_name.emplace(predicted.images[i].name, i);
    const auto stem = detail::stem_of(predicted.images[i].name);
    by_stem.emplace(stem, i);
    ++stem_uses[stem];
  }
  const std::size_t n_images = truth.images.size();
  std::vector<std::ptrdiff_t> partner(n_images, -1);  // [images] predicted image index or -1
  std::vector<char> predicted_used(predicted.images.size(), 0);
  for (std::size_t i = 0; i < n_images; ++i) {
    const auto& name = truth.images[i].name;
    if (auto it = by_name.find(name); it != by_name.end()) {
      partner[i] = static_cast<std::ptrdiff_t>(it->second);
    } else if (auto st = by_stem.find(detail::stem_of(name)); st != by_stem.end() && stem_uses[st->first] == 1) {
      partner[i] = static_cast<std::ptrdiff_t>(st->second);
    }
    if (partner[i] >= 0) predicted_used[partner[i]] = 1;
  }
  std::size_t paired = 0;
  for (auto p : partner) paired += p >= 0;
  if (paired == 0 && !predicted.images.empty() && n_images > 0)
    throw error("prediction", "no image name in common with the ground truth (truth names '" + truth.images[0].name +
                                  "', prediction names '" + predicted.images[0].name + "')");
  for (std::size_t i = 0; i < predicted.images.size(); ++i)
    if (!predicted_used[i]) out.images_only_in_prediction.push_back(predicted.images[i].name);

  // Points of every image with unified labels (sequential: `unify` may grow the label list).
  std::vector<std::vector<io::point>> truth_points(n_images), predicted_points(n_images);
  for (std::size_t i = 0; i < n_images; ++i) {
    truth_points[i] = unified_points(truth, truth.images[i]);
    if (partner[i] >= 0) predicted_points[i] = unified_points(predicted, predicted.images[partner[i]]);
  }

  // Match every image (independent, so in parallel; the result does not depend on the thread count).
  const match_options match{options.radius, options.per_class, true};
  std::vector<point_matching> matchings(n_images);
  parallel_for(0, static_cast<std::int64_t>(n_images), [&](std::int64_t i) {
    matchings[i] = match_points(truth_points[i], predicted_points[i], match);
  });

  // Sum up: overall, per class, per image.
  const std::size_t n_labels = labels.size();
  std::vector<class_evaluation> per_label(n_labels);
  std::vector<std::vector<double>> truth_count(n_labels + 1, std::vector<double>(n_images, 0.0));  // [L + 1][images]
  std::vector<std::vector<double>> predicted_count = truth_count;  // index n_labels = all labels
  for (std::size_t i = 0; i < n_images; ++i) {
    const auto& m = matchings[i];
    image_evaluation im;
    im.name = truth.images[i].name;
    im.has_prediction = partner[i] >= 0;
    im.detection = detection_counts_of(m);
    im.truth_points = truth_points[i].size();
    im.predicted_points = predicted_points[i].size();
    out.images_without_prediction += !im.has_prediction;
    out.images.push_back(im);
    out.overall.detection += im.detection;
    out.overall.total_distance += m.total_distance();
    for (const auto& pair : m.pairs) {
      auto& c = per_label[truth_points[i][pair.truth].label];
      c.detection.true_positives += 1;
      c.total_distance += pair.distance;
    }
    for (auto t : m.unmatched_truth) per_label[truth_points[i][t].label].detection.false_negatives += 1;
    for (auto p : m.unmatched_predicted) per_label[predicted_points[i][p].label].detection.false_positives += 1;
    for (const auto& p : truth_points[i]) truth_count[p.label][i] += 1;
    for (const auto& p : predicted_points[i]) predicted_count[p.label][i] += 1;
    truth_count[n_labels][i] = static_cast<double>(truth_points[i].size());
    predicted_count[n_labels][i] = static_cast<double>(predicted_points[i].size());
  }
  out.overall.counts = count_errors_of(predicted_count[n_labels], truth_count[n_labels]);
  for (std::size_t i = 0; i < n_images; ++i) {
    out.overall.truth_points += truth_points[i].size();
    out.overall.predicted_points += predicted_points[i].size();
  }
  if (options.per_class) {
    for (std::size_t l = 0; l < n_labels; ++l) {
      auto& c = per_label[l];
      c.label = labels[l];
      c.counts = count_errors_of(predicted_count[l], truth_count[l]);
      for (std::size_t i = 0; i < n_images; ++i) {
        c.truth_points += static_cast<std::size_t>(truth_count[l][i]);
        c.predicted_points += static_cast<std::size_t>(predicted_count[l][i]);
      }
      out.classes.push_back(c);
    }
  }
  return out;
}

// {"tp", "fp", "fn", "precision", "recall", "f1", "mean_distance", "mae", "rmse", "smape", "mean_error",
//  "truth_count", "predicted_count"} — NaN (no match for mean_distance) is written as null.
inline nlohmann::json to_json(const class_evaluation& c) {
  const auto number = [](double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); };
  return {{"tp", c.detection.true_positives},
          {"fp", c.detection.false_positives},
          {"fn", c.detection.false_negatives},
          {"precision", c.detection.precision()},
          {"recall", c.detection.recall()},
          {"f1", c.detection.f1()},
          {"mean_distance", number(c.mean_distance())},
          {"mae", c.counts.mae},
          {"rmse", c.counts.rmse},
          {"smape", c.counts.smape},
          {"mean_error", c.counts.mean_error},
          {"truth_count", c.truth_points},
          {"predicted_count", c.predicted_points}};
}

// The overall figures at top level, plus "radius", "images", "per_class" {label: {...}} (empty unless
// per_class), "images_without_prediction", "images_only_in_prediction" (a count) and, when asked,
// "per_image": [{"name", "truth_count", "predicted_count", "tp", "fp", "fn"}].
inline nlohmann::json to_json(const evaluation& e, bool with_images = false) {
  nlohmann::json j = to_json(e.overall);
  j["radius"] = e.radius;
  j["images"] = e.images.size();
  j["per_class"] = nlohmann::json::object();
  for (const auto& c : e.classes) j["per_class"][c.label] = to_json(c);
  j["images_without_prediction"] = e.images_without_prediction;
  j["images_only_in_prediction"] = e.images_only_in_prediction.size();
  if (with_images) {
    j["per_image"] = nlohmann::json::array();
    for (const auto& im : e.images)
      j["per_image"].push_back({{"name", im.name},
                                {"truth_count", im.truth_points},
                                {"predicted_count", im.predicted_points},
                                {"tp", im.detection.true_positives},
                                {"fp", im.detection.false_positives},
                                {"fn", im.detection.false_negatives}});
  }
  return j;
}

}  // namespace microcount::eval
