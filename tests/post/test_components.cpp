// Connected components against a breadth-first flood fill on random binary maps and volumes, and on
// the real deep-events ground truth.
#include <algorithm>
#include <array>
#include <cmath>
#include <deque>
#include <filesystem>
#include <vector>

#include <tiffio.h>

#include "microcount/core/error.hpp"
#include "microcount/core/rng.hpp"
#include "microcount/post/components.hpp"
#include "test_support.hpp"

using namespace microcount;

namespace {

// Flood fill from every unlabelled foreground voxel in raster order: labels numbered by first voxel.
std::vector<std::int32_t> flood_fill(const std::vector<std::uint8_t>& m, int T, int H, int W, int connectivity) {
  std::vector<std::int32_t> lab(m.size(), 0);
  std::int32_t next = 0;
  const bool full = connectivity == 8 || connectivity == 26;
  for (std::size_t s = 0; s < m.size(); ++s) {
    if (!m[s] || lab[s]) continue;
    lab[s] = ++next;
    std::deque<std::size_t> q{s};
    while (!q.empty()) {
      const std::size_t k = q.front();
      q.pop_front();
      const int t = static_cast<int>(k / (static_cast<std::size_t>(H) * W)), y = static_cast<int>(k / W % H), x = static_cast<int>(k % W);
      for (int a = -1; a <= 1; ++a)
        for (int b = -1; b <= 1; ++b)
          for (int c = -1; c <= 1; ++c) {
            const int steps = std::abs(a) + std::abs(b) + std::abs(c);
            if (steps == 0 || (!full && steps > 1)) continue;
            const int tt = t + a, yy = y + b, xx = x + c;
            if (tt < 0 || tt >= T || yy < 0 || yy >= H || xx < 0 || xx >= W) continue;
            const std::size_t j = (static_cast<std::size_t>(tt) * H + yy) * W + xx;
            if (m[j] && !lab[j]) {
              lab[j] = next;
              q.push_back(j);
            }
          }
    }
  }
  return lab;
}

template <std::size_t N>
void check_against_fill(const xt::xtensor<std::uint8_t, N>& mask, const xt::xtensor<float, N>& intensity, int connectivity) {
  const int T = N == 3 ? static_cast<int>(mask.shape()[0]) : 1;
  const int H = static_cast<int>(mask.shape()[N - 2]), W = static_cast<int>(mask.shape()[N - 1]);
  const std::vector<std::uint8_t> m(mask.begin(), mask.end());
  const auto want = flood_fill(m, T, H, W, connectivity);
  const auto got = post::connected_components(mask, intensity, connectivity);
  REQUIRE(std::equal(want.begin(), want.end(), got.labels.begin()));
  const auto n = static_cast<std::size_t>(*std::max_element(want.begin(), want.end()));
  REQUIRE(got.components.size() == n);
  // Statistics recomputed from the label image.
  for (std::size_t k = 0; k < n; ++k) {
    std::int64_t size = 0;
    std::array<double, N> sum{}, wsum{};
    double isum = 0;
    std::array<std::int64_t, N> lo, hi;
    lo.fill(1 << 30);
    hi.fill(-1);
    for (std::size_t i = 0; i < want.size(); ++i) {
      if (want[i] != static_cast<std::int32_t>(k + 1)) continue;
      const std::array<std::int64_t, 3> txy{static_cast<std::int64_t>(i / (static_cast<std::size_t>(H) * W)),
                                            static_cast<std::int64_t>(i / W % H), static_cast<std::int64_t>(i % W)};
      ++size;
      isum += intensity.data()[i];
      for (std::size_t a = 0; a < N; ++a) {
        const auto c = txy[3 - N + a];
        sum[a] += static_cast<double>(c);
        wsum[a] += static_cast<double>(c) * intensity.data()[i];
        lo[a] = std::min(lo[a], c);
        hi[a] = std::max(hi[a], c);
      }
    }
    const auto& c = got.components[k];
    CHECK(c.size == size);
    CHECK(c.intensity_sum == doctest::Approx(isum).epsilon(1e-9));
    for (std::size_t a = 0; a < N; ++a) {
      CHECK(c.centroid[a] == doctest::Approx(sum[a] / static_cast<double>(size)).epsilon(1e-12));
      CHECK(c.weighted_centroid[a] == doctest::Approx(wsum[a] / isum).epsilon(1e-9));
      CHECK(c.box_min[a] == lo[a]);
      CHECK(c.box_max[a] == hi[a]);
    }
  }
}

}  // namespace

