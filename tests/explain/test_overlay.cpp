// Grad-CAM pictures: the colour scale's ends and monotone lightness, the blend (unchanged where the map is
// 0, the stated mix elsewhere), and a size mismatch as a readable error.
#include <doctest/doctest.h>

#include "microcount/explain/overlay.hpp"

using namespace microcount;

TEST_CASE("gradcam heat colours: dark at 0, pale yellow at 1, lightness rising, clamped, NaN black") {
  const auto lo = explain::heat_colour(0.0f), hi = explain::heat_colour(1.0f);
  CHECK((lo.r == 0 && lo.g == 0 && lo.b == 4));
  CHECK((hi.r == 252 && hi.g == 255 && hi.b == 164));
  auto lightness = [](io::colour c) { return 0.2126 * c.r + 0.7152 * c.g + 0.0722 * c.b; };
  double previous = -1;
  for (int i = 0; i <= 100; ++i) {
    const double l = lightness(explain::heat_colour(float(i) / 100));
    CHECK(l >= previous);
    previous = l;
  }
  const auto over = explain::heat_colour(7.0f), nan = explain::heat_colour(std::nanf(""));
  CHECK((over.r == hi.r && over.g == hi.g && over.b == hi.b));
  CHECK((nan.r == 0 && nan.g == 0 && nan.b == 4));
}

TEST_CASE("gradcam overlay: the image unchanged where the map is 0, the stated blend elsewhere") {
  xt::xtensor<std::uint8_t, 3> picture = xt::zeros<std::uint8_t>({std::size_t(2), std::size_t(3), std::size_t(3)});
  for (auto& v : picture) v = 100;
  xt::xtensor<float, 2> map = {{0.0f, 0.5f, 1.0f}, {0.0f, 0.0f, 0.25f}};
  auto out = explain::overlay(picture, map, 0.5);
  for (std::size_t ch = 0; ch < 3; ++ch) {
    CHECK(out(0, 0, ch) == 100);
    CHECK(out(1, 1, ch) == 100);
  }
  const auto c = explain::heat_colour(1.0f);
  CHECK(out(0, 2, 0) == std::lround(0.5 * 100 + 0.5 * c.r));
  CHECK(out(0, 2, 1) == std::lround(0.5 * 100 + 0.5 * c.g));
  const auto h = explain::heat_picture(map);
  CHECK(h.shape(0) == 2);
  CHECK(h.shape(2) == 3);
  CHECK(h(0, 2, 1) == c.g);
  xt::xtensor<float, 2> wrong = xt::zeros<float>({std::size_t(3), std::size_t(3)});
  CHECK_THROWS_WITH_AS(explain::overlay(picture, wrong), doctest::Contains("differ in size"), error);
}
