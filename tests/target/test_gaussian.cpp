// Gaussian density targets: unit mass and peak-1 against closed forms, a plain scalar oracle for the
// xsimd path, a brute-force kNN for adaptive σ, and the real vgg-cells annotations.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <vector>

#include <pugixml.hpp>
#include <xtensor/xview.hpp>

#include "microcount/core/error.hpp"
#include "microcount/core/parallel.hpp"
#include "microcount/core/rng.hpp"
#include "microcount/target/gaussian.hpp"
#include "test_support.hpp"

using namespace microcount;

namespace {

double channel_sum(const xt::xtensor<float, 3>& m, std::size_t c) {
  double s = 0;
  const std::size_t plane = m.shape()[1] * m.shape()[2];
  for (std::size_t i = 0; i < plane; ++i) s += m.data()[c * plane + i];
  return s;
}

// The documented kernel, in double, one point at a time: the oracle for the vectorised rasterizer.
xt::xtensor<double, 3> scalar_density(const std::vector<io::point>& pts, const std::vector<double>& sigma, std::size_t c,
                                      std::size_t h, std::size_t w, const target::gaussian_options& o) {
  xt::xtensor<double, 3> out = xt::zeros<double>({c, h, w});
  for (std::size_t i = 0; i < pts.size(); ++i) {
    const auto& p = pts[i];
    const double half = std::max(o.truncate * sigma[i], 0.5);
    std::vector<std::pair<std::size_t, std::size_t>> px;
    double mass = 0;
    for (std::size_t r = 0; r < h; ++r)
      for (std::size_t col = 0; col < w; ++col) {
        const double dx = static_cast<double>(col) - p.x, dy = static_cast<double>(r) - p.y;
        if (std::abs(dx) > half || std::abs(dy) > half) continue;
        mass += std::exp(-(dx * dx + dy * dy) / (2 * sigma[i] * sigma[i]));
        px.push_back({r, col});
      }
    const double amp = o.norm == target::normalization::unit_mass ? 1.0 / mass : 1.0;
    for (auto [r, col] : px) {
      const double dx = static_cast<double>(col) - p.x, dy = static_cast<double>(r) - p.y;
      const double v = amp * std::exp(-(dx * dx + dy * dy) / (2 * sigma[i] * sigma[i]));
      double& o_ = out(static_cast<std::size_t>(p.label), r, col);
      if (o.norm == target::normalization::peak_one && o.combine == target::overlap::max)
        o_ = std::max(o_, v);
      else
        o_ += v;
    }
  }
  return out;
}

std::vector<io::point> random_points(rng& r, std::size_t n, std::size_t h, std::size_t w, int classes) {
  std::vector<io::point> pts;
  for (std::size_t i = 0; i < n; ++i)
    pts.push_back({r.uniform(-0.5, static_cast<double>(w) - 0.5), r.uniform(-0.5, static_cast<double>(h) - 0.5),
                   static_cast<int>(r.below(static_cast<std::uint64_t>(classes))), -1, -1});
  return pts;
}

}  // namespace

TEST_CASE("gaussian unit mass: every channel sums to its count, also at corners, borders and sub-pixel positions") {
  const std::size_t h = 37, w = 53;
  std::vector<io::point> pts = {
      {-0.5, -0.5, 0, -1, -1}, {52.5, 36.5, 1, -1, -1}, {0, 0, 0, -1, -1},   {52, 0, 2, -1, -1},
      {0, 36, 1, -1, -1},      {26.37, 0.01, 0, -1, -1}, {13.7, 18.2, 2, -1, -1}, {13.9, 18.4, 2, -1, -1}};
  rng r(11);
  auto more = random_points(r, 200, h, w, 3);
  pts.insert(pts.end(), more.begin(), more.end());
  std::vector<double> per_class(3, 0);
  for (const auto& p : pts) per_class[static_cast<std::size_t>(p.label)] += 1;
  for (double sigma : {0.4, 1.0, 2.5, 7.0}) {
    target::gaussian_options o;
    o.sigma = sigma;
    const auto d = target::gaussian_density(pts, h, w, o);
    REQUIRE(d.shape()[0] == 3);
    for (std::size_t c = 0; c < 3; ++c) CHECK(channel_sum(d, c) == doctest::Approx(per_class[c]).epsilon(1e-4));
  }
  // A single point in a corner keeps all its mass although three quarters of its Gaussian are cut.
  const std::vector<io::point> corner = {{-0.5, -0.5, 0, -1, -1}};
  target::gaussian_options o;
  o.sigma = 3;
  CHECK(channel_sum(target::gaussian_density(corner, 20, 20, o), 0) == doctest::Approx(1.0).epsilon(1e-6));
}

