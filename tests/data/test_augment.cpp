// Augmentations against closed forms and brute force: D4 against numpy's rot90 / fliplr, rescale
// against exact bilinear values and moved blobs, intensity formulas, noise moments, grey conversion.
#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <thread>
#include <tuple>
#include <vector>

#include "microcount/data/augment.hpp"
#include "microcount/data/dataset.hpp"
#include "microcount/data/normalize.hpp"
#include "microcount/data/patches.hpp"
#include "test_support.hpp"

using namespace microcount;
using data::sample;

namespace {

// [1, C, h, w] with distinct values everywhere (no symmetry hides a wrong transform) and a few points.
sample asymmetric(std::size_t h, std::size_t w, std::size_t channels = 2) {
  sample s{"asym.tif", {}, {}, {"cell"}};
  s.image.pixels = xt::xtensor<float, 4>::from_shape({1, channels, h, w});
  for (std::size_t c = 0; c < channels; ++c)
    for (std::size_t y = 0; y < h; ++y)
      for (std::size_t x = 0; x < w; ++x) s.image.pixels(0, c, y, x) = static_cast<float>(c * 10000 + y * w + x);
  s.points = {{0, 0, 0, -1, -1}, {static_cast<double>(w - 1), 1, 0, -1, -1}, {2.25, static_cast<double>(h - 1) - 0.4, 0, -1, -1}};
  return s;
}

// A Gaussian blob of σ = 2.5 centred at (x, y) (sub-pixel) on a zero image.
sample blob(std::size_t h, std::size_t w, double x, double y) {
  sample s{"blob.tif", {}, {{x, y, 0, -1, -1}}, {"cell"}};
  s.image.pixels = xt::xtensor<float, 4>::from_shape({1, 1, h, w});
  for (std::size_t r = 0; r < h; ++r)
    for (std::size_t c = 0; c < w; ++c) {
      const double d2 = (static_cast<double>(c) - x) * (static_cast<double>(c) - x) + (static_cast<double>(r) - y) * (static_cast<double>(r) - y);
      s.image.pixels(0, 0, r, c) = static_cast<float>(std::exp(-d2 / (2 * 2.5 * 2.5)));
    }
  return s;
}

// Intensity-weighted centre (x, y) of channel 0.
data::xy centroid(const sample& s) {
  double sx = 0, sy = 0, m = 0;
  for (std::size_t r = 0; r < s.height(); ++r)
    for (std::size_t c = 0; c < s.width(); ++c) {
      const double v = s.image.pixels(0, 0, r, c);
      sx += v * static_cast<double>(c), sy += v * static_cast<double>(r), m += v;
    }
  return {sx / m, sy / m};
}

// numpy: rot90(a) = out[i, j] = a[j, W - 1 - i];  fliplr(a) = out[i, j] = a[i, W - 1 - j].
xt::xtensor<float, 2> np_rot90(const xt::xtensor<float, 2>& a) {
  const std::size_t h = a.shape()[0], w = a.shape()[1];
  xt::xtensor<float, 2> out = xt::xtensor<float, 2>::from_shape({w, h});
  for (std::size_t i = 0; i < w; ++i)
    for (std::size_t j = 0; j < h; ++j) out(i, j) = a(j, w - 1 - i);
  return out;
}
xt::xtensor<float, 2> np_fliplr(const xt::xtensor<float, 2>& a) {
  const std::size_t h = a.shape()[0], w = a.shape()[1];
  xt::xtensor<float, 2> out = xt::xtensor<float, 2>::from_shape({h, w});
  for (std::size_t i = 0; i < h; ++i)
    for (std::size_t j = 0; j < w; ++j) out(i, j) = a(i, w - 1 - j);
  return out;
}
xt::xtensor<float, 2> plane(const sample& s, std::size_t c) {
  xt::xtensor<float, 2> out = xt::xtensor<float, 2>::from_shape({s.height(), s.width()});
  for (std::size_t y = 0; y < s.height(); ++y)
    for (std::size_t x = 0; x < s.width(); ++x) out(y, x) = s.image.pixels(0, c, y, x);
  return out;
}

bool same_points(const std::vector<io::point>& a, const std::vector<io::point>& b, double tol = 0) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (std::abs(a[i].x - b[i].x) > tol || std::abs(a[i].y - b[i].y) > tol || a[i].label != b[i].label) return false;
  return true;
}

}  // namespace

