// Point matching within a radius: exhaustive search on small instances, the whole-matrix solve and an
// independent maximum-cardinality matching on large ones, per-class and per-frame separation.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <map>
#include <vector>

#include "microcount/core/rng.hpp"
#include "microcount/eval/matching.hpp"
#include "microcount/eval/metrics.hpp"
#include "eval/matching_oracles.hpp"
#include "test_support.hpp"

using namespace microcount;

namespace {

using test::may_match;

// The matching is consistent: disjoint, complete bookkeeping, every pair allowed and its distance right.
void check_valid(const eval::point_matching& m, const std::vector<io::point>& truth,
                 const std::vector<io::point>& predicted, const eval::match_options& o) {
  std::vector<int> t_seen(truth.size(), 0), p_seen(predicted.size(), 0);
  for (const auto& pair : m.pairs) {
    REQUIRE(pair.truth < truth.size());
    REQUIRE(pair.predicted < predicted.size());
    ++t_seen[pair.truth];
    ++p_seen[pair.predicted];
    CHECK(may_match(truth[pair.truth], predicted[pair.predicted], o));
    CHECK(pair.distance == doctest::Approx(std::hypot(truth[pair.truth].x - predicted[pair.predicted].x,
                                                      truth[pair.truth].y - predicted[pair.predicted].y)));
  }
  for (auto t : m.unmatched_truth) ++t_seen[t];
  for (auto p : m.unmatched_predicted) ++p_seen[p];
  CHECK(std::all_of(t_seen.begin(), t_seen.end(), [](int v) { return v == 1; }));
  CHECK(std::all_of(p_seen.begin(), p_seen.end(), [](int v) { return v == 1; }));
}

std::vector<io::point> random_points(rng& r, std::size_t n, double side, bool on_grid, int labels, int frames) {
  std::vector<io::point> out(n);
  for (auto& p : out) {
    // Integer grids make equal distances (ties) common.
    p.x = on_grid ? static_cast<double>(r.below(static_cast<std::uint64_t>(side))) : r.uniform(0.0, side);
    p.y = on_grid ? static_cast<double>(r.below(static_cast<std::uint64_t>(side))) : r.uniform(0.0, side);
    p.label = static_cast<int>(r.below(static_cast<std::uint64_t>(labels)));
    p.frame = frames > 1 ? static_cast<int>(r.below(static_cast<std::uint64_t>(frames))) : -1;
  }
  return out;
}

}  // namespace

TEST_CASE("matching: most pairs, then least distance, on random small instances (vs exhaustive search)") {
  rng r(99);
  int instances = 0, with_forbidden_choice = 0;
  for (int n = 0; n <= 5; ++n)
    for (int m = 0; m <= 5; ++m)
      for (int trial = 0; trial < 10; ++trial) {
        const bool grid = trial % 2 == 0;
        eval::match_options o;
        o.radius = trial == 9 ? 0.01 : r.uniform(1.0, 4.0);  // trial 9: almost every pair forbidden
        const int labels = trial % 4 == 1 ? 2 : 1;
        const int frames = trial % 5 == 3 ? 2 : 1;
        auto truth = random_points(r, static_cast<std::size_t>(n), 6, grid, labels, frames);
        auto predicted = random_points(r, static_cast<std::size_t>(m), 6, grid, labels, frames);
        const auto result = eval::match_points(truth, predicted, o);
        check_valid(result, truth, predicted, o);
        const auto expected = test::brute_force_matching(truth, predicted, o);
        CHECK(result.pairs.size() == expected.pairs);
        CHECK(result.total_distance() == doctest::Approx(expected.distance).epsilon(1e-9));
        with_forbidden_choice += result.pairs.size() < std::min<std::size_t>(n, m);
        ++instances;
      }
  CHECK(instances == 360);
  CHECK(with_forbidden_choice > 50);  // the instances exercise forbidden pairs inside blocks
}

TEST_CASE("matching: the match count wins over distance; radius is inclusive") {
  // truth 0 at x=0, truth 1 at x=1.8; prediction 0 at x=0.9 (0.9 from both), prediction 1 at x=-1.
  // Least distance alone would pair truth 0 with prediction 0 (0.9); the optimum has two pairs (1.0 + 0.9).
  std::vector<io::point> truth{{0, 0}, {1.8, 0}};
  std::vector<io::point> predicted{{0.9, 0}, {-1, 0}};
  const auto m = eval::match_points(truth, predicted, {1.0, true, true});
  REQUIRE(m.pairs.size() == 2);
  CHECK(m.pairs[0].truth == 0);
  CHECK(m.pairs[0].predicted == 1);
  CHECK(m.pairs[1].predicted == 0);
  CHECK(m.total_distance() == doctest::Approx(1.9));
  CHECK(m.blocks == 1);
  CHECK(m.largest_block == 4);

  // Distance exactly equal to the radius matches; a hair beyond does not.
  CHECK(eval::match_points(std::vector<io::point>{{0, 0}}, std::vector<io::point>{{3, 4}}, {5.0}).pairs.size() == 1);
  CHECK(eval::match_points(std::vector<io::point>{{0, 0}}, std::vector<io::point>{{3, 4.0001}}, {5.0}).pairs.empty());
  // Radius 0 matches coincident points only.
  CHECK(eval::match_points(std::vector<io::point>{{2, 2}, {5, 5}}, std::vector<io::point>{{2, 2}, {5, 5.5}}, {0.0})
            .pairs.size() == 1);
  // Empty sides.
  const auto none = eval::match_points(std::vector<io::point>{}, std::vector<io::point>{{1, 1}}, {});
  CHECK(none.unmatched_predicted == std::vector<std::size_t>{0});
  CHECK(eval::detection_counts_of(none) == eval::detection_counts{0, 1, 0});
}

