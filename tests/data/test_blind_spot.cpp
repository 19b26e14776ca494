// Noise2Void blind-spot masking: box side and masked count against N2V's formulas, one pixel per box,
// replacement sources inside the shifted window and (without centre) never the pixel itself, uniformity of
// the source over the window (counted over many draws), and a real vgg-cells patch.
#include <cmath>
#include <map>
#include <set>
#include <utility>

#include "microcount/data/blind_spot.hpp"
#include "microcount/io/tiff.hpp"
#include "test_support.hpp"

using namespace microcount;

namespace {
xt::xtensor<float, 3> ramp(std::size_t c, std::size_t h, std::size_t w) {  // distinct value per pixel [C, H, W]
  xt::xtensor<float, 3> p = xt::xtensor<float, 3>::from_shape({c, h, w});
  for (std::size_t i = 0; i < p.size(); ++i) p.data()[i] = static_cast<float>(i);
  return p;
}
}  // namespace

TEST_CASE("blind spot: box side is N2V's round(sqrt(100 / percent))") {
  CHECK(data::stratified_box_side(0.198) == 22);  // sqrt(505.05) = 22.47
  CHECK(data::stratified_box_side(1.0) == 10);
  CHECK(data::stratified_box_side(100.0) == 1);
  CHECK(data::stratified_box_side(0.2) == 22);    // sqrt(500) = 22.36
  CHECK_THROWS_AS(data::stratified_box_side(0.0), error);
  CHECK_THROWS_AS(data::stratified_box_side(-1.0), error);
  CHECK_THROWS_AS(data::stratified_box_side(std::nan("")), error);
}

TEST_CASE("blind spot: one pixel per box, masked count and mask agree, values from the original") {
  rng r(7);
  const auto patch = ramp(2, 64, 64);  // [2, 64, 64]
  const data::blind_spot_options o;    // box 22: 3 × 3 boxes, the last row/column of boxes only 20 px inside
  std::size_t total = 0;
  const int trials = 400;
  for (int t = 0; t < trials; ++t) {
    const auto m = data::mask_blind_spots(patch, o, r);
    std::set<std::tuple<std::size_t, std::size_t, std::size_t>> boxes;
    for (const auto& s : m.spots) {
      REQUIRE(s.y < 64);
      REQUIRE(s.x < 64);
      CHECK(boxes.insert({s.channel, s.y / 22, s.x / 22}).second);  // at most one per box and channel
      CHECK(m.mask(s.channel, s.y, s.x) == 1.0f);
      CHECK(m.input(s.channel, s.y, s.x) == patch(s.channel, s.source_y, s.source_x));
    }
    // Every other pixel is untouched and unmasked.
    std::size_t masked = 0, changed = 0;
    for (std::size_t i = 0; i < patch.size(); ++i) {
      masked += m.mask.data()[i] > 0;
      changed += m.input.data()[i] != patch.data()[i];
    }
    CHECK(masked == m.spots.size());
    CHECK(changed == m.spots.size());  // without centre every masked pixel changes (all values distinct)
    total += m.spots.size();
  }
  // Expected per channel: 4 full boxes + 4 boxes with 20/22 of a side inside + 1 with (20/22)² = 4 + 80/11 + 400/484.
  const double expected = 2 * (4 + 4 * 20.0 / 22 + 400.0 / 484);
  const double mean = static_cast<double>(total) / trials;
  CHECK(mean == doctest::Approx(expected).epsilon(0.03));
}