TEST_CASE("d4: the 8 transforms are numpy's rot90^k then fliplr, and their inverses undo them exactly") {
  const sample s = asymmetric(5, 7);
  std::set<std::vector<float>> distinct;
  for (int k = 0; k < 8; ++k) {
    CAPTURE(k);
    const sample t = data::dihedral(s, k);
    for (std::size_t c = 0; c < 2; ++c) {
      xt::xtensor<float, 2> expect = plane(s, c);
      for (int q = 0; q < (k & 3); ++q) expect = np_rot90(expect);
      if (k >= 4) expect = np_fliplr(expect);
      CHECK(plane(t, c) == expect);
    }
    distinct.insert(std::vector<float>(t.image.pixels.begin(), t.image.pixels.end()));
    // Points at integer positions stay on the pixel that moved under them.
    for (std::size_t i = 0; i < 2; ++i) {
      const auto& p = s.points[i];
      const auto& q = t.points[i];
      CHECK(t.image.pixels(0, 1, static_cast<std::size_t>(q.y), static_cast<std::size_t>(q.x)) ==
            s.image.pixels(0, 1, static_cast<std::size_t>(p.y), static_cast<std::size_t>(p.x)));
    }
    const sample back = data::dihedral(t, data::inverse_dihedral(k));
    CHECK(back.image.pixels == s.image.pixels);
    CHECK(same_points(back.points, s.points));
  }
  CHECK(distinct.size() == 8);
  CHECK_THROWS_AS(data::dihedral(s, 8), error);
}

TEST_CASE("d4: a sub-pixel blob's centre moves exactly as its point") {
  const sample s = blob(40, 52, 17.3, 11.8);
  for (int k = 0; k < 8; ++k) {
    const sample t = data::dihedral(s, k);
    const auto c = centroid(t);
    CHECK(c.x == doctest::Approx(t.points[0].x).epsilon(1e-4));
    CHECK(c.y == doctest::Approx(t.points[0].y).epsilon(1e-4));
  }
  // The view draws each of the 8 with about equal frequency.
  const auto view = data::d4(data::dataset::from_samples({asymmetric(3, 4, 1)}));
  rng r(2);
  std::map<std::vector<float>, int> seen;
  for (int i = 0; i < 1600; ++i) {
    const sample t = view.get(0, r);
    ++seen[std::vector<float>(t.image.pixels.begin(), t.image.pixels.end())];
  }
  CHECK(seen.size() == 8);
  for (const auto& [key, n] : seen) CHECK(std::abs(n - 200) < 60);
}

