#pragma once
// Test-set results of a trained model: count errors and detection metrics, overall and per class, and
// per image; written as test_results.json (machine-readable) and test_results.txt (a table to read).
//
// Counts come separately from points because they are not the same thing for every head: a density
// head's count is the sum of its map (fractional), a regression head predicts counts and no points,
// a detection head's count is its number of points. So every image gives its per-class counts AND its
// points, and everything else is computed here with eval:: (match_points, detection_counts,
// count_errors_of):
//   detection   points matched one-to-one within `radius` (same label when match_same_label, same frame),
//               TP / FP / FN summed over images, precision / recall / F1 from the sums;
//   counts      MAE / RMSE / sMAPE / bias over the per-image counts, per class and of the per-image
//               totals (the sum over classes).
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "microcount/core/error.hpp"
#include "microcount/eval/matching.hpp"
#include "microcount/eval/metrics.hpp"
#include "microcount/io/annotations.hpp"
#include "microcount/train/run_folder.hpp"

namespace microcount::train {

// One test image, as the trainer or `evaluate` saw it. K = number of classes (labels).
struct image_result {
  std::string name;
  std::vector<double> truth_counts;        // [K]; empty: counted from truth_points
  std::vector<double> predicted_counts;    // [K] (density: sum of the class's map); empty: counted from predicted_points
  std::vector<io::point> truth_points;     // point::label in [0, K)
  std::vector<io::point> predicted_points; // point::label in [0, K)
};

struct test_results_options {
  double radius = 5.0;            // pixels: a prediction matches a truth point at distance ≤ radius
  bool match_same_label = true;   // a match needs equal labels (per-class detection)
  bool points_predicted = true;   // false for heads without points (regression): no detection figures
};

struct class_results {
  std::string label;                // "" for the overall figures
  eval::detection_counts detection; // summed over images
  eval::count_errors counts;        // over the per-image counts
  double truth_total = 0;           // summed true count
  double predicted_total = 0;       // summed predicted count
  double total_distance = 0;        // summed distance of the matched pairs (pixels)
};

struct image_row {
  std::string name;
  std::vector<double> truth_counts;      // [K]
  std::vector<double> predicted_counts;  // [K]
  double truth_total = 0;
  double predicted_total = 0;
  eval::detection_counts detection;
};

struct test_results {
  double radius = 0;
  bool has_detection = true;        // options.points_predicted
  bool same_label = true;           // options.match_same_label
  std::vector<std::string> labels;  // [K]
  class_results overall;
  std::vector<class_results> classes;  // [K]
  std::vector<image_row> images;
};

namespace test_results_detail {

inline std::vector<double> counts_of(const image_result& im, const std::vector<double>& given,
                                     const std::vector<io::point>& points, std::size_t K, const char* side) {
  if (!given.empty()) {
    if (given.size() != K)
      throw error(im.name, std::string(side) + " counts have " + std::to_string(given.size()) + " classes, expected " +
                               std::to_string(K));
    for (const double c : given)
      if (!std::isfinite(c)) throw error(im.name, std::string(side) + " count is not a finite number");
    return given;
  }
  std::vector<double> counted(K, 0.0);
  for (const auto& p : points) counted[static_cast<std::size_t>(p.label)] += 1;
  return counted;
}

inline void check_labels(const image_result& im, const std::vector<io::point>& points, std::size_t K, const char* side) {
  for (const auto& p : points)
    if (p.label < 0 || static_cast<std::size_t>(p.label) >= K)
      throw error(im.name, std::string(side) + " point has label " + std::to_string(p.label) + " but there are " +
                               std::to_string(K) + " classes");
}

inline nlohmann::json number(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }

inline nlohmann::json class_json(const class_results& c, bool has_detection) {
  nlohmann::json j = {{"mae", c.counts.mae},          {"rmse", c.counts.rmse},
                      {"smape", c.counts.smape},      {"mean_error", c.counts.mean_error},
                      {"truth_count", c.truth_total}, {"predicted_count", c.predicted_total}};
  const auto& d = c.detection;
  const bool any_match = d.true_positives > 0;
  j["precision"] = has_detection ? nlohmann::json(d.precision()) : nlohmann::json(nullptr);
  j["recall"] = has_detection ? nlohmann::json(d.recall()) : nlohmann::json(nullptr);
  j["f1"] = has_detection ? nlohmann::json(d.f1()) : nlohmann::json(nullptr);
  j["tp"] = has_detection ? nlohmann::json(d.true_positives) : nlohmann::json(nullptr);
  j["fp"] = has_detection ? nlohmann::json(d.false_positives) : nlohmann::json(nullptr);
  j["fn"] = has_detection ? nlohmann::json(d.false_negatives) : nlohmann::json(nullptr);
  j["mean_distance"] = has_detection && any_match
                           ? nlohmann::json(c.total_distance / static_cast<double>(d.true_positives))
                           : nlohmann::json(nullptr);
  return j;
}

}  // namespace test_results_detail

// Everything from the per-image results. `labels` names the K classes (point::label indexes it).
inline test_results compute_test_results(std::span<const image_result> images, const std::vector<std::string>& labels,
                                         const test_results_options& options = {}) {
  namespace d = test_results_detail;
  const std::size_t K = labels.size();
  if (K == 0) throw error("test results", "no class labels given");
  test_results out;
  out.radius = options.radius;
  out.has_detection = options.points_predicted;
  out.same_label = options.match_same_label;
  out.labels = labels;
  out.classes.resize(K);
  for (std::size_t k = 0; k < K; ++k) out.classes[k].label = labels[k];

  const std::size_t n = images.size();
  std::vector<std::vector<double>> truth(K + 1, std::vector<double>(n)), predicted = truth;  // [K + 1][images], K = total
  const eval::match_options match{options.radius, options.match_same_label, true};
  for (std::size_t i = 0; i < n; ++i) {
    const auto& im = images[i];
    d::check_labels(im, im.truth_points, K, "truth");
    d::check_labels(im, im.predicted_points, K, "predicted");
    image_row row;
    row.name = im.name;
    row.truth_counts = d::counts_of(im, im.truth_counts, im.truth_points, K, "truth");
    row.predicted_counts = d::counts_of(im, im.predicted_counts, im.predicted_points, K, "predicted");
    for (std::size_t k = 0; k < K; ++k) {
      truth[k][i] = row.truth_counts[k];
      predicted[k][i] = row.predicted_counts[k];
      row.truth_total += row.truth_counts[k];
      row.predicted_total += row.predicted_counts[k];
    }
    truth[K][i] = row.truth_total;
    predicted[K][i] = row.predicted_total;

    if (options.points_predicted) {
      const auto m = eval::match_points(im.truth_points, im.predicted_points, match);
      row.detection = eval::detection_counts_of(m);
      out.overall.detection += row.detection;
      out.overall.total_distance += m.total_distance();
      // A pair belongs to its truth point's class, a miss to the truth point's, a false alarm to the prediction's.
      for (const auto& pair : m.pairs) {
        auto& c = out.classes[static_cast<std::size_t>(im.truth_points[pair.truth].label)];
        c.detection.true_positives += 1;
        c.total_distance += pair.distance;
      }
      for (const auto t : m.unmatched_truth)
        out.classes[static_cast<std::size_t>(im.truth_points[t].label)].detection.false_negatives += 1;
      for (const auto p : m.unmatched_predicted)
        out.classes[static_cast<std::size_t>(im.predicted_points[p].label)].detection.false_positives += 1;
    }
    out.images.push_back(std::move(row));
  }
  for (std::size_t k = 0; k <= K; ++k) {
    auto& c = k == K ? out.overall : out.classes[k];
    c.counts = eval::count_errors_of(predicted[k], truth[k]);
    for (std::size_t i = 0; i < n; ++i) {
      c.truth_total += truth[k][i];
      c.predicted_total += predicted[k][i];
    }
  }
  return out;
}

// The one-line summary `microcount evaluate` prints: overall "mae", "rmse", "smape", "mean_error",
// "precision", "recall", "f1", "tp", "fp", "fn", "mean_distance", "truth_count", "predicted_count",
// plus "radius", "images" and "per_class": {label: the same fields}. Detection fields are null for a
// model without points (and mean_distance without a match).
inline nlohmann::json to_json(const test_results& r) {
  namespace d = test_results_detail;
  nlohmann::json j = d::class_json(r.overall, r.has_detection);
  j["radius"] = r.radius;
  j["images"] = r.images.size();
  j["per_class"] = nlohmann::json::object();
  for (const auto& c : r.classes) j["per_class"][c.label] = d::class_json(c, r.has_detection);
  return j;
}

// to_json plus "labels" and "per_image": [{"name", "truth_count", "predicted_count" (totals),
// "truth_counts", "predicted_counts" ([K]), "tp", "fp", "fn"}] — the content of test_results.json.
inline nlohmann::json to_json_with_images(const test_results& r) {
  nlohmann::json j = to_json(r);
  j["labels"] = r.labels;
  j["per_image"] = nlohmann::json::array();
  for (const auto& im : r.images) {
    nlohmann::json row = {{"name", im.name},
                          {"truth_count", im.truth_total},
                          {"predicted_count", im.predicted_total},
                          {"truth_counts", im.truth_counts},
                          {"predicted_counts", im.predicted_counts}};
    for (const auto* key : {"tp", "fp", "fn"}) row[key] = nullptr;
    if (r.has_detection) {
      row["tp"] = im.detection.true_positives;
      row["fp"] = im.detection.false_positives;
      row["fn"] = im.detection.false_negatives;
    }
    j["per_image"].push_back(std::move(row));
  }
  return j;
}

namespace test_results_detail {

inline std::string format(const char* fmt, double a) {
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, a);
  return buf;
}

inline std::string pad(std::string s, std::size_t width, bool left_align = false) {
  if (s.size() < width) s = left_align ? s + std::string(width - s.size(), ' ') : std::string(width - s.size(), ' ') + s;
  return s;
}

inline std::string class_line(const std::string& name, const class_results& c, bool has_detection, std::size_t name_width) {
  std::string line = pad(name, name_width, true);
  const auto& d = c.detection;
  if (has_detection) {
    line += pad(std::to_string(d.true_positives), 8) + pad(std::to_string(d.false_positives), 8) +
            pad(std::to_string(d.false_negatives), 8) + pad(format("%.4f", d.precision()), 11) +
            pad(format("%.4f", d.recall()), 9) + pad(format("%.4f", d.f1()), 9);
  } else {
    line += pad("-", 8) + pad("-", 8) + pad("-", 8) + pad("-", 11) + pad("-", 9) + pad("-", 9);
  }
  line += pad(format("%.3f", c.counts.mae), 10) + pad(format("%.3f", c.counts.rmse), 10) +
          pad(format("%.1f", c.truth_total), 11) + pad(format("%.1f", c.predicted_total), 11);
  return line + "\n";
}

}  // namespace test_results_detail

