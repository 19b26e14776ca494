// Local-maximum peaks against a brute-force O(N·window) oracle of the documented rules, sub-pixel
// recovery of Gaussian centres, a Gaussian → peaks round trip, and the real deep-events ground truth.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <deque>
#include <filesystem>
#include <numeric>
#include <string>
#include <vector>

#include <tiffio.h>
#include <xtensor/xview.hpp>

#include "microcount/core/error.hpp"
#include "microcount/core/rng.hpp"
#include "microcount/post/peaks.hpp"
#include "microcount/target/gaussian.hpp"
#include "test_support.hpp"

using namespace microcount;

namespace {

// ---- the oracle: every rule of post/peaks.hpp written the slow, obvious way ----------------------
double vertex(double a, double b, double c) {
  const double curv = a - 2 * b + c;
  if (!(curv < 0)) return 0;
  return std::clamp(0.5 * (a - c) / curv, -0.5, 0.5);
}

std::vector<post::scored_point> brute_peaks(const std::vector<float>& v, int T, int H, int W, const post::peak_options& o,
                                            bool volumetric, int label, int frame_of_plane) {
  const int d = o.min_distance;
  const int dt = volumetric ? (o.min_distance_frames < 0 ? d : o.min_distance_frames) : 0;
  const int b = o.exclude_border < 0 ? d : o.exclude_border;
  const int bt = volumetric ? (o.exclude_border < 0 ? dt : o.exclude_border) : 0;
  const float lo = *std::min_element(v.begin(), v.end()), hi = *std::max_element(v.begin(), v.end());
  float thr = o.threshold_abs.value_or(lo);
  if (o.threshold_rel) thr = std::max(thr, *o.threshold_rel * hi);
  auto at = [&](int t, int y, int x) { return v[(static_cast<std::size_t>(t) * H + y) * W + x]; };
  std::vector<char> cand(v.size(), 0);
  for (int t = bt; t < T - bt; ++t)
    for (int y = b; y < H - b; ++y)
      for (int x = b; x < W - b; ++x) {
        const float c = at(t, y, x);
        if (!(c > thr)) continue;
        bool is_max = true;
        for (int a = std::max(0, t - dt); a <= std::min(T - 1, t + dt) && is_max; ++a)
          for (int yy = std::max(0, y - d); yy <= std::min(H - 1, y + d) && is_max; ++yy)
            for (int xx = std::max(0, x - d); xx <= std::min(W - 1, x + d); ++xx)
              if (at(a, yy, xx) > c) {
                is_max = false;
                break;
              }
        cand[(static_cast<std::size_t>(t) * H + y) * W + x] = is_max;
      }
  struct group {
    std::size_t first;
    double t = 0, y = 0, x = 0;
    int n = 0;
    float value = 0;
  };
  std::vector<group> groups;
  std::vector<char> seen(v.size(), 0);
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (!cand[i] || seen[i]) continue;
    group g{i};
    g.value = v[i];
    std::deque<std::size_t> queue{i};
    seen[i] = 1;
    while (!queue.empty()) {
      const std::size_t k = queue.front();
      queue.pop_front();
      const int t = static_cast<int>(k / (static_cast<std::size_t>(H) * W)), y = static_cast<int>(k / W % H), x = static_cast<int>(k % W);
      g.t += t;
      g.y += y;
      g.x += x;
      g.n += 1;
      for (int a = -(dt > 0); a <= (dt > 0); ++a)
        for (int oy = -1; oy <= 1; ++oy)
          for (int ox = -1; ox <= 1; ++ox) {
            const int tt = t + a, yy = y + oy, xx = x + ox;
            if (tt < 0 || tt >= T || yy < 0 || yy >= H || xx < 0 || xx >= W) continue;
            const std::size_t j = (static_cast<std::size_t>(tt) * H + yy) * W + xx;
            if (cand[j] && !seen[j] && v[j] == g.value) {
              seen[j] = 1;
              queue.push_back(j);
            }
          }
    }
    groups.push_back(g);
  }
  std::stable_sort(groups.begin(), groups.end(), [](const group& a, const group& b) { return a.value > b.value; });
  const double tscale = dt > 0 ? static_cast<double>(d) / dt : 0.0;
  std::vector<std::array<double, 3>> kept;
  std::vector<post::scored_point> out;
  for (const auto& g : groups) {
    if (out.size() >= o.max_peaks) break;
    const std::array<double, 3> pos{g.t / g.n * tscale, g.y / g.n, g.x / g.n};
    bool ok = true;
    for (const auto& q : kept) {
      const double at_ = std::abs(pos[0] - q[0]), ay = std::abs(pos[1] - q[1]), ax = std::abs(pos[2] - q[2]);
      const double dist = o.norm == post::spacing_norm::chebyshev ? std::max({at_, ay, ax}) : std::sqrt(at_ * at_ + ay * ay + ax * ax);
      if (dist < d) ok = false;
    }
    if (!ok) continue;
    kept.push_back(pos);
    post::scored_point p;
    p.score = g.value;
    p.point.label = label;
    const int t = static_cast<int>(g.first / (static_cast<std::size_t>(H) * W)), y = static_cast<int>(g.first / W % H),
              x = static_cast<int>(g.first % W);
    if (g.n > 1) {
      p.point.y = g.y / g.n;
      p.point.x = g.x / g.n;
      p.point.frame = volumetric ? static_cast<int>(std::lround(g.t / g.n)) : frame_of_plane;
    } else {
      double dy = 0, dx = 0;
      if (o.refine == post::subpixel::quadratic || o.refine == post::subpixel::gaussian) {
        auto f = [&](int yy, int xx) { return static_cast<double>(at(t, yy, xx)); };
        auto fit = [&](double a, double c0, double c) {
          if (o.refine == post::subpixel::gaussian && a > 0 && c0 > 0 && c > 0) return vertex(std::log(a), std::log(c0), std::log(c));
          return vertex(a, c0, c);
        };
        if (y > 0 && y < H - 1) dy = fit(f(y - 1, x), f(y, x), f(y + 1, x));
        if (x > 0 && x < W - 1) dx = fit(f(y, x - 1), f(y, x), f(y, x + 1));
      } else if (o.refine == post::subpixel::centroid) {
        double m = 1e300, sw = 0, sy = 0, sx = 0;
        for (int yy = std::max(0, y - 1); yy <= std::min(H - 1, y + 1); ++yy)
          for (int xx = std::max(0, x - 1); xx <= std::min(W - 1, x + 1); ++xx) m = std::min<double>(m, at(t, yy, xx));
        for (int yy = std::max(0, y - 1); yy <= std::min(H - 1, y + 1); ++yy)
          for (int xx = std::max(0, x - 1); xx <= std::min(W - 1, x + 1); ++xx) {
            const double wgt = at(t, yy, xx) - m;
            sw += wgt;
            sy += wgt * (yy - y);
            sx += wgt * (xx - x);
          }
        if (sw > 0) {
          dy = sy / sw;
          dx = sx / sw;
        }
      }
      p.point.y = y + dy;
      p.point.x = x + dx;
      p.point.frame = volumetric ? t : frame_of_plane;
    }
    out.push_back(p);
  }
  return out;
}