TEST_CASE("rescale: bilinear values of a ramp are exact, points follow (x + 0.5) s - 0.5") {
  sample s{"ramp", {}, {{3, 5, 0, -1, -1}}, {"cell"}};
  s.image.pixels = xt::xtensor<float, 4>::from_shape({1, 1, 20, 30});
  for (std::size_t y = 0; y < 20; ++y)
    for (std::size_t x = 0; x < 30; ++x) s.image.pixels(0, 0, y, x) = static_cast<float>(2.0 * x + 3.0 * y);
  const sample t = data::resize(s, 27, 45);  // s = 1.35 (y), 1.5 (x)
  const double sy = 27.0 / 20, sx = 45.0 / 30;
  for (std::size_t r = 0; r < 27; ++r)
    for (std::size_t c = 0; c < 45; ++c) {
      const double xs = std::clamp((c + 0.5) / sx - 0.5, 0.0, 29.0), ys = std::clamp((r + 0.5) / sy - 0.5, 0.0, 19.0);
      REQUIRE(t.image.pixels(0, 0, r, c) == doctest::Approx(2 * xs + 3 * ys).epsilon(1e-5));
    }
  CHECK(t.points[0].x == doctest::Approx(3.5 * sx - 0.5));
  CHECK(t.points[0].y == doctest::Approx(5.5 * sy - 0.5));
  // Integer upscaling: the point lands on the centre of the block its pixel became, at full value.
  sample dot{"dot", {}, {{4, 2, 0, -1, -1}}, {"cell"}};
  dot.image.pixels = xt::zeros<float>({std::size_t{1}, std::size_t{1}, std::size_t{6}, std::size_t{8}});
  dot.image.pixels(0, 0, 2, 4) = 7;
  const sample up = data::resize(dot, 18, 24);
  CHECK(up.points[0].x == 13);
  CHECK(up.points[0].y == 7);
  CHECK(up.image.pixels(0, 0, 7, 13) == 7);
  CHECK(up.image.pixels(0, 0, 7, 13) == xt::amax(up.image.pixels)());
  CHECK_THROWS_AS(data::resize(dot, 0, 3), error);
}

TEST_CASE("rescale: a blob's centre moves with its point for shrinking and growing") {
  const sample s = blob(64, 64, 30.4, 25.7);
  const auto ds = data::dataset::from_samples({s});
  for (const double f : {0.6, 0.8, 1.3, 1.7}) {
    const auto view = data::rescale(ds, f, f);
    rng r(1);
    const sample t = view.get(0, r);
    const auto side = static_cast<std::size_t>(std::llround(64 * f));
    REQUIRE(t.height() == side);
    const auto c = centroid(t);
    CHECK(std::abs(c.x - t.points[0].x) < 0.05);
    CHECK(std::abs(c.y - t.points[0].y) < 0.05);
  }
  const auto random = data::rescale(ds, 0.5, 2.0);
  rng r(3);
  std::set<std::size_t> sides;
  for (int i = 0; i < 20; ++i) {
    const std::size_t h = random.get(0, r).height();
    CHECK(h >= 32);
    CHECK(h <= 128);
    sides.insert(h);
  }
  CHECK(sides.size() > 10);
  CHECK_THROWS_AS(data::rescale(ds, 2.0, 1.0), error);
}

TEST_CASE("rescale: random_scaled_patches equals rescale then random_patches, bit for bit") {
  const sample s = asymmetric(37, 53, 2);
  sample dots = s;
  rng pr(6);
  for (int i = 0; i < 40; ++i) dots.points.push_back({pr.uniform(-0.5, 52.4), pr.uniform(-0.5, 36.4), 0, -1, -1});
  const auto ds = data::dataset::from_samples({dots});
  for (const auto& [lo, hi, side] : std::vector<std::tuple<double, double, std::size_t>>{{0.5, 1.5, 24}, {1.0, 2.0, 40}, {0.3, 0.6, 32}}) {
    const auto slow = data::random_patches(data::rescale(ds, lo, hi), side, side, 5);
    const auto fast = data::random_scaled_patches(ds, side, side, lo, hi, 5);
    REQUIRE(fast.size() == slow.size());
    for (std::size_t i = 0; i < fast.size(); ++i) {
      rng a(40 + i), b(40 + i);
      const sample x = slow.get(i, a), y = fast.get(i, b);
      CHECK(x.image.pixels == y.image.pixels);
      CHECK(same_points(x.points, y.points));
    }
  }
}