// test_results.txt: the table a person reads.
inline std::string to_text(const test_results& r) {
  namespace d = test_results_detail;
  std::size_t name_width = 9;
  for (const auto& l : r.labels) name_width = std::max(name_width, l.size() + 2);
  std::string t;
  t += "Test results: " + std::to_string(r.images.size()) + " images, " + std::to_string(r.labels.size()) +
       (r.labels.size() == 1 ? " class" : " classes") + "\n";
  if (r.has_detection)
    t += "Points matched one-to-one within a radius of " + d::format("%g", r.radius) +
         " px (Hungarian matching" +
         (r.same_label ? std::string(", same class only") : std::string(", any class")) +
         "; most matches first, then shortest distance).\n";
  else
    t += "This model predicts counts only: no detection figures.\n";
  t += "Counts: MAE and RMSE of the per-image counts (density heads: the sum of the map).\n\n";
  const std::string header = d::pad("class", name_width, true) + d::pad("TP", 8) + d::pad("FP", 8) + d::pad("FN", 8) +
                             d::pad("precision", 11) + d::pad("recall", 9) + d::pad("F1", 9) + d::pad("MAE", 10) +
                             d::pad("RMSE", 10) + d::pad("true", 11) + d::pad("predicted", 11) + "\n";
  t += header + std::string(header.size() - 1, '-') + "\n";
  for (const auto& c : r.classes) t += d::class_line(c.label, c, r.has_detection, name_width);
  t += d::class_line("overall", r.overall, r.has_detection, name_width);
  if (r.has_detection && r.overall.detection.true_positives > 0)
    t += "\nMean distance of matched pairs: " +
         d::format("%.3f", r.overall.total_distance / static_cast<double>(r.overall.detection.true_positives)) + " px\n";

  std::size_t image_width = 7;
  for (const auto& im : r.images) image_width = std::max(image_width, im.name.size() + 2);
  t += "\nPer image (counts: true / predicted";
  t += r.labels.size() > 1 ? ", then per class)\n" : ")\n";
  std::string image_header = d::pad("image", image_width, true) + d::pad("true", 10) + d::pad("predicted", 11) +
                             d::pad("error", 10) + (r.has_detection ? d::pad("TP", 7) + d::pad("FP", 7) + d::pad("FN", 7) : "");
  if (r.labels.size() > 1)
    for (const auto& l : r.labels) image_header += "  " + l;
  t += image_header + "\n" + std::string(image_header.size(), '-') + "\n";
  for (const auto& im : r.images) {
    t += d::pad(im.name, image_width, true) + d::pad(d::format("%.1f", im.truth_total), 10) +
         d::pad(d::format("%.2f", im.predicted_total), 11) +
         d::pad(d::format("%+.2f", im.predicted_total - im.truth_total), 10);
    if (r.has_detection)
      t += d::pad(std::to_string(im.detection.true_positives), 7) + d::pad(std::to_string(im.detection.false_positives), 7) +
           d::pad(std::to_string(im.detection.false_negatives), 7);
    if (r.labels.size() > 1)
      for (std::size_t k = 0; k < r.labels.size(); ++k)
        t += "  " + d::format("%.0f", im.truth_counts[k]) + "/" + d::format("%.2f", im.predicted_counts[k]);
    t += "\n";
  }
  return t;
}

// Writes dir/test_results.json (to_json_with_images, pretty) and dir/test_results.txt, atomically.
inline void write_test_results(const std::filesystem::path& dir, const test_results& r) {
  const run_layout layout{dir};
  write_json_atomically(layout.test_results_json(), to_json_with_images(r));
  io::write_text_atomically(layout.test_results_txt(), to_text(r));
}

// compute_test_results + write_test_results; returns the results (for the log and the summary line).
inline test_results write_test_results(const std::filesystem::path& dir, std::span<const image_result> images,
                                       const std::vector<std::string>& labels, const test_results_options& options = {}) {
  test_results r = compute_test_results(images, labels, options);
  write_test_results(dir, r);
  return r;
}

}  // namespace microcount::train
