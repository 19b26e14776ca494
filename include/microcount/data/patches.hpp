#pragma once
// Crops that keep their points.
//
//   crop(s, top, left, height, width, fill)   the window rows [top, top+height), columns [left, left+width)
//   random_patches(view, height, width, per_image)
//
// A point belongs to the pixel whose square [c - 0.5, c + 0.5) × [r - 0.5, r + 0.5) holds it, so a
// crop keeps the points with left - 0.5 <= x < left + width - 0.5 (same for y) and moves them by
// (-left, -top). Half-open windows: tiling an image with crops keeps every point exactly once.
// The window may reach outside the image; pixels there get `fill`.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <utility>

#include <xtensor/xtensor.hpp>

#include "microcount/core/error.hpp"
#include "microcount/core/limits.hpp"
#include "microcount/core/rng.hpp"
#include "microcount/data/dataset.hpp"

namespace microcount::data {

inline sample crop(const sample& s, std::int64_t top, std::int64_t left, std::size_t height, std::size_t width,
                   float fill = 0.0f) {
  require(height > 0 && width > 0 && height <= limits().max_image_side && width <= limits().max_image_side, s.name,
          "crop of " + std::to_string(width) + "x" + std::to_string(height) + " pixels");
  const auto& in = s.image.pixels;  // [F, C, H, W]
  const std::size_t frames = in.shape()[0], channels = in.shape()[1];
  require(static_cast<double>(frames * channels) * static_cast<double>(height) * static_cast<double>(width) * 4 <=
              static_cast<double>(limits().max_total_bytes),
          s.name, "crop over the memory limit (limits().max_total_bytes)");
  const auto h = static_cast<std::int64_t>(in.shape()[2]), w = static_cast<std::int64_t>(in.shape()[3]);
  sample out{s.name, {}, {}, s.labels};
  out.image.source_dtype = s.image.source_dtype;
  out.image.calib = s.image.calib;
  out.image.pixels = xt::xtensor<float, 4>::from_shape({frames, channels, height, width});  // [F, C, h, w]
  out.image.pixels.fill(fill);
  // The rows and columns of the window that lie inside the image.
  const std::int64_t r0 = std::max<std::int64_t>(0, -top), r1 = std::min<std::int64_t>(height, h - top);
  const std::int64_t c0 = std::max<std::int64_t>(0, -left), c1 = std::min<std::int64_t>(width, w - left);
  if (r0 < r1 && c0 < c1)
    for (std::size_t f = 0; f < frames; ++f)
      for (std::size_t c = 0; c < channels; ++c)
        for (std::int64_t r = r0; r < r1; ++r) {
          const float* src = &in(f, c, static_cast<std::size_t>(r + top), static_cast<std::size_t>(left + c0));
          std::copy(src, src + (c1 - c0), &out.image.pixels(f, c, static_cast<std::size_t>(r), static_cast<std::size_t>(c0)));
        }
  const double x0 = static_cast<double>(left) - 0.5, x1 = x0 + static_cast<double>(width);
  const double y0 = static_cast<double>(top) - 0.5, y1 = y0 + static_cast<double>(height);
  for (const auto& p : s.points)
    if (p.x >= x0 && p.x < x1 && p.y >= y0 && p.y < y1) {
      io::point q = p;
      q.x -= static_cast<double>(left);
      q.y -= static_cast<double>(top);
      out.points.push_back(q);
    }
  return out;
}

// per_image random patches of height × width from every sample of `source`: sample i is a patch of
// source sample i / per_image, its top-left corner uniform over the positions that keep the patch
// inside the image. Along a side where the image is smaller than the patch, the image is placed at a
// uniform offset inside the patch and the rest is `fill`.
template <sample_view V>
class patches_view {
 public:
  patches_view(V source, std::size_t height, std::size_t width, std::size_t per_image, float fill)
      : source_(std::move(source)), height_(height), width_(width), per_image_(per_image), fill_(fill) {
    require(height > 0 && width > 0 && per_image > 0, "random_patches", "patch size and per_image must be > 0");
  }
  [[nodiscard]] std::size_t size() const { return source_.size() * per_image_; }
  [[nodiscard]] sample get(std::size_t i, rng& r) const {
    sample whole = source_.get(i / per_image_, r);
    const auto corner = [&](std::size_t image_side, std::size_t patch_side) {
      const auto slack = static_cast<std::int64_t>(image_side) - static_cast<std::int64_t>(patch_side);
      const auto choices = static_cast<std::uint64_t>(slack >= 0 ? slack : -slack) + 1;
      const auto pick = static_cast<std::int64_t>(r.below(choices));
      return slack >= 0 ? pick : -pick;  // a negative corner places the image inside the patch
    };
    const std::int64_t top = corner(whole.height(), height_);
    const std::int64_t left = corner(whole.width(), width_);
    return crop(whole, top, left, height_, width_, fill_);
  }

 private:
  V source_;
  std::size_t height_, width_, per_image_;
  float fill_;
};

template <sample_view V>
patches_view<V> random_patches(V source, std::size_t height, std::size_t width, std::size_t per_image = 1,
                               float fill = 0.0f) {
  return patches_view<V>(std::move(source), height, width, per_image, fill);
}

}  // namespace microcount::data