TEST_CASE("gaussian values match the closed form at chosen pixels, inside and at a border") {
  target::gaussian_options o;
  o.sigma = 1.7;
  const double s2 = 2 * 1.7 * 1.7;
  {
    // Far from the border and cut at 6σ, the samples of a Gaussian sum to 2πσ² within 1e-8
    // (Poisson summation: the aliasing terms are ~exp(-2π²σ²)).
    target::gaussian_options wide = o;
    wide.truncate = 6;
    const std::vector<io::point> pts = {{20.3, 14.6, 0, -1, -1}};
    const auto d = target::gaussian_density(pts, 30, 40, wide);
    const double mass = 2 * M_PI * 1.7 * 1.7;
    for (auto [r, c] : {std::pair{14, 20}, {15, 21}, {12, 18}, {17, 24}}) {
      const double dx = c - 20.3, dy = r - 14.6;
      CHECK(d(0, r, c) == doctest::Approx(std::exp(-(dx * dx + dy * dy) / s2) / mass).epsilon(1e-4));
    }
    // The support is |dx| <= 6σ = 10.2: column 30 (dx = 9.7) is drawn, column 31 (dx = 10.7) is not.
    CHECK(d(0, 14, 30) > 0.0f);
    CHECK(d(0, 14, 31) == 0.0f);
    CHECK(d(0, 3, 20) == 0.0f);  // dy = -11.6
  }
  {
    // At the corner the kernel is renormalised over the pixels that remain: separable sums.
    const std::vector<io::point> pts = {{0.2, 0.3, 0, -1, -1}};
    const auto d = target::gaussian_density(pts, 30, 40, o);
    double sx = 0, sy = 0;
    for (int c = 0; c <= static_cast<int>(std::floor(0.2 + 4 * 1.7)); ++c) sx += std::exp(-(c - 0.2) * (c - 0.2) / s2);
    for (int r = 0; r <= static_cast<int>(std::floor(0.3 + 4 * 1.7)); ++r) sy += std::exp(-(r - 0.3) * (r - 0.3) / s2);
    for (auto [r, c] : {std::pair{0, 0}, {1, 0}, {3, 2}, {6, 5}})
      CHECK(d(0, r, c) == doctest::Approx(std::exp(-((c - 0.2) * (c - 0.2) + (r - 0.3) * (r - 0.3)) / s2) / (sx * sy)).epsilon(1e-4));
  }
}

TEST_CASE("gaussian peak one: 1 on the point, overlaps by max or by sum") {
  target::gaussian_options o;
  o.norm = target::normalization::peak_one;
  o.sigma = 2;
  const std::vector<io::point> pts = {{10, 10, 0, -1, -1}, {13, 10, 0, -1, -1}, {0, 0, 0, -1, -1}};
  const auto dmax = target::gaussian_density(pts, 24, 24, o);
  CHECK(dmax(0, 10, 10) == doctest::Approx(1.0).epsilon(1e-6));
  CHECK(dmax(0, 10, 13) == doctest::Approx(1.0).epsilon(1e-6));
  CHECK(dmax(0, 0, 0) == doctest::Approx(1.0).epsilon(1e-6));  // no renormalisation at the border
  CHECK(xt::amax(dmax)() == doctest::Approx(1.0).epsilon(1e-6));
  // Between the two points max keeps the larger Gaussian, sum adds them.
  const double g1 = std::exp(-1.0 / 8), g2 = std::exp(-4.0 / 8);
  CHECK(dmax(0, 10, 11) == doctest::Approx(std::max(g1, g2)).epsilon(1e-5));
  o.combine = target::overlap::sum;
  const auto dsum = target::gaussian_density(pts, 24, 24, o);
  CHECK(dsum(0, 10, 11) == doctest::Approx(g1 + g2).epsilon(1e-5));
  CHECK(dsum(0, 10, 10) == doctest::Approx(1 + std::exp(-9.0 / 8)).epsilon(1e-5));
}

