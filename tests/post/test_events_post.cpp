// post/events.hpp: argmax and event clustering against closed forms (the ExoDeepFinder cone) and an
// all-pairs brute-force mean-shift with scikit-learn's semantics.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <map>
#include <vector>

#include "microcount/core/error.hpp"
#include "microcount/core/rng.hpp"
#include "microcount/post/events.hpp"
#include "test_support.hpp"

using namespace microcount;

namespace {

using voxel = std::array<double, 3>;  // (t, y, x)

double distance(const voxel& a, const voxel& b) {
  return std::sqrt((a[0] - b[0]) * (a[0] - b[0]) + (a[1] - b[1]) * (a[1] - b[1]) + (a[2] - b[2]) * (a[2] - b[2]));
}

// Stamps ExoDeepFinder's cone (radii 4, 2, 0 on frames t, t+1, t+2) with `value`.
void stamp_cone(xt::xtensor<std::uint8_t, 3>& m, int t, int cy, int cx, std::uint8_t value) {
  const double radii[3] = {4, 2, 0};
  for (int k = 0; k < 3; ++k)
    for (int dy = -4; dy <= 4; ++dy)
      for (int dx = -4; dx <= 4; ++dx)
        if (dx * dx + dy * dy <= radii[k] * radii[k]) m(t + k, cy + dy, cx + dx) = value;
}

// scikit-learn MeanShift(bandwidth, bin_seeding=True, cluster_all=True), every query over all points;
// returns, per kept mode, its member voxels (nearest mode).
std::vector<std::vector<voxel>> brute_clusters(const std::vector<voxel>& x, double bw) {
  std::map<std::array<long long, 3>, std::size_t> bins;
  std::vector<std::array<long long, 3>> order;
  for (const auto& p : x) {
    std::array<long long, 3> b{};
    for (int a = 0; a < 3; ++a) b[a] = static_cast<long long>(std::nearbyint(p[a] / bw));
    if (bins[b]++ == 0) order.push_back(b);
  }
  std::vector<voxel> seeds;
  for (const auto& b : order) seeds.push_back({b[0] * bw, b[1] * bw, b[2] * bw});
  if (seeds.size() == x.size()) seeds = x;
  std::map<voxel, std::size_t> modes;
  for (auto mean : seeds) {
    std::size_t count = 0;
    for (int iter = 0; iter <= 300; ++iter) {
      voxel s{0, 0, 0};
      count = 0;
      for (const auto& p : x)
        if (distance(p, mean) <= bw) {
          for (int a = 0; a < 3; ++a) s[a] += p[a];
          ++count;
        }
      if (count == 0) break;
      const voxel old = mean;
      for (int a = 0; a < 3; ++a) mean[a] = s[a] / static_cast<double>(count);
      if (distance(mean, old) <= 1e-3 * bw) break;
    }
    if (count > 0) modes[mean] = count;
  }
  std::vector<std::pair<voxel, std::size_t>> sorted(modes.begin(), modes.end());
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first > b.first;
  });
  std::vector<voxel> kept;
  for (const auto& [m, n] : sorted)
    if (std::none_of(kept.begin(), kept.end(), [&](const voxel& k) { return distance(k, m) <= bw; })) kept.push_back(m);
  std::vector<std::vector<voxel>> members(kept.size());
  for (const auto& p : x) {
    std::size_t best = 0;
    for (std::size_t k = 1; k < kept.size(); ++k)
      if (distance(p, kept[k]) < distance(p, kept[best])) best = k;
    if (!kept.empty()) members[best].push_back(p);
  }
  return members;
}

}  // namespace

TEST_CASE("argmax_labels: the first largest class per voxel, as a per-voxel loop finds it") {
  rng r(7);
  xt::xtensor<float, 4> scores = xt::xtensor<float, 4>::from_shape({3, 4, 5, 6});  // [K, T, H, W]
  for (auto& v : scores) v = static_cast<float>(r.below(4));                        // many ties on purpose
  scores(2, 1, 1, 1) = std::nanf("");
  scores(0, 1, 2, 2) = std::nanf("");
  const auto seg = post::argmax_labels(scores);  // [T, H, W]
  REQUIRE(seg.shape()[0] == 4);
  for (std::size_t t = 0; t < 4; ++t)
    for (std::size_t y = 0; y < 5; ++y)
      for (std::size_t x = 0; x < 6; ++x) {
        int best = -1;
        for (int k = 0; k < 3; ++k) {
          const float v = scores(k, t, y, x);
          if (std::isnan(v)) continue;
          if (best < 0 || v > scores(best, t, y, x)) best = k;
        }
        CHECK(seg(t, y, x) == best);
      }
}

TEST_CASE("detect_events: one cone gives one event at the cone's centroid with 63 voxels") {
  xt::xtensor<std::uint8_t, 3> m = xt::zeros<std::uint8_t>({12, 30, 40});  // [T, H, W]
  stamp_cone(m, 3, 12, 20, 2);
  const auto found = post::detect_events(m, {});
  REQUIRE(found.size() == 1);
  // 49 voxels on frame 3, 13 on frame 4, 1 on frame 5: mean frame (49·3 + 13·4 + 5) / 63.
  CHECK(found[0].frame == doctest::Approx((49.0 * 3 + 13.0 * 4 + 5) / 63.0));
  CHECK(found[0].y == doctest::Approx(12));
  CHECK(found[0].x == doctest::Approx(20));
  CHECK(found[0].size == 63);
  CHECK(found[0].label == 2);
}

