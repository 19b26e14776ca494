#pragma once
// Detection metrics (from a point matching) and count metrics (over a set of images).
//
// Detection, with TP = matched pairs, FP = unmatched predictions, FN = unmatched truth points:
//   precision = TP / (TP + FP)        (1 when there is no prediction: nothing claimed, nothing wrong)
//   recall    = TP / (TP + FN)        (1 when there is nothing to find)
//   F1        = 2 TP / (2 TP + FP + FN)   (1 when both sides are empty; equals 2PR/(P+R) otherwise)
// Counts, over images i = 1..N with predicted count p_i and true count g_i (p_i may be fractional,
// e.g. the sum of a density map):
//   MAE        = mean |p_i − g_i|
//   RMSE       = sqrt(mean (p_i − g_i)²)
//   sMAPE      = mean |p_i − g_i| / ((|p_i| + |g_i|) / 2), a term is 0 when p_i = g_i = 0; a fraction in [0, 2]
//   mean_error = mean (p_i − g_i)   (bias: > 0 over-counts, < 0 under-counts)
#include <cmath>
#include <cstddef>
#include <span>

#include "microcount/core/error.hpp"
#include "microcount/eval/matching.hpp"

namespace microcount::eval {

struct detection_counts {
  std::size_t true_positives = 0;
  std::size_t false_positives = 0;
  std::size_t false_negatives = 0;

  [[nodiscard]] double precision() const {
    const std::size_t claimed = true_positives + false_positives;
    return claimed == 0 ? 1.0 : static_cast<double>(true_positives) / static_cast<double>(claimed);
  }
  [[nodiscard]] double recall() const {
    const std::size_t present = true_positives + false_negatives;
    return present == 0 ? 1.0 : static_cast<double>(true_positives) / static_cast<double>(present);
  }
  [[nodiscard]] double f1() const {
    const std::size_t denominator = 2 * true_positives + false_positives + false_negatives;
    return denominator == 0 ? 1.0 : 2.0 * static_cast<double>(true_positives) / static_cast<double>(denominator);
  }
  detection_counts& operator+=(const detection_counts& other) {
    true_positives += other.true_positives;
    false_positives += other.false_positives;
    false_negatives += other.false_negatives;
    return *this;
  }
  friend bool operator==(const detection_counts&, const detection_counts&) = default;
};

inline detection_counts detection_counts_of(const point_matching& matching) {
  return {matching.pairs.size(), matching.unmatched_predicted.size(), matching.unmatched_truth.size()};
}

struct count_errors {
  std::size_t images = 0;  // number of (predicted, true) count pairs
  double mae = 0;
  double rmse = 0;
  double smape = 0;
  double mean_error = 0;
};

// Count metrics of predicted vs true counts per image (same length; empty gives all zeros).
inline count_errors count_errors_of(std::span<const double> predicted, std::span<const double> truth) {
  if (predicted.size() != truth.size())
    throw error("count metrics", "got " + std::to_string(predicted.size()) + " predicted counts for " +
                                     std::to_string(truth.size()) + " true counts");
  count_errors out;
  out.images = truth.size();
  if (truth.empty()) return out;
  double absolute = 0, squared = 0, symmetric = 0, signed_sum = 0;
  for (std::size_t i = 0; i < truth.size(); ++i) {
    const double p = predicted[i], g = truth[i];
    if (!std::isfinite(p) || !std::isfinite(g))
      throw error("count metrics", "count " + std::to_string(i) + " is not a finite number");
    const double e = p - g;
    absolute += std::abs(e);
    squared += e * e;
    signed_sum += e;
    const double scale = (std::abs(p) + std::abs(g)) / 2;
    if (scale > 0) symmetric += std::abs(e) / scale;
  }
  const auto n = static_cast<double>(truth.size());
  out.mae = absolute / n;
  out.rmse = std::sqrt(squared / n);
  out.smape = symmetric / n;
  out.mean_error = signed_sum / n;
  return out;
}

}  // namespace microcount::eval
