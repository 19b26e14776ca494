#pragma once
// One-to-one matching of predicted points to ground-truth points within a radius.
//
// Objective (exact, in this order):
//   1. only pairs at Euclidean distance ≤ radius may be matched (same label and same frame, when asked);
//   2. the number of matched pairs is as large as possible;
//   3. among all matchings of that size, the summed distance of the pairs is as small as possible.
// Unmatched ground-truth points are false negatives, unmatched predictions false positives.
//
// How: the points form a bipartite graph with an edge between a truth and a prediction within the
// radius. Its connected components ("blocks") are independent, so each is solved on its own — a
// dense assignment on a block of k points costs O(k³), and blocks of sparse detections are small,
// which keeps 10⁴-point images fast. Inside a block every truth–prediction pair gets the cost
// (forbidden, distance) = (0, d) when allowed and (1, 0) when d > radius, compared lexicographically.
// A full assignment of the smaller side minimises first the number of forbidden pairs it uses — that is
// min(n, m) minus the number of allowed pairs, so it maximises the matches — and then their distance.
// Forbidden pairs are dropped afterwards. This is the "large constant" construction with the constant
// taken to infinity, exactly: no constant to choose, no rounding that could trade a match for distance.
#include <algorithm>
#include <cmath>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <numeric>
#include <span>
#include <string>
#include <tuple>
#include <vector>

#include "microcount/core/error.hpp"
#include "microcount/eval/assignment.hpp"
#include "microcount/io/annotations.hpp"

namespace microcount::eval {

// The lexicographic block cost: pairs beyond the radius first, summed distance second.
struct radius_cost {
  std::int64_t forbidden = 0;  // number of pairs farther apart than the radius
  double distance = 0;         // summed distance of the allowed pairs

  friend radius_cost operator+(const radius_cost& a, const radius_cost& b) {
    return {a.forbidden + b.forbidden, a.distance + b.distance};
  }
  friend radius_cost operator-(const radius_cost& a, const radius_cost& b) {
    return {a.forbidden - b.forbidden, a.distance - b.distance};
  }
  friend bool operator==(const radius_cost&, const radius_cost&) = default;
  friend std::partial_ordering operator<=>(const radius_cost& a, const radius_cost& b) {
    if (a.forbidden != b.forbidden) return a.forbidden <=> b.forbidden;
    return a.distance <=> b.distance;
  }
};

template <>
struct cost_traits<radius_cost> {
  static constexpr radius_cost zero() { return {}; }
  static constexpr radius_cost unreachable() {
    return {std::numeric_limits<std::int64_t>::max() / 4, std::numeric_limits<double>::infinity()};
  }
};

struct match_options {
  double radius = 5.0;     // pixels; a pair matches only when its distance is ≤ radius
  bool same_label = true;  // match only points with equal point::label (per-class matching)
  bool same_frame = true;  // match only points with equal point::frame (movies)
};

struct matched_pair {
  std::size_t truth = 0;      // index into the truth points
  std::size_t predicted = 0;  // index into the predicted points
  double distance = 0;        // Euclidean, pixels
};

struct point_matching {
  std::vector<matched_pair> pairs;                // ascending by truth index
  std::vector<std::size_t> unmatched_truth;       // false negatives, ascending
  std::vector<std::size_t> unmatched_predicted;   // false positives, ascending
  std::size_t blocks = 0;                         // blocks solved by an assignment
  std::size_t largest_block = 0;                  // points (truth + predicted) in the largest of them

