// Mean-shift, non-maximum suppression and the spatial grid against all-pairs brute force.
#include <algorithm>
#include <array>
#include <cmath>
#include <map>
#include <numeric>
#include <vector>

#include "microcount/core/error.hpp"
#include "microcount/core/rng.hpp"
#include "microcount/post/mean_shift.hpp"
#include "microcount/post/nms.hpp"
#include "microcount/post/spatial_grid.hpp"
#include "test_support.hpp"

using namespace microcount;

namespace {

template <std::size_t D>
double dist(const post::coord<D>& a, const post::coord<D>& b) {
  double s = 0;
  for (std::size_t i = 0; i < D; ++i) s += (a[i] - b[i]) * (a[i] - b[i]);
  return std::sqrt(s);
}

// scikit-learn's MeanShift(bin_seeding=True) step by step, every neighbour query over all points.
template <std::size_t D>
post::mean_shift_result<D> brute_mean_shift(const std::vector<post::coord<D>>& input, const post::mean_shift_options<D>& o) {
  const double bw = o.bandwidth;
  std::vector<post::coord<D>> x = input;
  for (auto& p : x)
    for (std::size_t a = 0; a < D; ++a) p[a] *= o.axis_scale[a];
  // Seeds: occupied bins in order of first appearance.
  std::vector<std::array<double, D>> bins;
  std::vector<std::size_t> counts;
  for (const auto& p : x) {
    std::array<double, D> b;
    for (std::size_t a = 0; a < D; ++a) b[a] = std::nearbyint(p[a] / bw);
    auto it = std::find(bins.begin(), bins.end(), b);
    if (it == bins.end()) {
      bins.push_back(b);
      counts.push_back(1);
    } else {
      ++counts[static_cast<std::size_t>(it - bins.begin())];
    }
  }
  std::vector<post::coord<D>> seeds;
  for (std::size_t i = 0; i < bins.size(); ++i)
    if (counts[i] >= o.min_bin_freq) {
      post::coord<D> s;
      for (std::size_t a = 0; a < D; ++a) s[a] = bins[i][a] * bw;
      seeds.push_back(s);
    }
  if (seeds.size() == x.size()) seeds = x;
  std::map<post::coord<D>, std::size_t> modes;
  for (auto mean : seeds) {
    std::size_t n = 0;
    for (std::size_t iter = 0;; ++iter) {
      post::coord<D> sum{};
      n = 0;
      for (const auto& p : x)
        if (dist(p, mean) <= bw) {
          for (std::size_t a = 0; a < D; ++a) sum[a] += p[a];
          ++n;
        }
      if (n == 0) break;
      const auto old = mean;
      for (std::size_t a = 0; a < D; ++a) mean[a] = sum[a] / static_cast<double>(n);
      if (dist(mean, old) <= 1e-3 * bw || iter == o.max_iter) break;
    }
    if (n > 0) modes[mean] = n;
  }
  std::vector<std::pair<post::coord<D>, std::size_t>> sorted(modes.begin(), modes.end());
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) {
    if (a.second != b.second) return a.second > b.second;
    return a.first > b.first;
  });
  std::vector<char> keep(sorted.size(), 1);
  for (std::size_t i = 0; i < sorted.size(); ++i) {
    if (!keep[i]) continue;
    for (std::size_t j = 0; j < sorted.size(); ++j)
      if (dist(sorted[i].first, sorted[j].first) <= bw) keep[j] = 0;
    keep[i] = 1;
  }
  post::mean_shift_result<D> out;
  for (std::size_t i = 0; i < sorted.size(); ++i)
    if (keep[i]) {
      out.centers.push_back(sorted[i].first);
      out.population.push_back(sorted[i].second);
    }
  for (const auto& p : x) {
    std::int32_t best = -1;
    double bd = 1e300;
    for (std::size_t c = 0; c < out.centers.size(); ++c)
      if (dist(p, out.centers[c]) < bd) {
        bd = dist(p, out.centers[c]);
        best = static_cast<std::int32_t>(c);
      }
    out.labels.push_back(o.cluster_all || bd <= bw ? best : -1);
  }
  for (auto& c : out.centers)
    for (std::size_t a = 0; a < D; ++a) c[a] /= o.axis_scale[a];
  return out;
}

template <std::size_t D>
void check_same(const post::mean_shift_result<D>& got, const post::mean_shift_result<D>& want) {
  REQUIRE(got.centers.size() == want.centers.size());
  for (std::size_t i = 0; i < got.centers.size(); ++i) {
    CHECK(got.population[i] == want.population[i]);
    for (std::size_t a = 0; a < D; ++a) CHECK(got.centers[i][a] == doctest::Approx(want.centers[i][a]).epsilon(1e-9));
  }
  CHECK(got.labels == want.labels);
  std::vector<std::size_t> sizes(got.centers.size(), 0);
  for (auto l : want.labels)
    if (l >= 0) ++sizes[static_cast<std::size_t>(l)];
  CHECK(got.cluster_size == sizes);
}