void check_same(const std::vector<post::scored_point>& got, const std::vector<post::scored_point>& want) {
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    CAPTURE(i);
    CHECK(got[i].score == want[i].score);
    CHECK(got[i].point.x == doctest::Approx(want[i].point.x).epsilon(1e-9));
    CHECK(got[i].point.y == doctest::Approx(want[i].point.y).epsilon(1e-9));
    CHECK(got[i].point.frame == want[i].point.frame);
    CHECK(got[i].point.label == want[i].point.label);
  }
}

// Random maps: smooth blobs (continuous values) or a few integer levels (plateaus everywhere).
std::vector<float> random_map(rng& r, std::size_t n, std::size_t w, bool levels) {
  std::vector<float> v(n);
  if (levels) {
    for (auto& x : v) x = static_cast<float>(r.below(4));
    return v;
  }
  for (auto& x : v) x = static_cast<float>(r.uniform());
  // Two box blurs along x make neighbouring values correlated (peaks of several pixels' width).
  for (int pass = 0; pass < 2; ++pass) {
    std::vector<float> s = v;
    for (std::size_t i = 1; i + 1 < n; ++i)
      if (i % w != 0 && i % w != w - 1) s[i] = (v[i - 1] + v[i] + v[i + 1]) / 3.0f;
    v = s;
  }
  return v;
}