TEST_CASE("detect_events: labels, min_size, sorting; bright spots only when asked") {
  xt::xtensor<std::uint8_t, 3> m = xt::zeros<std::uint8_t>({20, 40, 60});
  stamp_cone(m, 10, 30, 45, 2);
  stamp_cone(m, 2, 8, 8, 2);
  m(15, 20, 20) = 2;                                            // a lone voxel: dropped by min_size
  for (int dx = 0; dx < 3; ++dx) m(5, 30, 10 + dx) = 1;        // a bright spot, 3 voxels
  auto events = post::detect_events(m, {.min_size = 5});
  REQUIRE(events.size() == 2);
  CHECK(events[0].frame < events[1].frame);                     // sorted by frame
  CHECK(events[0].x == doctest::Approx(8));
  CHECK(events[1].y == doctest::Approx(30));
  auto all = post::detect_events(m, {.min_size = 1, .labels = {1, 2}});
  REQUIRE(all.size() == 4);
  CHECK(all[0].label == 1);
  CHECK(all[0].size == 3);
  CHECK(all[0].x == doctest::Approx(11));
  CHECK(post::detect_events(xt::xtensor<std::uint8_t, 3>(xt::zeros<std::uint8_t>({3, 4, 4})), {}).empty());
}

TEST_CASE("detect_events equals an all-pairs brute-force mean-shift on random blobs") {
  for (std::uint64_t seed : {1u, 2u, 3u}) {
    rng r(seed);
    xt::xtensor<std::uint8_t, 3> m = xt::zeros<std::uint8_t>({16, 32, 32});
    for (int blob = 0; blob < 6; ++blob) {  // overlapping, irregular blobs: clusters are not obvious
      const int t = static_cast<int>(r.below(14)), y = static_cast<int>(r.below(28)), x = static_cast<int>(r.below(28));
      for (int k = 0; k < 12; ++k) m(t + r.below(3), y + r.below(5), x + r.below(5)) = 2;
    }
    for (const double bw : {2.5, 5.0}) {
      std::vector<voxel> pts;
      for (std::size_t t = 0; t < 16; ++t)
        for (std::size_t y = 0; y < 32; ++y)
          for (std::size_t x = 0; x < 32; ++x)
            if (m(t, y, x) == 2) pts.push_back({double(t), double(y), double(x)});
      const auto members = brute_clusters(pts, bw);
      std::vector<post::event_object> expect;
      for (const auto& c : members) {
        if (c.empty()) continue;
        voxel s{0, 0, 0};
        for (const auto& p : c)
          for (int a = 0; a < 3; ++a) s[a] += p[a];
        const double n = static_cast<double>(c.size());
        expect.push_back({2, s[0] / n, s[1] / n, s[2] / n, c.size()});
      }
      std::sort(expect.begin(), expect.end(), [](const auto& a, const auto& b) {
        return a.frame != b.frame ? a.frame < b.frame : a.y != b.y ? a.y < b.y : a.x < b.x;
      });
      const auto found = post::detect_events(m, {.bandwidth = bw});
      REQUIRE(found.size() == expect.size());
      std::size_t total = 0;
      for (std::size_t i = 0; i < found.size(); ++i) {
        CHECK(found[i].size == expect[i].size);
        CHECK(found[i].frame == doctest::Approx(expect[i].frame));
        CHECK(found[i].y == doctest::Approx(expect[i].y));
        CHECK(found[i].x == doctest::Approx(expect[i].x));
        total += found[i].size;
      }
      CHECK(total == pts.size());  // every voxel in exactly one cluster
    }
  }
}

TEST_CASE("detect_events: time_scale stretches time (two cones 6 frames apart merge or split)") {
  xt::xtensor<std::uint8_t, 3> m = xt::zeros<std::uint8_t>({20, 20, 20});
  stamp_cone(m, 2, 10, 10, 2);
  stamp_cone(m, 8, 10, 10, 2);
  CHECK(post::detect_events(m, {.bandwidth = 8, .time_scale = 0.25}).size() == 1);
  CHECK(post::detect_events(m, {.bandwidth = 3, .time_scale = 1}).size() == 2);
}

TEST_CASE("detect_events: bad options and a mostly-foreground map are errors, not hours of clustering") {
  xt::xtensor<std::uint8_t, 3> m = xt::ones<std::uint8_t>({4, 8, 8}) * std::uint8_t{2};
  CHECK_THROWS_WITH_AS(post::detect_events(m, {.max_voxels = 100}), doctest::Contains("mostly foreground"), error);
  CHECK_THROWS_AS(post::detect_events(m, {.bandwidth = 0}), error);
  CHECK_THROWS_AS(post::detect_events(m, {.time_scale = -1}), error);
  CHECK_THROWS_AS(post::detect_events(m, {.labels = {0}}), error);
  CHECK_THROWS_AS(post::argmax_labels_into(nullptr, 0, 0, 0, 0, nullptr), error);
}