template <std::size_t D>
std::vector<post::coord<D>> clustered(rng& r, std::size_t clusters, std::size_t per, double spread, double extent, std::size_t noise) {
  std::vector<post::coord<D>> pts;
  for (std::size_t c = 0; c < clusters; ++c) {
    post::coord<D> centre;
    for (auto& v : centre) v = r.uniform(0, extent);
    const std::size_t n = per / 2 + r.below(per);
    for (std::size_t i = 0; i < n; ++i) {
      post::coord<D> p;
      for (std::size_t a = 0; a < D; ++a) p[a] = centre[a] + r.normal(0, spread);
      pts.push_back(p);
    }
  }
  for (std::size_t i = 0; i < noise; ++i) {
    post::coord<D> p;
    for (auto& v : p) v = r.uniform(0, extent);
    pts.push_back(p);
  }
  // Interleave the clusters so input order says nothing about membership.
  for (std::size_t i = pts.size(); i > 1; --i) std::swap(pts[i - 1], pts[r.below(i)]);
  return pts;
}

}  // namespace

TEST_CASE("mean-shift 2D equals an all-pairs implementation of the same algorithm") {
  rng r(31);
  for (int trial = 0; trial < 6; ++trial) {
    const auto pts = clustered<2>(r, 3 + r.below(6), 120, r.uniform(1.0, 3.0), 100, 40);
    post::mean_shift_options<2> o;
    o.bandwidth = r.uniform(3.0, 9.0);
    o.cluster_all = trial % 2 == 0;
    if (trial == 5) o.min_bin_freq = 3;
    CAPTURE(trial);
    const auto got = post::mean_shift(pts, o);
    check_same(got, brute_mean_shift(pts, o));
    CHECK(got.centers.size() >= 3);
  }
}

TEST_CASE("mean-shift 3D with time scaled against space equals the all-pairs implementation") {
  rng r(32);
  for (int trial = 0; trial < 4; ++trial) {
    auto pts = clustered<3>(r, 5, 150, 1.5, 60, 30);
    for (auto& p : pts) p[0] = std::round(p[0] / 4);  // frames: a coarse, integer time axis
    post::mean_shift_options<3> o;
    o.bandwidth = 5;
    o.axis_scale = {3.0, 1.0, 1.0};
    o.cluster_all = trial % 2 == 1;
    CAPTURE(trial);
    check_same(post::mean_shift(pts, o), brute_mean_shift(pts, o));
  }
}

TEST_CASE("mean-shift: isolated points seed themselves; errors for a bad bandwidth") {
  const std::vector<post::coord<2>> far = {{0, 0}, {100, 0}, {0, 100}, {57.3, 41.9}};
  post::mean_shift_options<2> o;
  o.bandwidth = 2;
  const auto got = post::mean_shift(far, o);
  check_same(got, brute_mean_shift(far, o));
  CHECK(got.centers.size() == 4);
  CHECK(got.centers[0] == post::coord<2>{100, 0});  // population ties: coordinates descending
  o.bandwidth = 0;
  CHECK_THROWS_WITH_AS(post::mean_shift(far, o), doctest::Contains("bandwidth"), error);
  CHECK(post::mean_shift(std::vector<post::coord<2>>{}, post::mean_shift_options<2>{}).centers.empty());
}

TEST_CASE("mean-shift on the event voxels of a segmentation gives one detection per blob") {
  xt::xtensor<std::uint8_t, 3> seg = xt::zeros<std::uint8_t>({12, 40, 50});
  const std::vector<std::array<int, 3>> blobs = {{2, 10, 10}, {5, 30, 40}, {9, 12, 35}};
  for (const auto& b : blobs)
    for (int t = 0; t < 3; ++t)
      for (int dy = -2; dy <= 2; ++dy)
        for (int dx = -2; dx <= 2; ++dx)
          if (dx * dx + dy * dy <= 4 && b[0] + t < 12) seg(b[0] + t, b[1] + dy, b[2] + dx) = 2;
  seg(0, 0, 0) = 1;  // another class, ignored
  const auto vox = post::voxel_coordinates(seg, [](std::uint8_t v) { return v == 2; });
  CHECK(vox.size() == 3 * 3 * 13);
  post::mean_shift_options<3> o;
  o.bandwidth = 5;
  const auto ms = post::mean_shift(vox, o);
  const auto pts = post::modes_as_points(ms, 1);
  REQUIRE(pts.size() == 3);
  for (const auto& b : blobs) {
    const bool found = std::any_of(pts.begin(), pts.end(), [&](const post::scored_point& p) {
      return p.point.frame == b[0] + 1 && std::abs(p.point.y - b[1]) < 1e-9 && std::abs(p.point.x - b[2]) < 1e-9;
    });
    CHECK(found);
  }
  for (const auto& p : pts) CHECK(p.score == 39.0f);
}