float quantile(std::vector<float> v, double q) {
  std::sort(v.begin(), v.end());
  return v[static_cast<std::size_t>(q * static_cast<double>(v.size() - 1))];
}

xt::xtensor<float, 3> as_volume(const std::vector<float>& v, std::size_t t, std::size_t h, std::size_t w) {
  auto m = xt::xtensor<float, 3>::from_shape({t, h, w});
  std::copy(v.begin(), v.end(), m.begin());
  return m;
}

float half_to_float(std::uint16_t h) {
  const std::uint32_t sign = (h >> 15) & 1u, exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
  float mag;
  if (exp == 0)
    mag = std::ldexp(static_cast<float>(mant), -24);
  else if (exp == 31)
    mag = mant ? std::nanf("") : INFINITY;
  else
    mag = std::ldexp(static_cast<float>(mant | 0x400u), static_cast<int>(exp) - 25);
  return sign ? -mag : mag;
}

// The deep-events fixtures: uncompressed float16 pages written by tifffile.
xt::xtensor<float, 3> read_float16_stack(const std::filesystem::path& file) {
  TIFF* tif = TIFFOpen(file.c_str(), "r");
  REQUIRE(tif != nullptr);
  std::vector<std::vector<float>> pages;
  std::uint32_t w = 0, h = 0;
  do {
    std::uint16_t bps = 0, fmt = 0;
    TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &w);
    TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &h);
    TIFFGetField(tif, TIFFTAG_BITSPERSAMPLE, &bps);
    TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLEFORMAT, &fmt);
    REQUIRE(bps == 16);
    REQUIRE(fmt == SAMPLEFORMAT_IEEEFP);
    std::vector<std::uint16_t> raw(static_cast<std::size_t>(w) * h);
    std::size_t offset = 0;
    for (tstrip_t s = 0; s < TIFFNumberOfStrips(tif); ++s) {
      const tmsize_t got = TIFFReadEncodedStrip(tif, s, reinterpret_cast<char*>(raw.data()) + offset, -1);
      REQUIRE(got > 0);
      offset += static_cast<std::size_t>(got);
    }
    REQUIRE(offset == raw.size() * 2);
    std::vector<float> page(raw.size());
    std::transform(raw.begin(), raw.end(), page.begin(), half_to_float);
    pages.push_back(std::move(page));
  } while (TIFFReadDirectory(tif));
  TIFFClose(tif);
  auto out = xt::xtensor<float, 3>::from_shape({pages.size(), h, w});
  for (std::size_t i = 0; i < pages.size(); ++i) std::copy(pages[i].begin(), pages[i].end(), out.begin() + static_cast<std::ptrdiff_t>(i * w * h));
  return out;
}

}  // namespace

TEST_CASE("2D peaks equal the brute-force oracle on random maps (min_distance, thresholds, plateaus, border, norms)") {
  rng r(101);
  int cases = 0;
  for (int trial = 0; trial < 40; ++trial) {
    const std::size_t h = 8 + r.below(30), w = 8 + r.below(40);
    const bool levels = trial % 3 == 0;
    const auto v = random_map(r, h * w, w, levels);
    post::peak_options o;
    o.min_distance = 1 + static_cast<int>(r.below(4));
    if (r.below(2)) o.threshold_abs = static_cast<float>(levels ? 0.5 : 0.4);
    if (trial % 4 == 1) o.threshold_abs = levels ? 2.5f : quantile(v, 0.97);  // few pixels pass: the sparse path
    if (r.below(2)) o.threshold_rel = 0.6f;
    o.exclude_border = static_cast<int>(r.below(3)) - 1;
    o.norm = r.below(2) ? post::spacing_norm::chebyshev : post::spacing_norm::euclidean;
    o.refine = static_cast<post::subpixel>(r.below(4));
    if (trial % 5 == 4) o.max_peaks = 3;
    CAPTURE(trial);
    xt::xtensor<float, 2> map = xt::view(as_volume(v, 1, h, w), 0, xt::all(), xt::all());
    const auto got = post::find_peaks(map, o, 2);
    check_same(got, brute_peaks(v, 1, static_cast<int>(h), static_cast<int>(w), o, false, 2, -1));
    cases += got.empty() ? 0 : 1;
  }
  CHECK(cases > 30);  // the maps did have peaks
}