TEST_CASE("matching: per-class and per-frame separation") {
  io::point a{10, 10, 0, -1}, b{10, 10, 1, -1};
  std::vector<io::point> truth{a}, predicted{b};
  CHECK(eval::match_points(truth, predicted, {5.0, true, true}).pairs.empty());
  CHECK(eval::match_points(truth, predicted, {5.0, false, true}).pairs.size() == 1);

  io::point f0{10, 10, 0, 0}, f1{10, 10, 0, 1};
  CHECK(eval::match_points(std::vector<io::point>{f0}, std::vector<io::point>{f1}, {5.0, true, true}).pairs.empty());
  CHECK(eval::match_points(std::vector<io::point>{f0}, std::vector<io::point>{f1}, {5.0, true, false}).pairs.size() == 1);

  // Two classes at the same places: each prediction goes to its own class although the other is as close.
  std::vector<io::point> t2{{0, 0, 0}, {1, 0, 1}}, p2{{1, 0, 0}, {0, 0, 1}};
  const auto m = eval::match_points(t2, p2, {2.0, true, true});
  REQUIRE(m.pairs.size() == 2);
  CHECK(m.pairs[0].predicted == 0);
  CHECK(m.pairs[1].predicted == 1);
}

TEST_CASE("matching: bad radius and coordinates are errors") {
  std::vector<io::point> ok{{1, 1}}, nan_point{{std::nan(""), 1}};
  CHECK_THROWS_WITH_AS(eval::match_points(ok, ok, {-1.0}), doctest::Contains("radius"), microcount::error);
  CHECK_THROWS_WITH_AS(eval::match_points(ok, nan_point, {}), doctest::Contains("predicted point 0"), microcount::error);
}

TEST_CASE("matching: blocks give the whole-matrix optimum (150 points a side, no blocks vs blocks)") {
  rng r(5);
  for (int trial = 0; trial < 3; ++trial) {
    const auto truth = random_points(r, 150, 120, false, 1, 1);
    const auto predicted = random_points(r, 140, 120, false, 1, 1);
    const eval::match_options o{6.0};
    const auto blocks = eval::match_points(truth, predicted, o);
    // One assignment over all 150 × 140 pairs, with the same lexicographic cost.
    const auto whole = eval::solve_assignment<eval::radius_cost>(truth.size(), predicted.size(), [&](std::size_t t, std::size_t p) {
      const double d = std::hypot(truth[t].x - predicted[p].x, truth[t].y - predicted[p].y);
      return d <= o.radius ? eval::radius_cost{0, d} : eval::radius_cost{1, 0.0};
    });
    std::size_t pairs = 0;
    double distance = 0;
    for (std::size_t t = 0; t < truth.size(); ++t) {
      if (whole[t] == eval::unassigned) continue;
      const double d = std::hypot(truth[t].x - predicted[whole[t]].x, truth[t].y - predicted[whole[t]].y);
      if (d <= o.radius) ++pairs, distance += d;
    }
    CHECK(blocks.pairs.size() == pairs);
    CHECK(blocks.total_distance() == doctest::Approx(distance).epsilon(1e-9));
    CHECK(blocks.blocks > 10);
  }
}

TEST_CASE("matching: 10^4 points a side, match count equals an independent maximum matching") {
  rng r(11);
  // Cell-like density (vgg-cells: ~300 cells in 256×256) on a 1500×1500 field, predictions jittered,
  // 5 % missed and 5 % spurious.
  const std::size_t n = 10000;
  auto truth = random_points(r, n, 1500, false, 1, 1);
  std::vector<io::point> predicted;
  for (const auto& t : truth)
    if (r.uniform() > 0.05) predicted.push_back({t.x + r.normal(0, 1.5), t.y + r.normal(0, 1.5)});
  for (std::size_t i = 0; i < n / 20; ++i) predicted.push_back({r.uniform(0, 1500), r.uniform(0, 1500)});
  const eval::match_options o{5.0};
  const auto start = std::chrono::steady_clock::now();
  const auto m = eval::match_points(truth, predicted, o);
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  MESSAGE("10^4 points: " << ms << " ms, " << m.blocks << " blocks, largest " << m.largest_block << " points");
  check_valid(m, truth, predicted, o);
  CHECK(m.pairs.size() == test::maximum_matching_size(truth, predicted, o));
  CHECK(m.pairs.size() > n * 9 / 10);
  // The work is cubic per block, so splitting into many small blocks is what keeps it fast (timed in
  // benchmarks, not here): no block holds more than a few dozen points.
  CHECK(m.blocks > n / 4);
  CHECK(m.largest_block < 64);
}