TEST_CASE("intensity: brightness, contrast and gamma follow their formulas") {
  sample s{"v", {}, {}, {}};
  s.image.pixels = xt::xtensor<float, 4>::from_shape({1, 1, 1, 5});
  const float values[] = {10, 20, 30, 40, 50};  // min 10, max 50, mean 30
  std::copy(values, values + 5, s.image.pixels.begin());
  sample b = s;
  data::adjust_intensity(b, 0.25, 1, 1);
  for (std::size_t i = 0; i < 5; ++i) CHECK(b.image.pixels(0, 0, 0, i) == doctest::Approx(values[i] + 10));
  sample c = s;
  data::adjust_intensity(c, 0, 2, 1);
  for (std::size_t i = 0; i < 5; ++i) CHECK(c.image.pixels(0, 0, 0, i) == doctest::Approx(30 + 2 * (values[i] - 30)));
  sample g = s;
  data::adjust_intensity(g, 0, 1, 2);
  for (std::size_t i = 0; i < 5; ++i)
    CHECK(g.image.pixels(0, 0, 0, i) == doctest::Approx(10 + 40 * std::pow((values[i] - 10) / 40.0, 2)));
  // The view with degenerate ranges applies exactly those parameters.
  const auto view = data::intensity(data::dataset::from_samples({s}), {{0.25, 0.25}, {2, 2}, {1, 1}});
  rng r;
  const sample v = view.get(0, r);
  for (std::size_t i = 0; i < 5; ++i) CHECK(v.image.pixels(0, 0, 0, i) == doctest::Approx(30 + 2 * (values[i] - 30) + 10));
  CHECK_THROWS_AS(data::intensity(data::dataset::from_samples({s}), {{0, 0}, {1, 1}, {0, 1}}), error);
}

TEST_CASE("noise: Poisson and Gaussian moments") {
  sample s{"flat", {}, {}, {}};
  s.image.pixels = xt::xtensor<float, 4>::from_shape({1, 1, 256, 256});
  s.image.pixels.fill(10.0f);
  const auto moments = [](const sample& t) {
    double m = 0, v = 0;
    for (const float x : t.image.pixels) m += x;
    m /= static_cast<double>(t.image.pixels.size());
    for (const float x : t.image.pixels) v += (x - m) * (x - m);
    return std::pair{m, v / static_cast<double>(t.image.pixels.size() - 1)};
  };
  rng r(4);
  sample p = s;
  data::add_noise(p, 2.0, 0.0, r);  // Poisson(20) / 2: mean 10, variance 5
  auto [pm, pv] = moments(p);
  CHECK(pm == doctest::Approx(10).epsilon(0.01));
  CHECK(pv == doctest::Approx(5).epsilon(0.04));
  for (const float x : p.image.pixels) REQUIRE(std::abs(x * 2 - std::round(x * 2)) < 1e-6);  // whole photons
  sample g = s;
  data::add_noise(g, 0.0, 3.0, r);
  auto [gm, gv] = moments(g);
  CHECK(gm == doctest::Approx(10).epsilon(0.01));
  CHECK(gv == doctest::Approx(9).epsilon(0.04));
  const auto view = data::noise(data::dataset::from_samples({s}), 2.0, 3.0);
  rng r1(8), r2(8);
  CHECK(view.get(0, r1).image.pixels == view.get(0, r2).image.pixels);
  auto [vm, vv] = moments(view.get(0, r1));
  CHECK(vv == doctest::Approx(14).epsilon(0.04));
  CHECK_THROWS_AS(data::add_noise(p, -1, 0, r), error);
}