  [[nodiscard]] double total_distance() const {
    double sum = 0;
    for (const auto& p : pairs) sum += p.distance;
    return sum;
  }
};

namespace detail {

inline void check_coordinates(std::span<const io::point> points, const char* side) {
  // Cells are computed as int64 below; absurd coordinates are an input error, not UB.
  constexpr double limit = 1e12;
  for (std::size_t i = 0; i < points.size(); ++i) {
    const auto& p = points[i];
    if (!std::isfinite(p.x) || !std::isfinite(p.y) || std::abs(p.x) > limit || std::abs(p.y) > limit)
      throw error("matching", std::string(side) + " point " + std::to_string(i) + " has a non-finite or out-of-range coordinate");
  }
}

// Union–find with path halving over truth (0..n-1) and predicted (n..n+m-1) nodes.
struct disjoint_sets {
  std::vector<std::size_t> parent;
  explicit disjoint_sets(std::size_t n) : parent(n) { std::iota(parent.begin(), parent.end(), std::size_t{0}); }
  std::size_t find(std::size_t a) {
    while (parent[a] != a) a = parent[a] = parent[parent[a]];
    return a;
  }
  void join(std::size_t a, std::size_t b) {
    a = find(a);
    b = find(b);
    if (a != b) parent[std::max(a, b)] = std::min(a, b);  // smallest index is the root: deterministic
  }
};

// A grid cell of side ≥ radius inside one (frame, label) group: neighbours lie in the 3×3 cells around.
using cell_key = std::tuple<int, int, std::int64_t, std::int64_t>;  // frame, label, column cell, row cell

}  // namespace detail

// Matches `predicted` to `truth` (see the objective above).
inline point_matching match_points(std::span<const io::point> truth, std::span<const io::point> predicted,
                                   const match_options& options = {}) {
  const double radius = options.radius;
  if (!(radius >= 0) || !std::isfinite(radius))
    throw error("matching", "radius must be a finite number ≥ 0, got " + std::to_string(radius));
  detail::check_coordinates(truth, "truth");
  detail::check_coordinates(predicted, "predicted");
  const std::size_t n = truth.size(), m = predicted.size();
  const double radius_squared = radius * radius;
  const double cell = std::max(radius, 1e-3);  // any side ≥ radius works; keep cell indices small

  const auto key_of = [&](const io::point& p) {
    return detail::cell_key{options.same_frame ? p.frame : 0, options.same_label ? p.label : 0,
                            static_cast<std::int64_t>(std::floor(p.x / cell)),
                            static_cast<std::int64_t>(std::floor(p.y / cell))};
  };
  const auto squared_distance = [&](std::size_t t, std::size_t p) {
    const double dx = truth[t].x - predicted[p].x, dy = truth[t].y - predicted[p].y;
    return dx * dx + dy * dy;
  };

  // Predictions sorted by cell, so each truth point finds its candidates by binary search.
  std::vector<std::pair<detail::cell_key, std::size_t>> predicted_cells(m);  // [m]
  for (std::size_t p = 0; p < m; ++p) predicted_cells[p] = {key_of(predicted[p]), p};
  std::sort(predicted_cells.begin(), predicted_cells.end());

  detail::disjoint_sets blocks(n + m);
  std::vector<char> has_partner(n + m, 0);  // [n + m]: some point of the other side within the radius
  for (std::size_t t = 0; t < n; ++t) {
    const auto [frame, label, cx, cy] = key_of(truth[t]);
    for (std::int64_t dx = -1; dx <= 1; ++dx)
      for (std::int64_t dy = -1; dy <= 1; ++dy) {
        const detail::cell_key k{frame, label, cx + dx, cy + dy};
        auto it = std::lower_bound(predicted_cells.begin(), predicted_cells.end(), k,
                                   [](const auto& e, const detail::cell_key& key) { return e.first < key; });
        for (; it != predicted_cells.end() && it->first == k; ++it) {
          if (squared_distance(t, it->second) > radius_squared) continue;
          blocks.join(t, n + it->second);
          has_partner[t] = has_partner[n + it->second] = 1;
        }
      }
  }

  // Gather the members of each block (roots are the smallest member index, so the order is fixed).
  std::vector<std::vector<std::size_t>> block_truth, block_predicted;
  {
    std::vector<std::size_t> id_of_root(n + m, std::numeric_limits<std::size_t>::max());
    for (std::size_t v = 0; v < n + m; ++v) {
      if (!has_partner[v]) continue;
      const std::size_t root = blocks.find(v);
      if (id_of_root[root] == std::numeric_limits<std::size_t>::max()) {
        id_of_root[root] = block_truth.size();
        block_truth.emplace_back();
        block_predicted.emplace_back();
      }
      const std::size_t id = id_of_root[root];
      if (v < n) block_truth[id].push_back(v);
      else block_predicted[id].push_back(v - n);
    }
  }

  point_matching result;
  std::vector<std::ptrdiff_t> partner_of_truth(n, unassigned);  // [n]
  std::vector<char> predicted_matched(m, 0);                    // [m]
  for (std::size_t b = 0; b < block_truth.size(); ++b) {
    const auto& rows = block_truth[b];
    const auto& cols = block_predicted[b];
    result.blocks += 1;
    result.largest_block = std::max(result.largest_block, rows.size() + cols.size());
    const auto cost_of = [&](std::size_t r, std::size_t c) {
      const double d2 = squared_distance(rows[r], cols[c]);
      return d2 <= radius_squared ? radius_cost{0, std::sqrt(d2)} : radius_cost{1, 0.0};
    };
    const auto column_of_row = solve_assignment<radius_cost>(rows.size(), cols.size(), cost_of);
    for (std::size_t r = 0; r < rows.size(); ++r) {
      const std::ptrdiff_t c = column_of_row[r];
      if (c == unassigned || squared_distance(rows[r], cols[c]) > radius_squared) continue;  // forbidden: drop
      partner_of_truth[rows[r]] = static_cast<std::ptrdiff_t>(cols[c]);
      predicted_matched[cols[c]] = 1;
    }
  }

  for (std::size_t t = 0; t < n; ++t) {
    if (partner_of_truth[t] == unassigned) {
      result.unmatched_truth.push_back(t);
      continue;
    }
    const auto p = static_cast<std::size_t>(partner_of_truth[t]);
    result.pairs.push_back({t, p, std::sqrt(squared_distance(t, p))});
  }
  for (std::size_t p = 0; p < m; ++p)
    if (!predicted_matched[p]) result.unmatched_predicted.push_back(p);
  return result;
}

}  // namespace microcount::eval