TEST_CASE("adaptive sigma equals beta × mean distance to the k nearest found by brute force") {
  rng r(5);
  std::vector<io::point> pts;
  for (int i = 0; i < 1500; ++i) pts.push_back({r.uniform(0, 300), r.uniform(0, 200), 0, static_cast<int>(r.below(3)), -1});
  for (int i = 0; i < 40; ++i) pts.push_back({100 + r.uniform(0, 3), 50 + r.uniform(0, 3), 0, 0, -1});  // a dense clump
  pts.push_back({5, 5, 0, 7, -1});  // alone in frame 7: fewer than k neighbours
  for (int i = 0; i < 3; ++i) pts.push_back({5.0 + i, 5, 0, 8, -1});  // frame 8: exactly 2 neighbours each, k = 3
  target::gaussian_options o;
  o.sigma = 2.25;
  o.adaptive = target::adaptive_sigma{3, 0.3, 0.5, 6.0};
  const auto sigma = target::point_sigmas(pts, o);
  REQUIRE(sigma.size() == pts.size());
  for (std::size_t i = 0; i < pts.size(); ++i) {
    std::vector<double> d;
    for (std::size_t j = 0; j < pts.size(); ++j)
      if (j != i && pts[j].frame == pts[i].frame) d.push_back(std::hypot(pts[i].x - pts[j].x, pts[i].y - pts[j].y));
    std::sort(d.begin(), d.end());
    const double expected = d.size() < 3 ? 2.25 : std::clamp(0.3 * (d[0] + d[1] + d[2]) / 3, 0.5, 6.0);
    CHECK(sigma[i] == doctest::Approx(expected).epsilon(1e-12));
  }
}

TEST_CASE("xsimd rasterizer equals a plain scalar loop on random points (fixed, adaptive, unit mass, peak one)") {
  rng r(21);
  const std::size_t h = 61, w = 83;  // odd width: every row ends in a scalar tail
  const auto pts = random_points(r, 300, h, w, 2);
  for (int variant = 0; variant < 4; ++variant) {
    target::gaussian_options o;
    o.sigma = 1.3;
    o.truncate = 3.5;
    if (variant == 1) o.adaptive = target::adaptive_sigma{2, 0.5, 0.6, 4.0};
    if (variant >= 2) o.norm = target::normalization::peak_one;
    if (variant == 3) o.combine = target::overlap::sum;
    const auto fast = target::gaussian_density(pts, h, w, o);
    const auto oracle = scalar_density(pts, target::point_sigmas(pts, o), 2, h, w, o);
    double worst = 0;
    for (std::size_t i = 0; i < fast.size(); ++i) worst = std::max(worst, std::abs(fast.data()[i] - oracle.data()[i]));
    CAPTURE(variant);
    CHECK(worst < 2e-6);
  }
}

TEST_CASE("gaussian density does not depend on the thread count") {
  rng r(3);
  const auto pts = random_points(r, 2000, 300, 200, 2);
  target::gaussian_options o;
  o.sigma = 2.0;
  const int before = max_threads();
  set_threads(1);
  const auto one = target::gaussian_density(pts, 300, 200, o);
  set_threads(std::max(2, before));
  const auto many = target::gaussian_density(pts, 300, 200, o);
  set_threads(before);
  CHECK(std::equal(one.begin(), one.end(), many.begin()));
}

TEST_CASE("gaussian movie [C, T, H, W]: each point on its own frame, unit mass per frame") {
  std::vector<io::point> pts = {{3, 4, 0, 0, -1}, {10.5, 2.2, 1, 2, -1}, {19.5, 14.5, 1, 2, -1}, {0, 0, 0, 3, -1}};
  target::gaussian_options o;
  o.sigma = 1.5;
  const auto m = target::gaussian_density_movie(pts, 4, 15, 20, o);
  REQUIRE(m.shape() == std::array<std::size_t, 4>{2, 4, 15, 20});
  auto plane_sum = [&](std::size_t c, std::size_t t) {
    double s = 0;
    for (std::size_t y = 0; y < 15; ++y)
      for (std::size_t x = 0; x < 20; ++x) s += m(c, t, y, x);
    return s;
  };
  CHECK(plane_sum(0, 0) == doctest::Approx(1).epsilon(1e-5));
  CHECK(plane_sum(0, 1) == 0.0);
  CHECK(plane_sum(1, 2) == doctest::Approx(2).epsilon(1e-5));
  CHECK(plane_sum(0, 3) == doctest::Approx(1).epsilon(1e-5));
  CHECK(plane_sum(1, 3) == 0.0);
  pts.push_back({1, 1, 0, 4, -1});
  CHECK_THROWS_WITH_AS(target::gaussian_density_movie(pts, 4, 15, 20, o),
                       doctest::Contains("has frame 4, outside the 4 frames"), error);
}