TEST_CASE("blind spot: the source lies in the shifted window; uniform over it, with and without the centre") {
  const auto patch = ramp(1, 30, 30);  // [1, 30, 30]
  data::blind_spot_options o;
  o.percent = 100.0 / 900;  // box 30: one pixel per patch
  for (const auto choice : {data::replacement::uniform_without_centre, data::replacement::uniform_with_centre}) {
    o.choose = choice;
    rng r(11);
    std::map<std::pair<long, long>, int> interior;  // offsets of the source for pixels ≥ 5 from every border
    int interior_draws = 0, centre = 0, outside = 0;
    for (int t = 0; t < 60000; ++t) {
      const auto m = data::mask_blind_spots(patch, o, r);
      REQUIRE(m.spots.size() == 1);
      const auto& s = m.spots[0];
      // N2V's get_subpatch: start = clamp(i − 5, 0, n − 11).
      const std::size_t y0 = std::min<std::size_t>(s.y >= 5 ? s.y - 5 : 0, 19), x0 = std::min<std::size_t>(s.x >= 5 ? s.x - 5 : 0, 19);
      outside += !(s.source_y >= y0 && s.source_y < y0 + 11 && s.source_x >= x0 && s.source_x < x0 + 11);
      if (s.source_y == s.y && s.source_x == s.x) ++centre;
      if (s.y >= 5 && s.y < 25 && s.x >= 5 && s.x < 25) {
        ++interior_draws;
        ++interior[{static_cast<long>(s.source_y) - static_cast<long>(s.y), static_cast<long>(s.source_x) - static_cast<long>(s.x)}];
      }
    }
    CHECK(outside == 0);
    const bool with_centre = choice == data::replacement::uniform_with_centre;
    if (!with_centre) CHECK(centre == 0);
    else CHECK(centre > 0);
    // Interior pixels: every offset in [−5, 5]² (the centre only with it) equally likely. Pearson's χ²
    // with 119 or 120 degrees of freedom stays below 180 with probability > 0.999.
    const int cells = with_centre ? 121 : 120;
    CHECK(interior.size() == static_cast<std::size_t>(cells));
    const double e = static_cast<double>(interior_draws) / cells;
    double chi2 = 0;
    for (const auto& [offset, n] : interior) {
      CHECK(std::abs(offset.first) <= 5);
      CHECK(std::abs(offset.second) <= 5);
      chi2 += (n - e) * (n - e) / e;
    }
    CHECK(chi2 < 180);
  }
}

TEST_CASE("blind spot: tiny patches, seeds and bad options") {
  rng a(3), b(3);
  const auto p = ramp(1, 2, 2);  // [1, 2, 2]: the window is the whole patch
  data::blind_spot_options o;
  o.percent = 100;  // every pixel masked
  const auto m = data::mask_blind_spots(p, o, a);
  CHECK(m.spots.size() == 4);
  for (const auto& s : m.spots) CHECK(!(s.source_y == s.y && s.source_x == s.x));
  const auto n = data::mask_blind_spots(p, o, b);  // the same seed gives the same masks
  CHECK(m.input == n.input);
  CHECK_THROWS_AS(data::mask_blind_spots(ramp(1, 1, 8), o, a), error);
  o.radius = 0;
  CHECK_THROWS_AS(data::mask_blind_spots(p, o, a), error);
}

TEST_CASE("blind spot: a real vgg-cells patch") {
  MICROCOUNT_REQUIRE_DATA();
  const io::image im = io::read_tiff(test::data_dir() / "vgg-cells" / "image_001.tif");  // [1, 1, 256, 256]
  xt::xtensor<float, 3> patch = xt::xtensor<float, 3>::from_shape({1, 64, 64});  // [1, 64, 64] top-left crop
  for (std::size_t y = 0; y < 64; ++y)
    for (std::size_t x = 0; x < 64; ++x) patch(0, y, x) = im.pixels(0, 0, y + 100, x + 100);
  rng r(5);
  const auto m = data::mask_blind_spots(patch, {}, r);
  CHECK(m.spots.size() >= 4);
  CHECK(m.spots.size() <= 9);
  for (const auto& s : m.spots) {
    CHECK(std::max(std::abs(static_cast<long>(s.source_y) - static_cast<long>(s.y)),
                   std::abs(static_cast<long>(s.source_x) - static_cast<long>(s.x))) <= 10);
    CHECK(m.input(0, s.y, s.x) == patch(0, s.source_y, s.source_x));
  }
}
