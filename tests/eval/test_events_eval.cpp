// Event scoring (eval/events.hpp): hand-computed cases of DeepFinder's rule, and a brute-force oracle
// that follows DeepFinder's code path (full distance matrix, row counts, set of matched columns).
#include <cmath>
#include <cstddef>
#include <set>
#include <vector>

#include "microcount/core/rng.hpp"
#include "microcount/eval/events.hpp"
#include "test_support.hpp"

using namespace microcount;
using post::event_object;

namespace {

event_object ev(double frame, double y, double x, std::size_t size = 0, int label = 2) {
  return event_object{label, frame, y, x, size};
}

// DeepFinder's Evaluator, written as it is written there: distance matrix, per-row correspondences.
eval::event_scores deepfinder_oracle(const std::vector<event_object>& truth, const std::vector<event_object>& found,
                                     double distance) {
  std::size_t tp = 0, fn = 0;
  std::set<std::size_t> matched;
  for (const auto& t : truth) {
    std::vector<std::size_t> within;
    for (std::size_t j = 0; j < found.size(); ++j) {
      const double d = std::sqrt((t.frame - found[j].frame) * (t.frame - found[j].frame) + (t.y - found[j].y) * (t.y - found[j].y) +
                                 (t.x - found[j].x) * (t.x - found[j].x));
      if (d <= distance) within.push_back(j);
    }
    if (within.size() == 1) {
      ++tp;
      matched.insert(within[0]);
    } else {
      ++fn;
    }
  }
  return eval::event_scores_from_counts(tp, found.size() - matched.size(), fn);
}

void check_counts(const eval::event_scores& s, std::size_t tp, std::size_t fp, std::size_t fn) {
  CHECK(s.tp == tp);
  CHECK(s.fp == fp);
  CHECK(s.fn == fn);
}

}  // namespace

TEST_CASE("events eval: one detection within the distance is a find, two are a miss and two false positives") {
  const std::vector<event_object> truth{ev(10, 20, 20)};
  check_counts(eval::score_events(truth, std::vector{ev(11, 22, 21)}), 1, 0, 0);
  const auto crowd = eval::score_events(truth, std::vector{ev(10, 21, 20), ev(10, 19, 20)});
  check_counts(crowd, 0, 2, 1);
  CHECK(crowd.precision == 0.0);
  CHECK(crowd.recall == 0.0);
  CHECK(crowd.f1 == 0.0);
  // Nothing near: one miss, one false positive.
  check_counts(eval::score_events(truth, std::vector{ev(10, 40, 40)}), 0, 1, 1);
}

TEST_CASE("events eval: the distance is inclusive and the frame counts as one voxel") {
  const std::vector<event_object> truth{ev(0, 0, 0)};
  const eval::event_match_options five{5.0, 2};
  check_counts(eval::score_events(truth, std::vector{ev(3, 4, 0)}, five), 1, 0, 0);  // sqrt(9 + 16) = 5
  check_counts(eval::score_events(truth, std::vector{ev(4, 4, 0)}, five), 0, 1, 1);  // sqrt(32) > 5
  check_counts(eval::score_events(truth, std::vector{ev(5, 0, 0)}, five), 1, 0, 0);  // 5 frames apart, same place
  check_counts(eval::score_events(truth, std::vector{ev(5.5, 0, 0)}, five), 0, 1, 1);
  check_counts(eval::score_events(truth, std::vector{ev(0, 0, 5.0001)}, five), 0, 1, 1);
}

TEST_CASE("events eval: DeepFinder's quirk — one detection alone near two annotations makes two finds") {
  const std::vector<event_object> truth{ev(0, 10, 10), ev(0, 10, 16)};
  const auto s = eval::score_events(truth, std::vector{ev(0, 10, 13)}, {4.0, 2});
  check_counts(s, 2, 0, 0);
  CHECK(s.precision == 1.0);
  const std::vector<event_object> a{ev(0, 0, 0), ev(0, 0, 8)};
  // d1 at x=4 is near both annotations; d2 at x=-3 near the first only. Annotation 1 has two (miss),
  // annotation 2 has only d1 (find): d1 matched, d2 false positive.
  check_counts(eval::score_events(a, std::vector{ev(0, 0, 4), ev(0, 0, -3)}, {5.0, 2}), 1, 1, 1);
}

