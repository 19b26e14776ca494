#pragma once
// Small drawing helpers for pictures people look at (training samples, detections over an image):
// a grey image stretched to 8-bit RGB between two percentiles, then circles, crosses and dots in
// a colour. Pictures are [H, W, 3] uint8, ready for write_png. x = column, y = row, as everywhere.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include <xtensor/xtensor.hpp>

namespace microcount::io {

struct colour {
  std::uint8_t r = 0, g = 0, b = 0;
};
namespace colours {
inline constexpr colour red{230, 25, 75}, green{60, 180, 75}, blue{0, 130, 200}, yellow{255, 225, 25},
    magenta{240, 50, 230}, cyan{70, 240, 240}, white{255, 255, 255};
}

// The value below which `percent` % of the finite values lie (nearest rank, 0 ≤ percent ≤ 100).
inline float percentile(const xt::xtensor<float, 2>& values, double percent) {
  std::vector<float> finite;
  finite.reserve(values.size());
  for (const float v : values)
    if (std::isfinite(v)) finite.push_back(v);
  if (finite.empty()) return 0.0f;
  const double p = std::clamp(percent, 0.0, 100.0) / 100.0;
  const auto k = static_cast<std::size_t>(std::llround(p * static_cast<double>(finite.size() - 1)));
  std::nth_element(finite.begin(), finite.begin() + static_cast<std::ptrdiff_t>(k), finite.end());
  return finite[k];
}

// [H, W] grey → [H, W, 3] where the low percentile maps to 0 and the high one to 255 (linear,
// clamped; non-finite values are black). Percentiles rather than min/max so a few hot pixels do
// not wash the picture out.
inline xt::xtensor<std::uint8_t, 3> grey_to_rgb(const xt::xtensor<float, 2>& grey, double low_percent = 0.5,
                                                double high_percent = 99.5) {
  const std::size_t H = grey.shape()[0], W = grey.shape()[1];
  const float lo = percentile(grey, low_percent), hi = percentile(grey, high_percent);
  const float scale = hi > lo ? 255.0f / (hi - lo) : 0.0f;
  auto out = xt::xtensor<std::uint8_t, 3>::from_shape({H, W, 3});  // [H, W, 3]
  for (std::size_t y = 0; y < H; ++y)
    for (std::size_t x = 0; x < W; ++x) {
      const float v = grey(y, x);
      float level = std::isfinite(v) ? (hi > lo ? (v - lo) * scale : (v >= hi ? 255.0f : 0.0f)) : 0.0f;
      const auto byte = static_cast<std::uint8_t>(std::lround(std::clamp(level, 0.0f, 255.0f)));
      out(y, x, 0) = out(y, x, 1) = out(y, x, 2) = byte;
    }
  return out;
}

// One frame of an image [F, C, H, W] for display: grey for 1 channel, colour for 3 or 4 (each channel
// stretched on its own percentiles, as microscopy viewers do), the first channel otherwise.
inline xt::xtensor<std::uint8_t, 3> image_to_rgb(const xt::xtensor<float, 4>& pixels, std::size_t frame = 0) {
  const std::size_t C = pixels.shape()[1], H = pixels.shape()[2], W = pixels.shape()[3];
  const auto plane = [&](std::size_t c) {
    xt::xtensor<float, 2> g = xt::xtensor<float, 2>::from_shape({H, W});  // [H, W]
    std::copy(&pixels(frame, c, 0, 0), &pixels(frame, c, 0, 0) + H * W, g.begin());
    return g;
  };
  if (C < 3) return grey_to_rgb(plane(0));
  auto out = xt::xtensor<std::uint8_t, 3>::from_shape({H, W, 3});  // [H, W, 3]
  for (std::size_t c = 0; c < 3; ++c) {
    const auto one = grey_to_rgb(plane(c));
    for (std::size_t i = 0; i < H * W; ++i) out.data()[i * 3 + c] = one.data()[i * 3];
  }
  return out;
}

// A distinct colour per class index (cycles after 6).
inline colour class_colour(int label) {
  static constexpr colour palette[] = {colours::yellow, colours::cyan, colours::magenta, colours::green, colours::red, colours::blue};
  return palette[static_cast<std::size_t>(label < 0 ? 0 : label) % 6];
}

inline void set_pixel(xt::xtensor<std::uint8_t, 3>& picture, long x, long y, colour c) {
  if (x < 0 || y < 0 || y >= static_cast<long>(picture.shape()[0]) || x >= static_cast<long>(picture.shape()[1])) return;
  picture(y, x, 0) = c.r;
  picture(y, x, 1) = c.g;
  picture(y, x, 2) = c.b;
}

// A ring of the given radius around (x, y): every pixel whose centre lies within thickness/2 of it.
inline void draw_circle(xt::xtensor<std::uint8_t, 3>& picture, double x, double y, double radius, colour c,
                        double thickness = 1.0) {
  const double inner = std::max(0.0, radius - thickness / 2), outer = radius + thickness / 2;
  for (long py = static_cast<long>(std::floor(y - outer)); py <= static_cast<long>(std::ceil(y + outer)); ++py)
    for (long px = static_cast<long>(std::floor(x - outer)); px <= static_cast<long>(std::ceil(x + outer)); ++px) {
      const double d = std::hypot(static_cast<double>(px) - x, static_cast<double>(py) - y);
      if (d >= inner && d <= outer) set_pixel(picture, px, py, c);
    }
}

// A filled disk of the given radius around (x, y).
inline void draw_dot(xt::xtensor<std::uint8_t, 3>& picture, double x, double y, double radius, colour c) {
  for (long py = static_cast<long>(std::floor(y - radius)); py <= static_cast<long>(std::ceil(y + radius)); ++py)
    for (long px = static_cast<long>(std::floor(x - radius)); px <= static_cast<long>(std::ceil(x + radius)); ++px)
      if (std::hypot(static_cast<double>(px) - x, static_cast<double>(py) - y) <= radius) set_pixel(picture, px, py, c);
}

// A "+" centred on the pixel nearest (x, y) with arms of `arm` pixels.
inline void draw_cross(xt::xtensor<std::uint8_t, 3>& picture, double x, double y, int arm, colour c) {
  const long cx = std::lround(x), cy = std::lround(y);
  for (long d = -arm; d <= arm; ++d) {
    set_pixel(picture, cx + d, cy, c);
    set_pixel(picture, cx, cy + d, c);
  }
}

}  // namespace microcount::io