TEST_CASE("peaks: a plateau is one peak at its centroid; a flat map below threshold has none") {
  xt::xtensor<float, 2> m = xt::zeros<float>({9, 12});
  m(3, 4) = m(3, 5) = m(4, 5) = 2.0f;  // an L-shaped plateau
  m(7, 10) = 1.0f;
  post::peak_options o;
  o.exclude_border = 0;
  const auto p = post::find_peaks(m, o);
  REQUIRE(p.size() == 2);
  CHECK(p[0].score == 2.0f);
  CHECK(p[0].point.x == doctest::Approx(14.0 / 3));
  CHECK(p[0].point.y == doctest::Approx(10.0 / 3));
  CHECK(p[1].point.x == 10.0);
  CHECK(p[1].point.y == 7.0);
  CHECK(post::find_peaks(xt::xtensor<float, 2>(xt::ones<float>({5, 5}))).empty());
  o.min_distance = 0;
  CHECK_THROWS_WITH_AS(post::find_peaks(m, o), doctest::Contains("min_distance"), error);
  m(0, 0) = std::nanf("");
  CHECK_THROWS_WITH_AS(post::find_peaks(m), doctest::Contains("non-finite"), error);
}

TEST_CASE("3D, per-frame and per-class peaks equal the oracle on random volumes") {
  rng r(7);
  for (int trial = 0; trial < 12; ++trial) {
    const std::size_t t = 3 + r.below(8), h = 6 + r.below(14), w = 6 + r.below(20);
    const bool levels = trial % 3 == 0;
    const auto v = random_map(r, t * h * w, w, levels);
    const auto vol = as_volume(v, t, h, w);
    post::peak_options o;
    o.min_distance = 1 + static_cast<int>(r.below(3));
    o.min_distance_frames = static_cast<int>(r.below(3)) - 1;
    if (o.min_distance_frames == 0) o.min_distance_frames = 1;
    o.exclude_border = static_cast<int>(r.below(3)) - 1;
    if (r.below(2)) o.threshold_rel = 0.5f;
    if (trial % 3 == 1) o.threshold_abs = quantile(v, 0.95);  // few voxels pass: the sparse path
    o.norm = r.below(2) ? post::spacing_norm::chebyshev : post::spacing_norm::euclidean;
    CAPTURE(trial);
    check_same(post::find_peaks_3d(vol, o, 1), brute_peaks(v, static_cast<int>(t), static_cast<int>(h), static_cast<int>(w), o, true, 1, -1));
    // Per frame: every frame searched as its own 2D map, frame = t.
    std::vector<post::scored_point> want;
    for (std::size_t f = 0; f < t; ++f) {
      const std::vector<float> plane(v.begin() + static_cast<std::ptrdiff_t>(f * h * w), v.begin() + static_cast<std::ptrdiff_t>((f + 1) * h * w));
      const auto p = brute_peaks(plane, 1, static_cast<int>(h), static_cast<int>(w), o, false, 0, static_cast<int>(f));
      want.insert(want.end(), p.begin(), p.end());
    }
    check_same(post::find_peaks_per_frame(vol, o), want);
    // Per class: the same planes with label = channel and frame -1.
    for (auto& p : want) {
      p.point.label = p.point.frame;
      p.point.frame = -1;
    }
    check_same(post::find_peaks_per_class(vol, o), want);
  }
}

TEST_CASE("sub-pixel refinement recovers a Gaussian's true centre") {
  const double x0 = 20.37, y0 = 15.81;
  for (double sigma : {1.0, 1.5, 2.5}) {
    xt::xtensor<float, 2> m = xt::zeros<float>({32, 40});
    for (std::size_t y = 0; y < 32; ++y)
      for (std::size_t x = 0; x < 40; ++x)
        m(y, x) = static_cast<float>(std::exp(-((x - x0) * (x - x0) + (y - y0) * (y - y0)) / (2 * sigma * sigma)));
    post::peak_options o;
    o.refine = post::subpixel::gaussian;
    auto p = post::find_peaks(m, o);
    REQUIRE(p.size() == 1);
    CHECK(std::abs(p[0].point.x - x0) < 1e-3);  // exact for sampled Gaussians, up to float rounding
    CHECK(std::abs(p[0].point.y - y0) < 1e-3);
    o.refine = post::subpixel::quadratic;
    p = post::find_peaks(m, o);
    CAPTURE(sigma);
    CHECK(std::abs(p[0].point.x - x0) < (sigma >= 1.5 ? 0.05 : 0.1));
    CHECK(std::abs(p[0].point.y - y0) < (sigma >= 1.5 ? 0.05 : 0.1));
    o.refine = post::subpixel::centroid;  // biased toward the pixel, but in the right direction
    p = post::find_peaks(m, o);
    CHECK(p[0].point.x > 20.0);
    CHECK(p[0].point.x < x0 + 0.05);
    CHECK(p[0].point.y < 16.0);
    CHECK(p[0].point.y > y0 - 0.3);
  }
}

