#pragma once
// Independent oracles for point matching: exhaustive search (small instances) and the size of a maximum
// bipartite matching by augmenting paths (Kuhn), both on the pairs match_options allows.
#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <vector>

#include "microcount/eval/matching.hpp"

namespace microcount::test {

inline bool may_match(const io::point& a, const io::point& b, const eval::match_options& o) {
  if (o.same_label && a.label != b.label) return false;
  if (o.same_frame && a.frame != b.frame) return false;
  return std::hypot(a.x - b.x, a.y - b.y) <= o.radius;
}

struct best_matching {
  std::size_t pairs = 0;
  double distance = 0;
};

// Every partial one-to-one matching of allowed pairs: most pairs, then least summed distance.
inline best_matching brute_force_matching(const std::vector<io::point>& truth, const std::vector<io::point>& predicted,
                                          const eval::match_options& o) {
  best_matching best;
  std::vector<char> used(predicted.size(), 0);
  std::function<void(std::size_t, std::size_t, double)> visit = [&](std::size_t t, std::size_t pairs, double dist) {
    if (t == truth.size()) {
      if (pairs > best.pairs || (pairs == best.pairs && dist < best.distance - 1e-12)) best = {pairs, dist};
      return;
    }
    visit(t + 1, pairs, dist);  // leave truth t unmatched
    for (std::size_t p = 0; p < predicted.size(); ++p) {
      if (used[p] || !may_match(truth[t], predicted[p], o)) continue;
      used[p] = 1;
      visit(t + 1, pairs + 1, dist + std::hypot(truth[t].x - predicted[p].x, truth[t].y - predicted[p].y));
      used[p] = 0;
    }
  };
  visit(0, 0, 0.0);
  return best;
}

// Maximum bipartite matching size by augmenting paths (Kuhn), on the allowed pairs only.
inline std::size_t maximum_matching_size(const std::vector<io::point>& truth, const std::vector<io::point>& predicted,
                                         const eval::match_options& o) {
  // Candidate lists through a coarse grid so 10^4-point cases stay fast.
  const double cell = std::max(o.radius, 1.0);
  std::map<std::pair<long, long>, std::vector<std::size_t>> grid;
  for (std::size_t p = 0; p < predicted.size(); ++p)
    grid[{std::lround(std::floor(predicted[p].x / cell)), std::lround(std::floor(predicted[p].y / cell))}].push_back(p);
  std::vector<std::vector<std::size_t>> allowed(truth.size());
  for (std::size_t t = 0; t < truth.size(); ++t) {
    const long cx = std::lround(std::floor(truth[t].x / cell)), cy = std::lround(std::floor(truth[t].y / cell));
    for (long dx = -1; dx <= 1; ++dx)
      for (long dy = -1; dy <= 1; ++dy)
        if (auto it = grid.find({cx + dx, cy + dy}); it != grid.end())
          for (auto p : it->second)
            if (may_match(truth[t], predicted[p], o)) allowed[t].push_back(p);
  }
  std::vector<std::ptrdiff_t> owner(predicted.size(), -1);
  std::vector<std::size_t> stamp(predicted.size(), static_cast<std::size_t>(-1));
  std::function<bool(std::size_t, std::size_t)> augment = [&](std::size_t t, std::size_t round) {
    for (auto p : allowed[t]) {
      if (stamp[p] == round) continue;
      stamp[p] = round;
      if (owner[p] < 0 || augment(static_cast<std::size_t>(owner[p]), round)) {
        owner[p] = static_cast<std::ptrdiff_t>(t);
        return true;
      }
    }
    return false;
  };
  std::size_t size = 0;
  for (std::size_t t = 0; t < truth.size(); ++t) size += augment(t, t);
  return size;
}

}  // namespace microcount::test
