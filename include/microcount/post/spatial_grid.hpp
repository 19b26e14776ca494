#pragma once
// A uniform grid over a fixed set of D-dimensional points, for radius and k-nearest queries that
// touch only nearby cells instead of every point.
//
// Points are bucketed by cell (cell side `cell`), stored sorted by cell key with their coordinates
// copied alongside (cache-friendly scans). When the bounding box has few cells per point a dense table
// of cell starts gives O(1) lookups; otherwise only occupied cells are stored (memory O(points) however
// sparse the points are) and found by binary search. A box query walks the cells row by row: along the
// last axis the cells of one row have consecutive keys, so each row is one contiguous run.
// A radius query with radius <= cell visits 3^D cells.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <numeric>
#include <queue>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "microcount/core/error.hpp"

namespace microcount::post {

template <std::size_t D>
using coord = std::array<double, D>;  // one point: D coordinates

template <std::size_t D>
class spatial_grid {
  static_assert(D >= 1 && D <= 4, "spatial_grid: D must be 1 to 4");

 public:
  spatial_grid() = default;

  // `cell` > 0; every coordinate must be finite.
  spatial_grid(std::span<const coord<D>> points, double cell) : cell_(cell), inv_cell_(1.0 / cell) {
    require(cell > 0 && std::isfinite(cell), "spatial_grid", "cell size must be positive and finite");
    if (points.empty()) return;
    coord<D> lo, hi;
    lo.fill(std::numeric_limits<double>::infinity());
    hi.fill(-std::numeric_limits<double>::infinity());
    for (const auto& p : points)
      for (std::size_t a = 0; a < D; ++a) {
        require(std::isfinite(p[a]), "spatial_grid", "a coordinate is not finite");
        lo[a] = std::min(lo[a], p[a]);
        hi[a] = std::max(hi[a], p[a]);
      }
    origin_ = lo;
    // Keys are linear indices over the bounding box of cells; refuse boxes whose key would overflow.
    long double cells = 1;
    for (std::size_t a = 0; a < D; ++a) {
      extent_[a] = static_cast<std::int64_t>(std::floor((hi[a] - lo[a]) * inv_cell_)) + 1;
      cells *= static_cast<long double>(extent_[a]);
    }
    require(cells < 0x1p62L, "spatial_grid",
            "cell size " + std::to_string(cell) + " is too small for the extent of the points");

    const std::size_t n = points.size();
    std::vector<std::int64_t> key(n);
    for (std::size_t i = 0; i < n; ++i) key[i] = key_of(cell_of(points[i]));
    index_.resize(n);
    sorted_.resize(n);
    // Few cells for the points: a dense table of cell starts (counting sort, O(1) cell lookup).
    // Otherwise only the occupied cells are kept, sorted, and found by binary search.
    if (cells <= static_cast<long double>(8 * n + 65536)) {
      dense_.assign(static_cast<std::size_t>(cells) + 1, 0);
      for (auto k : key) ++dense_[static_cast<std::size_t>(k) + 1];
      for (std::size_t c = 1; c < dense_.size(); ++c) dense_[c] += dense_[c - 1];
      std::vector<std::size_t> fill(dense_.begin(), dense_.end() - 1);
      for (std::size_t i = 0; i < n; ++i) {
        const std::size_t j = fill[static_cast<std::size_t>(key[i])]++;
        index_[j] = i;
        sorted_[j] = points[i];
      }
      return;
    }
    std::vector<std::size_t> order(n);
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return key[a] < key[b]; });
    for (std::size_t j = 0; j < n; ++j) {
      index_[j] = order[j];
      sorted_[j] = points[order[j]];
      if (j == 0 || key[order[j]] != keys_.back()) {
        keys_.push_back(key[order[j]]);
        begin_.push_back(j);
      }
    }
    begin_.push_back(n);
  }

  [[nodiscard]] std::size_t size() const { return sorted_.size(); }
  [[nodiscard]] double cell() const { return cell_; }

  // f(original_index, coordinates) for every point in a cell that meets the box [q - r, q + r].
  // The caller filters by exact distance; points come in cell order.
  template <class F>
  void for_each_candidate(const coord<D>& q, double r, F&& f) const {
    if (sorted_.empty()) return;
    std::array<std::int64_t, D> lo, hi;
    for (std::size_t a = 0; a < D; ++a) {
      lo[a] = std::max<std::int64_t>(0, floor_cell(q[a] - r, a));
      hi[a] = std::min<std::int64_t>(extent_[a] - 1, floor_cell(q[a] + r, a));
      if (lo[a] > hi[a]) return;
    }
    for_each_row(lo, hi, [&](std::array<std::int64_t, D> c) { scan_row(c, lo[D - 1], hi[D - 1], f); });
  }

  // f(original_index, coordinates, squared_distance) for every point with |p - q| <= r (Euclidean).
  template <class F>
  void for_each_within(const coord<D>& q, double r, F&& f) const {
    const double r2 = r * r;
    for_each_candidate(q, r, [&](std::size_t i, const coord<D>& p) {
      const double d2 = squared_distance(p, q);
      if (d2 <= r2) f(i, p, d2);
    });
  }

  // The k nearest points to q as (squared distance, original index), ascending, ties by lower index.
  // `exclude` (e.g. the query's own index) is skipped. Fewer than k when the grid holds fewer.
  [[nodiscard]] std::vector<std::pair<double, std::size_t>> nearest(
      const coord<D>& q, std::size_t k, std::size_t exclude = std::numeric_limits<std::size_t>::max()) const {
    std::vector<std::pair<double, std::size_t>> best;  // max-heap on (d2, index)
    if (k == 0 || sorted_.empty()) return best;
    std::array<std::int64_t, D> centre;
    std::int64_t last_ring = 0;  // the ring beyond which no cell of the grid lies
    double margin = cell_;       // distance from q to the nearest face of its own cell
    for (std::size_t a = 0; a < D; ++a) {
      centre[a] = floor_cell(q[a], a);
      last_ring = std::max({last_ring, std::abs(centre[a]), std::abs(extent_[a] - 1 - centre[a])});
      const double low_face = origin_[a] + static_cast<double>(centre[a]) * cell_;
      margin = std::min({margin, std::max(0.0, q[a] - low_face), std::max(0.0, low_face + cell_ - q[a])});
    }
    auto offer = [&](std::size_t i, const coord<D>& p) {
      if (i == exclude) return;
      const std::pair<double, std::size_t> cand{squared_distance(p, q), i};
      if (best.size() < k) {
        best.push_back(cand);
        std::push_heap(best.begin(), best.end());
      } else if (cand < best.front()) {
        std::pop_heap(best.begin(), best.end());
        best.back() = cand;
        std::push_heap(best.begin(), best.end());
      }
    };
    for (std::int64_t ring = 0; ring <= last_ring; ++ring) {
      visit_ring(centre, ring, offer);
      // Unvisited points lie in rings > ring: along some axis at least `ring` whole cells plus the
      // margin to q's own cell face away from q.
      const double reach = static_cast<double>(ring) * cell_ + margin;
      if (best.size() == k && best.front().first < reach * reach) break;
    }
    std::sort_heap(best.begin(), best.end());
    return best;
  }

  static double squared_distance(const coord<D>& a, const coord<D>& b) {
    double s = 0;
    for (std::size_t i = 0; i < D; ++i) s += (a[i] - b[i]) * (a[i] - b[i]);
    return s;
  }

 private:
  std::int64_t floor_cell(double v, std::size_t axis) const {
    const double c = std::floor((v - origin_[axis]) * inv_cell_);
    // Clamp far-away queries so the integer conversion stays defined.
    return static_cast<std::int64_t>(std::clamp(c, -0x1p40, 0x1p40));
  }
  std::array<std::int64_t, D> cell_of(const coord<D>& p) const {
    std::array<std::int64_t, D> c;
    for (std::size_t a = 0; a < D; ++a) c[a] = std::clamp<std::int64_t>(floor_cell(p[a], a), 0, extent_[a] - 1);
    return c;
  }
  std::int64_t key_of(const std::array<std::int64_t, D>& c) const {
    std::int64_t k = 0;
    for (std::size_t a = 0; a < D; ++a) k = k * extent_[a] + c[a];
    return k;
  }

  // Calls row(c) for every combination of the first D-1 cell coordinates in [lo, hi] (c[D-1] unused).
  template <class Row>
  static void for_each_row(const std::array<std::int64_t, D>& lo, const std::array<std::int64_t, D>& hi, Row&& row) {
    std::array<std::int64_t, D> c = lo;
    while (true) {
      row(c);
      std::size_t a = D - 1;
      while (a > 0) {
        --a;
        if (++c[a] <= hi[a]) break;
        c[a] = lo[a];
        if (a == 0) return;
      }
      if (D == 1) return;
    }
  }

  // Points of the cells (c[0..D-2], x) for x in [x0, x1]: one binary search, then a contiguous run.
  template <class F>
  void scan_row(std::array<std::int64_t, D> c, std::int64_t x0, std::int64_t x1, F& f) const {
    c[D - 1] = x0;
    const std::int64_t k0 = key_of(c);
    const std::int64_t k1 = k0 + (x1 - x0);
    if (!dense_.empty()) {
      for (std::size_t j = dense_[static_cast<std::size_t>(k0)]; j < dense_[static_cast<std::size_t>(k1) + 1]; ++j) f(index_[j], sorted_[j]);
      return;
    }
    auto it = std::lower_bound(keys_.begin(), keys_.end(), k0);
    for (; it != keys_.end() && *it <= k1; ++it) {
      const auto cell = static_cast<std::size_t>(it - keys_.begin());
      for (std::size_t j = begin_[cell]; j < begin_[cell + 1]; ++j) f(index_[j], sorted_[j]);
    }
  }

  // Every cell at Chebyshev cell distance exactly `ring` from `centre` (clipped to the grid).
  template <class F>
  void visit_ring(const std::array<std::int64_t, D>& centre, std::int64_t ring, F& f) const {
    std::array<std::int64_t, D> lo, hi;
    for (std::size_t a = 0; a < D; ++a) {
      lo[a] = std::max<std::int64_t>(0, centre[a] - ring);
      hi[a] = std::min<std::int64_t>(extent_[a] - 1, centre[a] + ring);
      if (lo[a] > hi[a]) return;
    }
    for_each_row(lo, hi, [&](std::array<std::int64_t, D> c) {
      bool on_shell = false;  // a leading coordinate already sits on the ring: the whole row is on it
      for (std::size_t a = 0; a + 1 < D; ++a) on_shell = on_shell || std::abs(c[a] - centre[a]) == ring;
      if (on_shell || ring == 0) {
        scan_row(c, lo[D - 1], hi[D - 1], f);
        return;
      }
      const std::int64_t left = centre[D - 1] - ring, right = centre[D - 1] + ring;
      if (left >= 0 && left < extent_[D - 1]) scan_row(c, left, left, f);
      if (right >= 0 && right < extent_[D - 1]) scan_row(c, right, right, f);
    });
  }

  double cell_ = 1, inv_cell_ = 1;
  coord<D> origin_{};
  std::array<std::int64_t, D> extent_{};
  std::vector<std::size_t> dense_;    // [all cells + 1]: first sorted position of every cell (dense mode)
  std::vector<std::int64_t> keys_;    // sparse mode: occupied cell keys, ascending
  std::vector<std::size_t> begin_;    // sparse mode: [occupied + 1] first sorted position of each
  std::vector<std::size_t> index_;    // [points]: original index of each sorted point
  std::vector<coord<D>> sorted_;      // [points]: coordinates in cell order
};

}  // namespace microcount::post