TEST_CASE("2D components (4 and 8) equal a flood fill on random binary maps") {
  rng r(99);
  for (int trial = 0; trial < 30; ++trial) {
    const std::size_t h = 1 + r.below(40), w = 1 + r.below(50);
    const double density = r.uniform(0.1, 0.7);
    xt::xtensor<std::uint8_t, 2> m = xt::xtensor<std::uint8_t, 2>::from_shape({h, w});
    xt::xtensor<float, 2> v = xt::xtensor<float, 2>::from_shape({h, w});
    for (auto& x : m) x = r.uniform() < density ? 1 : 0;
    for (auto& x : v) x = static_cast<float>(r.uniform(0.5, 2.0));
    CAPTURE(trial);
    check_against_fill(m, v, 4);
    check_against_fill(m, v, 8);
  }
}

TEST_CASE("3D components (6 and 26) equal a flood fill on random binary volumes") {
  rng r(100);
  for (int trial = 0; trial < 20; ++trial) {
    const std::size_t t = 1 + r.below(10), h = 1 + r.below(20), w = 1 + r.below(25);
    const double density = r.uniform(0.05, 0.5);
    xt::xtensor<std::uint8_t, 3> m = xt::xtensor<std::uint8_t, 3>::from_shape({t, h, w});
    xt::xtensor<float, 3> v = xt::xtensor<float, 3>::from_shape({t, h, w});
    for (auto& x : m) x = r.uniform() < density ? 1 : 0;
    for (auto& x : v) x = static_cast<float>(r.uniform(0.5, 2.0));
    CAPTURE(trial);
    check_against_fill(m, v, 6);
    check_against_fill(m, v, 26);
  }
}

TEST_CASE("components: a foreground predicate picks one class; bad connectivity is refused") {
  xt::xtensor<int, 2> seg = {{0, 2, 2, 0, 1}, {0, 0, 2, 1, 1}, {2, 0, 0, 0, 0}};
  const auto twos = post::connected_components(seg, 8, [](int v) { return v == 2; });
  REQUIRE(twos.components.size() == 2);
  CHECK(twos.components[0].size == 3);
  CHECK(twos.components[0].centroid[0] == doctest::Approx(1.0 / 3));  // rows 0, 0, 1
  CHECK(twos.components[0].centroid[1] == doctest::Approx(5.0 / 3));  // columns 1, 2, 2
  CHECK(twos.labels(2, 0) == 2);
  CHECK(twos.labels(0, 4) == 0);
  CHECK_THROWS_WITH_AS(post::connected_components(seg, 6), doctest::Contains("4 or 8"), error);
  xt::xtensor<int, 3> vol = xt::zeros<int>({2, 2, 2});
  CHECK_THROWS_WITH_AS(post::connected_components(vol, 8), doctest::Contains("6 or 26"), error);
}

TEST_CASE("real deep-events ground truth: components of the events equal a flood fill") {
  MICROCOUNT_REQUIRE_DATA();
  const auto file = test::data_dir() / "formats" / "deep-events" / "event2_ground_truth.tif";
  TIFF* tif = TIFFOpen(file.c_str(), "r");
  REQUIRE(tif != nullptr);
  std::vector<std::uint8_t> fg;
  std::vector<float> raw_nonzero;
  std::size_t frames = 0;
  do {
    std::uint32_t w = 0, h = 0;
    TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &w);
    TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &h);
    REQUIRE((w == 256 && h == 256));
    std::vector<std::uint16_t> page(65536);
    std::size_t off = 0;
    for (tstrip_t s = 0; s < TIFFNumberOfStrips(tif); ++s)
      off += static_cast<std::size_t>(TIFFReadEncodedStrip(tif, s, reinterpret_cast<char*>(page.data()) + off, -1));
    REQUIRE(off == 2 * page.size());
    // float16 bit patterns: anything but ±0 is foreground (the ground truth is 0 outside the events).
    for (auto v : page) fg.push_back((v & 0x7fffu) != 0 ? 1 : 0);
    ++frames;
  } while (TIFFReadDirectory(tif));
  TIFFClose(tif);
  REQUIRE(frames == 7);
  xt::xtensor<std::uint8_t, 3> mask = xt::xtensor<std::uint8_t, 3>::from_shape({7, 256, 256});
  std::copy(fg.begin(), fg.end(), mask.begin());
  xt::xtensor<float, 3> ones = xt::ones<float>({7, 256, 256});
  check_against_fill(mask, ones, 26);
  check_against_fill(mask, ones, 6);
  const auto per_event = post::connected_components(mask, 26);
  CHECK(per_event.components.size() >= 1);
}