TEST_CASE("noise: the Poisson draws follow the Poisson law for small and large means") {
  // log k! against the product, also across the table / series switch at 16.
  double log_f = 0;
  for (std::uint64_t k = 1; k < 60; ++k) {
    log_f += std::log(static_cast<double>(k));
    CHECK(data::detail::log_factorial(k) == doctest::Approx(log_f).epsilon(1e-12));
  }
  rng r(12);
  for (const double mean : {3.0, 10.0, 23.5, 150.0, 4000.0}) {
    CAPTURE(mean);
    const int n = 40000;
    std::map<std::uint64_t, int> seen;
    double sum = 0, sum2 = 0;
    for (int i = 0; i < n; ++i) {
      const auto k = data::detail::poisson(mean, r);
      ++seen[k];
      sum += static_cast<double>(k), sum2 += static_cast<double>(k) * static_cast<double>(k);
    }
    const double m = sum / n, var = sum2 / n - m * m;
    CHECK(std::abs(m - mean) < 5 * std::sqrt(mean / n));
    CHECK(var == doctest::Approx(mean).epsilon(0.05));
    // Chi-square over the values with an expected count of at least 20, against the exact pmf.
    double chi2 = 0;
    int cells = 0;
    for (std::uint64_t k = 0; k < static_cast<std::uint64_t>(mean * 3 + 30); ++k) {
      const double expect = n * std::exp(-mean + static_cast<double>(k) * std::log(mean) - data::detail::log_factorial(k));
      if (expect < 20) continue;
      const double d = seen[k] - expect;
      chi2 += d * d / expect;
      ++cells;
    }
    REQUIRE(cells > 3);
    CHECK(chi2 < cells + 5 * std::sqrt(2.0 * cells));  // mean cells, sd sqrt(2 cells): a 5-sigma bound
  }
}

TEST_CASE("pipeline: mbm RGB to grey, normalised, patched and flipped; same result from any thread") {
  MICROCOUNT_REQUIRE_DATA();
  const auto ds = data::open_dataset(test::data_dir() / "mbm");
  rng r0;
  const sample rgb = ds.get(2, r0);
  const sample grey = data::to_grey(rgb);
  REQUIRE(grey.image.pixels.shape() == std::array<std::size_t, 4>{1, 1, 600, 600});
  for (std::size_t i : {0u, 12345u, 359999u}) {
    const std::size_t y = i / 600, x = i % 600;
    CHECK(grey.image.pixels(0, 0, y, x) ==
          doctest::Approx((rgb.image.pixels(0, 0, y, x) + rgb.image.pixels(0, 1, y, x) + rgb.image.pixels(0, 2, y, x)) / 3));
  }
  // D4 round trip on a real image.
  for (int k = 0; k < 8; ++k) {
    const sample back = data::dihedral(data::dihedral(rgb, k), data::inverse_dihedral(k));
    CHECK(back.image.pixels == rgb.image.pixels);
    CHECK(same_points(back.points, rgb.points));
  }
  const auto base = data::cached(data::normalize_percentile(data::to_grey(ds)));
  const auto view = data::d4(data::intensity(data::random_patches(base, 128, 128, 3), {{-0.1, 0.1}, {0.8, 1.2}, {0.8, 1.25}}));
  CHECK(view.size() == 132);
  std::vector<sample> a(6), b(6);
  std::thread t1([&] { for (std::size_t i = 0; i < 6; ++i) { rng r(100 + i); a[i] = view.get(i * 20, r); } });
  std::thread t2([&] { for (std::size_t i = 6; i-- > 0;) { rng r(100 + i); b[i] = view.get(i * 20, r); } });
  t1.join();
  t2.join();
  // The cached front equals the uncached chain.
  const sample direct = data::normalize_percentile(data::to_grey(ds)).get(40, r0);
  CHECK(base.get(40, r0).image.pixels == direct.image.pixels);
  CHECK(same_points(base.get(40, r0).points, direct.points));
  for (std::size_t i = 0; i < 6; ++i) {
    REQUIRE(a[i].image.pixels.shape() == std::array<std::size_t, 4>{1, 1, 128, 128});
    CHECK(a[i].image.pixels == b[i].image.pixels);
    CHECK(same_points(a[i].points, b[i].points));
    for (const auto& p : a[i].points) {
      CHECK(p.x >= -0.5);
      CHECK(p.x < 127.5);
    }
  }
}
