#pragma once
// Pictures of Grad-CAM maps for people: a map in [0, 1] as a heat picture, or blended over the image.
//   auto picture = io::grey_to_rgb(image);                              // [H, W, 3] uint8
//   auto shown = explain::overlay(picture, explain::gradcam_for_class(net, x, head, c));
//   io::write_png(path, shown);
// The colour scale runs black → purple → red → orange → pale yellow (the stops of matplotlib's "inferno",
// interpolated linearly): monotone in lightness, so it reads in grey too, unlike the rainbow "jet" of the
// original paper.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <string>

#include <xtensor/xtensor.hpp>

#include "microcount/core/error.hpp"
#include "microcount/io/picture.hpp"

namespace microcount::explain {

// The colour of v in [0, 1] (clamped; NaN is black).
inline io::colour heat_colour(float v) {
  static constexpr std::array<std::array<double, 3>, 5> stops = {
      {{0, 0, 4}, {87, 16, 110}, {188, 55, 84}, {249, 142, 9}, {252, 255, 164}}};
  if (!(v > 0)) return {0, 0, 4};
  const double t = std::min(1.0, double(v)) * (stops.size() - 1);
  const std::size_t i = std::min<std::size_t>(static_cast<std::size_t>(t), stops.size() - 2);
  const double f = t - double(i);
  auto mix = [&](int ch) { return static_cast<std::uint8_t>(std::lround((1 - f) * stops[i][ch] + f * stops[i + 1][ch])); };
  return {mix(0), mix(1), mix(2)};
}

// [H, W] map in [0, 1] → [H, W, 3] heat picture.
inline xt::xtensor<std::uint8_t, 3> heat_picture(const xt::xtensor<float, 2>& map) {
  xt::xtensor<std::uint8_t, 3> out = xt::zeros<std::uint8_t>({map.shape(0), map.shape(1), std::size_t(3)});  // [H, W, 3]
  for (std::size_t y = 0; y < map.shape(0); ++y)
    for (std::size_t x = 0; x < map.shape(1); ++x) {
      const io::colour c = heat_colour(map(y, x));
      out(y, x, 0) = c.r, out(y, x, 1) = c.g, out(y, x, 2) = c.b;
    }
  return out;
}

// The picture with the heat colour blended in where the map is high: per pixel
// out = (1 − a)·picture + a·heat(m), a = opacity·m, so where the map is 0 the image shows unchanged.
inline xt::xtensor<std::uint8_t, 3> overlay(const xt::xtensor<std::uint8_t, 3>& picture, const xt::xtensor<float, 2>& map,
                                            double opacity = 0.6) {
  require(picture.shape(2) == 3 && picture.shape(0) == map.shape(0) && picture.shape(1) == map.shape(1), "gradcam overlay",
          "the picture [" + std::to_string(picture.shape(0)) + ", " + std::to_string(picture.shape(1)) + ", " +
              std::to_string(picture.shape(2)) + "] and the map [" + std::to_string(map.shape(0)) + ", " +
              std::to_string(map.shape(1)) + "] differ in size (or the picture is not RGB)");
  require(opacity >= 0 && opacity <= 1, "gradcam overlay", "opacity must be in [0, 1]");
  xt::xtensor<std::uint8_t, 3> out = picture;  // [H, W, 3]
  for (std::size_t y = 0; y < map.shape(0); ++y)
    for (std::size_t x = 0; x < map.shape(1); ++x) {
      const float m = std::isfinite(map(y, x)) ? std::clamp(map(y, x), 0.0f, 1.0f) : 0.0f;
      const double a = opacity * m;
      const io::colour c = heat_colour(m);
      const std::uint8_t heat[3] = {c.r, c.g, c.b};
      for (std::size_t ch = 0; ch < 3; ++ch)
        out(y, x, ch) = static_cast<std::uint8_t>(std::lround((1 - a) * picture(y, x, ch) + a * heat[ch]));
    }
  return out;
}

}  // namespace microcount::explain