TEST_CASE("round trip: unit-mass Gaussians (sigma 1.5) at separated random points come back as peaks within 0.5 px") {
  rng r(2024);
  const std::size_t h = 160, w = 200;
  std::vector<io::point> pts;
  while (pts.size() < 120) {
    const io::point p{r.uniform(-0.5, w - 0.5), r.uniform(-0.5, h - 0.5), 0, -1, -1};
    bool far = true;
    for (const auto& q : pts) far = far && std::hypot(p.x - q.x, p.y - q.y) >= 9;
    if (far) pts.push_back(p);
  }
  target::gaussian_options g;
  g.sigma = 1.5;
  const auto density = target::gaussian_density(pts, h, w, g);
  xt::xtensor<float, 2> map = xt::view(density, 0, xt::all(), xt::all());
  post::peak_options o;
  o.min_distance = 3;
  o.threshold_rel = 0.2f;
  o.exclude_border = 0;
  const auto peaks = post::find_peaks(map, o);
  CHECK(peaks.size() == pts.size());
  double worst = 0;
  for (const auto& p : pts) {
    double best = 1e9;
    for (const auto& q : peaks) best = std::min(best, std::hypot(p.x - q.point.x, p.y - q.point.y));
    worst = std::max(worst, best);
  }
  CHECK(worst < 0.5);
  MESSAGE("round trip: worst distance " << worst << " px over " << pts.size() << " points");
}

TEST_CASE("real deep-events ground truth: per-frame peaks match the oracle and scikit-image's answer") {
  MICROCOUNT_REQUIRE_DATA();
  const auto gt = read_float16_stack(test::data_dir() / "formats" / "deep-events" / "event1_ground_truth.tif");
  REQUIRE(gt.shape() == std::array<std::size_t, 3>{5, 256, 256});
  post::peak_options o;
  o.min_distance = 3;
  o.threshold_abs = 10.0f;
  const auto got = post::find_peaks_per_frame(gt, o);
  std::vector<post::scored_point> want;
  for (std::size_t f = 0; f < 5; ++f) {
    const std::vector<float> plane(gt.begin() + static_cast<std::ptrdiff_t>(f * 65536), gt.begin() + static_cast<std::ptrdiff_t>((f + 1) * 65536));
    const auto p = brute_peaks(plane, 1, 256, 256, o, false, 0, static_cast<int>(f));
    want.insert(want.end(), p.begin(), p.end());
  }
  check_same(got, want);
  // skimage.feature.peak_local_max(frame, min_distance=3, threshold_abs=10) gives (row, col):
  // frame 0: (72, 222), (127, 128); frame 2: (128, 128); frame 4: (126, 129).
  auto has = [&](int f, double row, double col) {
    return std::any_of(got.begin(), got.end(), [&](const post::scored_point& p) {
      return p.point.frame == f && std::abs(p.point.y - row) <= 1.0 && std::abs(p.point.x - col) <= 1.0;
    });
  };
  CHECK(has(0, 72, 222));
  CHECK(has(0, 127, 128));
  CHECK(has(2, 128, 128));
  CHECK(has(4, 126, 129));
  o.exclude_border = 0;  // the default (d_t = 3 frames at each end) would leave no frame of 5
  const auto vol = post::find_peaks_3d(gt, o);
  CHECK(!vol.empty());
  check_same(vol, brute_peaks(std::vector<float>(gt.begin(), gt.end()), 5, 256, 256, o, true, 0, -1));
}