TEST_CASE("events eval: only the scored class takes part; label < 0 scores everything") {
  const std::vector<event_object> truth{ev(5, 5, 5), ev(5, 30, 30, 0, 1)};
  const std::vector<event_object> found{ev(5, 5, 6), ev(5, 5, 4, 0, 1), ev(5, 30, 31, 0, 1)};
  // Events only: the bright spot next to the event does not make it a crowd.
  check_counts(eval::score_events(truth, found, {3.0, 2}), 1, 0, 0);
  check_counts(eval::score_events(truth, found, {3.0, 1}), 1, 1, 0);
  // Every label: the event has two detections near it (a miss, both FPs), the spot one.
  check_counts(eval::score_events(truth, found, {3.0, -1}), 1, 2, 1);
}

TEST_CASE("events eval: empty inputs follow the metrics conventions; counts add over movies") {
  const std::vector<event_object> none;
  const auto both_empty = eval::score_events(none, none);
  check_counts(both_empty, 0, 0, 0);
  CHECK(both_empty.f1 == 1.0);
  const auto nothing_found = eval::score_events(std::vector{ev(1, 1, 1)}, none);
  CHECK(nothing_found.precision == 1.0);
  CHECK(nothing_found.recall == 0.0);
  CHECK(nothing_found.f1 == 0.0);
  const auto sum = eval::event_scores_from_counts(3, 1, 2) + eval::event_scores_from_counts(1, 1, 0);
  check_counts(sum, 4, 2, 2);
  CHECK(sum.precision == doctest::Approx(4.0 / 6));
  CHECK(sum.recall == doctest::Approx(4.0 / 6));
  CHECK(sum.f1 == doctest::Approx(2 * 4.0 / (8 + 2 + 2)));
  CHECK_THROWS_AS(eval::score_events(none, none, {-1.0, 2}), microcount::error);
  CHECK_THROWS_WITH_AS(eval::score_events(none, std::vector{ev(NAN, 1, 1)}), doctest::Contains("detected object 0"), microcount::error);
}

TEST_CASE("events eval: cluster-size sweep keeps detections with size >= threshold") {
  const std::vector<event_object> truth{ev(0, 0, 0), ev(20, 50, 50)};
  // A big true cluster, a small true cluster, two small noise clusters, and a small one crowding the first.
  const std::vector<event_object> found{ev(0, 1, 0, 40), ev(20, 50, 51, 6), ev(9, 90, 90, 3), ev(40, 10, 80, 2),
                                        ev(1, 0, 0, 2)};
  const std::vector<std::size_t> thresholds{0, 3, 5, 7, 100};
  const auto sweep = eval::sweep_cluster_size(truth, found, thresholds, {4.0, 2});
  REQUIRE(sweep.size() == 5);
  for (std::size_t i = 0; i < 5; ++i) CHECK(sweep[i].threshold == thresholds[i]);
  check_counts(sweep[0].scores, 1, 4, 1);  // the crowd hides the first event
  check_counts(sweep[1].scores, 2, 1, 0);
  check_counts(sweep[2].scores, 2, 0, 0);
  check_counts(sweep[3].scores, 1, 0, 1);
  check_counts(sweep[4].scores, 0, 0, 2);
}

TEST_CASE("events eval: agrees with DeepFinder's distance-matrix procedure on random crowded movies") {
  rng random(2024);
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<event_object> truth(random.below(25)), found(random.below(25));
    const double side = 10 + static_cast<double>(random.below(30));  // small boxes: crowds and shared detections
    for (auto& o : truth) o = ev(std::floor(random.uniform(0, side)), random.uniform(0, side), random.uniform(0, side));
    for (auto& o : found) o = ev(random.uniform(0, side), random.uniform(0, side), random.uniform(0, side), random.below(50));
    const double distance = random.uniform(1, 8);
    const auto got = eval::score_events(truth, found, {distance, 2});
    const auto want = deepfinder_oracle(truth, found, distance);
    REQUIRE(got.tp == want.tp);
    REQUIRE(got.fp == want.fp);
    REQUIRE(got.fn == want.fn);
    CHECK(got.f1 == doctest::Approx(want.f1));
  }
}