TEST_CASE("non-maximum suppression equals an O(N^2) greedy suppression") {
  rng r(55);
  for (int trial = 0; trial < 10; ++trial) {
    std::vector<post::scored_point> pts;
    const std::size_t n = 50 + r.below(400);
    for (std::size_t i = 0; i < n; ++i) {
      post::scored_point p;
      p.point = {r.uniform(0, 80), r.uniform(0, 60), static_cast<int>(r.below(2)), static_cast<int>(r.below(3)), -1};
      p.score = static_cast<float>(r.below(20));  // many ties: input order decides
      pts.push_back(p);
    }
    post::nms_options o;
    o.radius = r.uniform(1.0, 6.0);
    o.per_class = trial % 2 == 0;
    o.frame_scale = trial % 3 == 0 ? -1.0 : trial % 3 == 1 ? 0.0 : 2.5;
    std::vector<std::size_t> order(n);
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::stable_sort(order.begin(), order.end(), [&](auto a, auto b) { return pts[a].score > pts[b].score; });
    std::vector<post::scored_point> want;
    for (auto i : order) {
      bool keep = true;
      for (const auto& q : want) {
        if (o.per_class && q.point.label != pts[i].point.label) continue;
        if (o.frame_scale < 0 && q.point.frame != pts[i].point.frame) continue;
        const double df = o.frame_scale < 0 ? 0.0 : (q.point.frame - pts[i].point.frame) * o.frame_scale;
        const double dx = q.point.x - pts[i].point.x, dy = q.point.y - pts[i].point.y;
        if (std::sqrt(dx * dx + dy * dy + df * df) <= o.radius) keep = false;
      }
      if (keep) want.push_back(pts[i]);
    }
    const auto got = post::non_maximum_suppression(pts, o);
    CAPTURE(trial);
    REQUIRE(got.size() == want.size());
    for (std::size_t i = 0; i < got.size(); ++i) {
      CHECK(got[i].point.x == want[i].point.x);
      CHECK(got[i].point.y == want[i].point.y);
      CHECK(got[i].score == want[i].score);
    }
  }
  CHECK_THROWS_AS(post::non_maximum_suppression({}, post::nms_options{0.0}), error);
}

TEST_CASE("spatial grid: radius and k-nearest queries equal brute force, also for far queries and duplicates") {
  rng r(77);
  std::vector<post::coord<3>> pts;
  for (int i = 0; i < 700; ++i) pts.push_back({r.uniform(0, 50), r.uniform(0, 20), r.uniform(0, 5)});
  for (int i = 0; i < 20; ++i) pts.push_back(pts[static_cast<std::size_t>(i)]);  // exact duplicates
  for (double cell : {0.7, 3.0, 40.0}) {
    const post::spatial_grid<3> grid(pts, cell);
    for (int q = 0; q < 60; ++q) {
      const post::coord<3> c{r.uniform(-20, 70), r.uniform(-5, 25), r.uniform(-3, 8)};
      const double radius = r.uniform(0.5, 6);
      std::vector<std::size_t> want, got;
      for (std::size_t i = 0; i < pts.size(); ++i)
        if (dist(pts[i], c) <= radius) want.push_back(i);
      grid.for_each_within(c, radius, [&](std::size_t i, const post::coord<3>&, double) { got.push_back(i); });
      std::sort(got.begin(), got.end());
      CHECK(got == want);
      const std::size_t k = 1 + r.below(9);
      std::vector<std::pair<double, std::size_t>> all;
      for (std::size_t i = 0; i < pts.size(); ++i)
        if (i != 5) all.push_back({post::spatial_grid<3>::squared_distance(pts[i], c), i});
      std::sort(all.begin(), all.end());
      all.resize(k);
      // Indices must agree; squared distances only to rounding (FMA contraction may differ between the
      // grid's inlined distance and this loop's).
      const auto near = grid.nearest(c, k, 5);
      REQUIRE(near.size() == all.size());
      for (std::size_t j = 0; j < k; ++j) {
        CHECK(near[j].second == all[j].second);
        CHECK(near[j].first == doctest::Approx(all[j].first).epsilon(1e-12));
      }
    }
  }
}