TEST_CASE("gaussian density rejects bad points and options with a clear error") {
  const std::vector<io::point> outside = {{3, 3, 0, -1, -1}, {40.0, 3, 0, -1, -1}};
  CHECK_THROWS_WITH_AS(target::gaussian_density(outside, 10, 20), doctest::Contains("point 1 (x=40"), error);
  CHECK_THROWS_WITH_AS(target::gaussian_density(outside, 10, 20), doctest::Contains("outside the 20x10 image"), error);
  target::gaussian_options skip;
  skip.skip_outside = true;
  CHECK(channel_sum(target::gaussian_density(outside, 10, 20, skip), 0) == doctest::Approx(1).epsilon(1e-5));
  const std::vector<io::point> bad_label = {{3, 3, 4, -1, -1}};
  target::gaussian_options two;
  two.classes = 2;
  CHECK_THROWS_WITH_AS(target::gaussian_density(bad_label, 10, 20, two), doctest::Contains("label 4, outside the 2 classes"), error);
  const std::vector<io::point> nan = {{std::nan(""), 3, 0, -1, -1}};
  CHECK_THROWS_AS(target::gaussian_density(nan, 10, 20), error);
  target::gaussian_options tiny;
  tiny.sigma = 0.01;
  CHECK_THROWS_WITH_AS(target::gaussian_density(outside, 10, 20, tiny), doctest::Contains("sigma must be"), error);
  CHECK_THROWS_WITH_AS(target::gaussian_density(outside, 1u << 20, 1u << 20), doctest::Contains("limit"), error);
}

TEST_CASE("real vgg-cells annotations: every image's unit-mass density sums to its count") {
  MICROCOUNT_REQUIRE_DATA();
  const auto file = test::data_dir() / "vgg-cells" / "annotations.xml";
  pugi::xml_document doc;
  REQUIRE(doc.load_file(file.c_str()));
  io::annotations ann;
  ann.label_index("cell");
  std::size_t images = 0, total = 0, on_border = 0;
  for (auto im : doc.child("annotations").children("image")) {
    auto& ip = ann.image(im.attribute("name").value());
    ip.width = im.attribute("width").as_llong();
    ip.height = im.attribute("height").as_llong();
    for (auto p : im.children("points")) {
      double x = 0, y = 0;
      REQUIRE(std::sscanf(p.attribute("points").value(), "%lf,%lf", &x, &y) == 2);
      ip.points.push_back({x, y, 0, -1, -1});
      on_border += (x == 0 || y == 0 || x == 255 || y == 255) ? 1 : 0;
    }
    ++images;
    total += ip.points.size();
  }
  REQUIRE(images == 200);
  REQUIRE(total == 35192);
  CHECK(on_border > 0);  // the set has cells on the image edge: the renormalisation matters
  target::gaussian_options fixed;
  fixed.sigma = 2.0;
  target::gaussian_options adaptive = fixed;
  adaptive.adaptive = target::adaptive_sigma{};
  for (const auto& im : ann.images) {
    const auto d = target::gaussian_density(ann, im, fixed);
    REQUIRE(d.shape() == std::array<std::size_t, 3>{1, 256, 256});
    CHECK(channel_sum(d, 0) == doctest::Approx(static_cast<double>(im.points.size())).epsilon(1e-4));
  }
  const auto& first = ann.images.front();
  const auto da = target::gaussian_density(ann, first, adaptive);
  CHECK(channel_sum(da, 0) == doctest::Approx(static_cast<double>(first.points.size())).epsilon(1e-4));
  // An annotation without the image size is refused, naming the image.
  io::image_points sizeless{"image_x.tif", 0, 0, 0, first.points};
  CHECK_THROWS_WITH_AS(target::gaussian_density(ann, sizeless, fixed), doctest::Contains("image_x.tif"), error);
}
