#pragma once
// Augmentations: each is a function on one sample and a view that applies it with random parameters.
//
//   dihedral(s, k) / d4(view)                        the 8 flips and quarter turns, image and points exactly
//   resize(s, h, w) / rescale(view, min, max)        bilinear resampling, points moved with the pixels
//   random_scaled_patches(view, h, w, min, max, n)   = random_patches(rescale(...)), resampling only the patch
//   adjust_intensity(s, b, c, g) / intensity(view, ranges)   brightness, contrast, gamma
//   add_noise(s, scale, sigma, r) / noise(view, scale, sigma) Poisson (shot) + Gaussian (read) noise
//   to_grey(s) / to_grey(view)                       mean of the channels
//
// The views draw their parameters from the rng given to get(), after their source has drawn its own.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include <xtensor/xtensor.hpp>

#include "microcount/core/error.hpp"
#include "microcount/core/limits.hpp"
#include "microcount/core/rng.hpp"
#include "microcount/data/dataset.hpp"

namespace microcount::data {

// ---- D4: flips and quarter turns ---------------------------------------------------------------
// k in 0..7: k % 4 counter-clockwise quarter turns (numpy's rot90: the top row becomes the left
// column), then, for k >= 4, a left-right flip (numpy's fliplr). k = 0 is the identity.

struct xy {
  double x, y;
};

// Where point (x, y) of a width × height image goes under transform k.
inline xy dihedral_point(int k, double x, double y, std::size_t width, std::size_t height) {
  double w = static_cast<double>(width), h = static_cast<double>(height);
  for (int t = 0; t < (k & 3); ++t) {  // one quarter turn: (x, y) -> (y, W - 1 - x), sides swap
    const double nx = y, ny = w - 1 - x;
    x = nx, y = ny;
    std::swap(w, h);
  }
  if (k >= 4) x = w - 1 - x;
  return {x, y};
}

// The transform that undoes k: quarter turns undo in reverse, and a flip after turns is its own inverse.
constexpr int inverse_dihedral(int k) { return k < 4 ? (4 - k) & 3 : k; }

inline sample dihedral(const sample& s, int k) {
  require(k >= 0 && k < 8, s.name, "dihedral transform " + std::to_string(k) + " is not in 0..7");
  const auto& in = s.image.pixels;  // [F, C, H, W]
  const std::size_t frames = in.shape()[0], channels = in.shape()[1], h = in.shape()[2], w = in.shape()[3];
  const bool turned = (k & 1) != 0;
  const std::size_t oh = turned ? w : h, ow = turned ? h : w;
  sample out{s.name, {}, {}, s.labels};
  out.image.source_dtype = s.image.source_dtype;
  out.image.calib = s.image.calib;
  if (turned) std::swap(out.image.calib.pixel_size_x, out.image.calib.pixel_size_y);
  out.image.pixels = xt::xtensor<float, 4>::from_shape({frames, channels, oh, ow});  // [F, C, H', W']
  // The source pixel of output pixel (r, c) is an integer affine function of (c, r): apply the
  // inverse transform to the output grid's corner and unit steps once.
  const int back = inverse_dihedral(k);
  const xy o = dihedral_point(back, 0, 0, ow, oh), ex = dihedral_point(back, 1, 0, ow, oh), ey = dihedral_point(back, 0, 1, ow, oh);
  const auto x0 = static_cast<std::int64_t>(o.x), y0 = static_cast<std::int64_t>(o.y);
  const auto dxc = static_cast<std::int64_t>(ex.x) - x0, dyc = static_cast<std::int64_t>(ex.y) - y0;  // per output column
  const auto dxr = static_cast<std::int64_t>(ey.x) - x0, dyr = static_cast<std::int64_t>(ey.y) - y0;  // per output row
  for (std::size_t f = 0; f < frames; ++f)
    for (std::size_t ch = 0; ch < channels; ++ch) {
      const float* plane = &in(f, ch, 0, 0);  // [H, W]
      float* dst = &out.image.pixels(f, ch, 0, 0);  // [H', W']
      for (std::size_t r = 0; r < oh; ++r) {
        std::int64_t sx = x0 + dxr * static_cast<std::int64_t>(r), sy = y0 + dyr * static_cast<std::int64_t>(r);
        for (std::size_t c = 0; c < ow; ++c, sx += dxc, sy += dyc)
          dst[r * ow + c] = plane[static_cast<std::size_t>(sy) * w + static_cast<std::size_t>(sx)];
      }
    }
  out.points = s.points;
  for (auto& p : out.points) {
    const xy q = dihedral_point(k, p.x, p.y, w, h);
    p.x = q.x, p.y = q.y;
  }
  return out;
}

// A uniformly random one of the 8 transforms per sample.
template <sample_view V>
auto d4(V source) {
  return transform(std::move(source), [](sample s, rng& r) { return dihedral(s, static_cast<int>(r.below(8))); });
}

// ---- rescale -----------------------------------------------------------------------------------

namespace detail {

// The window rows [top, top + height) × columns [left, left + width) of `s` resized to total_h × total_w
// (the bilinear map of resize()); window pixels outside the resized image get `fill`. With crop_points
// the points are kept and moved as crop() does after resize(); without, all points are only rescaled.
inline sample resample_window(const sample& s, std::size_t total_h, std::size_t total_w, std::int64_t top,
                              std::int64_t left, std::size_t height, std::size_t width, float fill, bool crop_points) {
  const auto side_ok = [](std::size_t n) { return n > 0 && n <= limits().max_image_side; };
  require(side_ok(total_h) && side_ok(total_w) && side_ok(height) && side_ok(width), s.name,
          "resize to " + std::to_string(total_w) + "x" + std::to_string(total_h) + " pixels (window " +
              std::to_string(width) + "x" + std::to_string(height) + ")");
  const auto& in = s.image.pixels;  // [F, C, H, W]
  const std::size_t frames = in.shape()[0], channels = in.shape()[1], h = in.shape()[2], w = in.shape()[3];
  require(h > 0 && w > 0, s.name, "empty image");
  require(static_cast<double>(frames * channels) * static_cast<double>(height) * static_cast<double>(width) * 4 <=
              static_cast<double>(limits().max_total_bytes), s.name, "resized image over the memory limit");
  const double sy = static_cast<double>(total_h) / static_cast<double>(h);
  const double sx = static_cast<double>(total_w) / static_cast<double>(w);
  struct tap {
    std::size_t lo, hi;
    float t;      // weight of hi
    bool inside;  // the window pixel lies on the resized image
  };
  // Taps of window pixels first .. first + n - 1 of a side resized from in_n to out_n.
  const auto taps = [](std::int64_t first, std::size_t n, std::size_t out_n, std::size_t in_n, double scale) {
    std::vector<tap> out(n);
    for (std::size_t j = 0; j < n; ++j) {
      const std::int64_t i = first + static_cast<std::int64_t>(j);
      if (i < 0 || i >= static_cast<std::int64_t>(out_n)) {
        out[j] = {0, 0, 0.0f, false};
        continue;
      }
      const double at = std::clamp((static_cast<double>(i) + 0.5) / scale - 0.5, 0.0, static_cast<double>(in_n - 1));
      const auto lo = static_cast<std::size_t>(at);
      out[j] = {lo, std::min(lo + 1, in_n - 1), static_cast<float>(at - static_cast<double>(lo)), true};
    }
    return out;
  };
  const std::vector<tap> rows = taps(top, height, total_h, h, sy), cols = taps(left, width, total_w, w, sx);
  sample out{s.name, {}, {}, s.labels};
  out.image.source_dtype = s.image.source_dtype;
  out.image.calib = s.image.calib;
  if (out.image.calib.pixel_size_x) *out.image.calib.pixel_size_x /= sx;
  if (out.image.calib.pixel_size_y) *out.image.calib.pixel_size_y /= sy;
  out.image.pixels = xt::xtensor<float, 4>::from_shape({frames, channels, height, width});  // [F, C, height, width]
  std::vector<float> row(width), row_hi(width);  // input rows resampled along x
  for (std::size_t f = 0; f < frames; ++f)
    for (std::size_t ch = 0; ch < channels; ++ch) {
      const float* plane = &in(f, ch, 0, 0);  // [H, W]
      float* dst = &out.image.pixels(f, ch, 0, 0);  // [height, width]
      const auto along_x = [&](std::size_t r, std::vector<float>& into) {
        const float* src = plane + r * w;
        for (std::size_t c = 0; c < width; ++c) into[c] = src[cols[c].lo] + cols[c].t * (src[cols[c].hi] - src[cols[c].lo]);
      };
      for (std::size_t r = 0; r < height; ++r) {
        float* line = dst + r * width;
        if (!rows[r].inside) {
          std::fill(line, line + width, fill);
          continue;
        }
        along_x(rows[r].lo, row);
        along_x(rows[r].hi, row_hi);
        const float t = rows[r].t;
        for (std::size_t c = 0; c < width; ++c) line[c] = cols[c].inside ? row[c] + t * (row_hi[c] - row[c]) : fill;
      }
    }
  const double x0 = static_cast<double>(left) - 0.5, x1 = x0 + static_cast<double>(width);
  const double y0 = static_cast<double>(top) - 0.5, y1 = y0 + static_cast<double>(height);
  for (io::point p : s.points) {
    p.x = (p.x + 0.5) * sx - 0.5;
    p.y = (p.y + 0.5) * sy - 0.5;
    if (crop_points && !(p.x >= x0 && p.x < x1 && p.y >= y0 && p.y < y1)) continue;
    p.x -= static_cast<double>(left);
    p.y -= static_cast<double>(top);
    out.points.push_back(p);
  }
  return out;
}

}  // namespace detail

// Bilinear resampling to height × width with half-pixel centres (PyTorch's align_corners=False,
// OpenCV's INTER_LINEAR): output pixel c samples the input at (c + 0.5) / s - 0.5, clamped to the
// image (edge pixels repeat). No low-pass filter before shrinking, as those libraries' defaults.
// Points move with the same map: x' = (x + 0.5) · s - 0.5, s = width / W (and height / H for y).
inline sample resize(const sample& s, std::size_t height, std::size_t width) {
  return detail::resample_window(s, height, width, 0, 0, height, width, 0.0f, false);
}

// Resamples every sample by a factor drawn uniformly from [min_scale, max_scale] (the same factor for
// both axes; sides round to whole pixels, at least 1, and the points follow the rounded sides).
template <sample_view V>
auto rescale(V source, double min_scale, double max_scale) {
  require(min_scale > 0 && min_scale <= max_scale && max_scale <= 64, "rescale",
          "needs 0 < min_scale <= max_scale <= 64");
  return transform(std::move(source), [min_scale, max_scale](sample s, rng& r) {
    const double f = r.uniform(min_scale, max_scale);
    const auto side = [f](std::size_t n) {
      return std::max<std::size_t>(1, static_cast<std::size_t>(std::llround(static_cast<double>(n) * f)));
    };
    return resize(s, side(s.height()), side(s.width()));
  });
}

// random_patches(rescale(source, min_scale, max_scale), height, width, per_image, fill), sample for
// sample and bit for bit (the same random draws in the same order), but resampling only the patch
// instead of the whole rescaled image.
template <sample_view V>
class scaled_patches_view {
 public:
  scaled_patches_view(V source, std::size_t height, std::size_t width, double min_scale, double max_scale,
                      std::size_t per_image, float fill)
      : source_(std::move(source)), height_(height), width_(width), min_(min_scale), max_(max_scale),
        per_image_(per_image), fill_(fill) {
    require(height > 0 && width > 0 && per_image > 0, "random_scaled_patches", "patch size and per_image must be > 0");
    require(min_scale > 0 && min_scale <= max_scale && max_scale <= 64, "random_scaled_patches",
            "needs 0 < min_scale <= max_scale <= 64");
  }
  [[nodiscard]] std::size_t size() const { return source_.size() * per_image_; }
  [[nodiscard]] sample get(std::size_t i, rng& r) const {
    const sample s = source_.get(i / per_image_, r);
    const double f = r.uniform(min_, max_);
    const auto side = [f](std::size_t n) {
      return std::max<std::size_t>(1, static_cast<std::size_t>(std::llround(static_cast<double>(n) * f)));
    };
    const std::size_t total_h = side(s.height()), total_w = side(s.width());
    const auto corner = [&](std::size_t image_side, std::size_t patch_side) {  // as patches_view draws it
      const auto slack = static_cast<std::int64_t>(image_side) - static_cast<std::int64_t>(patch_side);
      const auto pick = static_cast<std::int64_t>(r.below(static_cast<std::uint64_t>(slack >= 0 ? slack : -slack) + 1));
      return slack >= 0 ? pick : -pick;
    };
    const std::int64_t top = corner(total_h, height_);
    const std::int64_t left = corner(total_w, width_);
    return detail::resample_window(s, total_h, total_w, top, left, height_, width_, fill_, true);
  }

 private:
  V source_;
  std::size_t height_, width_;
  double min_, max_;
  std::size_t per_image_;
  float fill_;
};

template <sample_view V>
scaled_patches_view<V> random_scaled_patches(V source, std::size_t height, std::size_t width, double min_scale,
                                             double max_scale, std::size_t per_image = 1, float fill = 0.0f) {
  return scaled_patches_view<V>(std::move(source), height, width, min_scale, max_scale, per_image, fill);
}

// ---- intensity ---------------------------------------------------------------------------------

struct value_range {
  double lo, hi;
};

// Ranges the parameters are drawn from (uniformly, in the order brightness, contrast, gamma).
// The defaults change nothing.
struct intensity_options {
  value_range brightness{0, 0};  // shift, as a fraction of the sample's value range (max - min)
  value_range contrast{1, 1};    // factor on the distance to the sample's mean
  value_range gamma{1, 1};       // exponent on the values mapped to [0, 1] between min and max
};

// In this order, with min, max and mean over all pixels of the sample (all channels alike, so colours
// keep their balance):  gamma:      v = min + (max - min) · ((v - min) / (max - min))^gamma
//                       contrast:   v = m + contrast · (v - m),  m = the mean after gamma
//                       brightness: v = v + brightness · (max - min)
// A constant image is left as it is by gamma and contrast.
inline void adjust_intensity(sample& s, double brightness, double contrast, double gamma) {
  auto& px = s.image.pixels;  // [F, C, H, W]
  if (px.size() == 0) return;
  const auto [lo_it, hi_it] = std::minmax_element(px.begin(), px.end());
  const double lo = *lo_it, span = static_cast<double>(*hi_it) - lo;
  if (gamma != 1 && span > 0) {  // in float: one powf per pixel is most of this view's cost
    const float low = static_cast<float>(lo), range = static_cast<float>(span), inv = 1.0f / range;
    const float g = static_cast<float>(gamma);
    for (auto& v : px) v = low + range * std::pow(std::max(0.0f, (v - low) * inv), g);
  }
  if (contrast != 1) {
    double sum = 0;
    for (const float v : px) sum += v;
    const double mean = sum / static_cast<double>(px.size());
    for (auto& v : px) v = static_cast<float>(mean + contrast * (v - mean));
  }
  if (brightness != 0)
    for (auto& v : px) v = static_cast<float>(v + brightness * span);
}

template <sample_view V>
auto intensity(V source, intensity_options o) {
  require(o.brightness.lo <= o.brightness.hi && o.contrast.lo <= o.contrast.hi && o.gamma.lo <= o.gamma.hi, "intensity",
          "every range needs lo <= hi");
  require(o.contrast.lo >= 0 && o.gamma.lo > 0, "intensity", "contrast must be >= 0 and gamma > 0");
  return transform(std::move(source), [o](sample s, rng& r) {
    const double b = r.uniform(o.brightness.lo, o.brightness.hi);
    const double c = r.uniform(o.contrast.lo, o.contrast.hi);
    const double g = r.uniform(o.gamma.lo, o.gamma.hi);
    adjust_intensity(s, b, c, g);
    return s;
  });
}

// ---- noise -------------------------------------------------------------------------------------

namespace detail {

// log(k!) exactly from a table below 16, else Stirling's series (error < 1e-13 there). std::lgamma is
// avoided: glibc's writes the global signgam, a data race when views run on several threads.
inline double log_factorial(std::uint64_t k) {
  static constexpr std::array<double, 16> table = [] {
    std::array<double, 16> t{};
    double f = 1;
    for (std::size_t i = 0; i < 16; ++i) {
      if (i > 1) f *= static_cast<double>(i);
      t[i] = f;  // k!, logged below (std::log is not constexpr)
    }
    return t;
  }();
  if (k < 16) return std::log(table[k]);
  const double x = static_cast<double>(k), inv = 1.0 / x, inv2 = inv * inv;
  return (x + 0.5) * std::log(x) - x + 0.91893853320467274178 + inv * (1.0 / 12 - inv2 * (1.0 / 360 - inv2 / 1260));
}

// A Poisson draw of mean `mean`: Knuth's product of uniforms below 10 (rng::poisson), Hörmann's
// transformed rejection with squeeze (PTRS, 1993) from 10 on: exact, and O(1) draws whatever the mean.
inline std::uint64_t poisson(double mean, rng& r) {
  if (mean < 10) return r.poisson(mean);
  const double root = std::sqrt(mean), log_mean = std::log(mean);
  const double b = 0.931 + 2.53 * root, a = -0.059 + 0.02483 * b;
  const double inv_alpha = 1.1239 + 1.1328 / (b - 3.4), v_r = 0.9277 - 3.6224 / (b - 2);
  for (;;) {
    const double u = r.uniform() - 0.5, v = r.uniform();
    const double us = 0.5 - std::abs(u);
    const double k = std::floor((2 * a / us + b) * u + mean + 0.43);
    if (us >= 0.07 && v <= v_r) return static_cast<std::uint64_t>(k);
    if (k < 0 || (us < 0.013 && v > us)) continue;
    if (std::log(v * inv_alpha / (a / (us * us) + b)) <= -mean + k * log_mean - log_factorial(static_cast<std::uint64_t>(k)))
      return static_cast<std::uint64_t>(k);
  }
}

}  // namespace detail

// Camera noise on the sample's own values: with poisson_scale > 0 a value v is taken as
// v · poisson_scale photons and replaced by Poisson(max(v, 0) · poisson_scale) / poisson_scale (shot
// noise: variance v / poisson_scale); then Gaussian read noise of standard deviation gaussian_sigma is
// added. Pixels are drawn in memory order.
inline void add_noise(sample& s, double poisson_scale, double gaussian_sigma, rng& r) {
  require(poisson_scale >= 0 && gaussian_sigma >= 0 && std::isfinite(poisson_scale) && std::isfinite(gaussian_sigma),
          s.name, "noise needs poisson_scale >= 0 and gaussian_sigma >= 0");
  auto& px = s.image.pixels;  // [F, C, H, W]
  if (poisson_scale > 0)
    for (auto& v : px)
      v = static_cast<float>(static_cast<double>(detail::poisson(std::max(0.0, static_cast<double>(v)) * poisson_scale, r)) /
                             poisson_scale);
  if (gaussian_sigma > 0)
    for (auto& v : px) v = static_cast<float>(v + gaussian_sigma * r.normal());
}

template <sample_view V>
auto noise(V source, double poisson_scale, double gaussian_sigma) {
  require(poisson_scale >= 0 && gaussian_sigma >= 0, "noise", "needs poisson_scale >= 0 and gaussian_sigma >= 0");
  return transform(std::move(source), [poisson_scale, gaussian_sigma](sample s, rng& r) {
    add_noise(s, poisson_scale, gaussian_sigma, r);
    return s;
  });
}

// ---- channels ----------------------------------------------------------------------------------

// [F, C, H, W] -> [F, 1, H, W], the mean of the channels (what the PyTorch yardstick feeds its network).
inline sample to_grey(const sample& s) {
  const auto& in = s.image.pixels;  // [F, C, H, W]
  const std::size_t frames = in.shape()[0], channels = in.shape()[1], h = in.shape()[2], w = in.shape()[3];
  sample out{s.name, {}, s.points, s.labels};
  out.image.source_dtype = s.image.source_dtype;
  out.image.calib = s.image.calib;
  out.image.pixels = xt::xtensor<float, 4>::from_shape({frames, 1, h, w});  // [F, 1, H, W]
  const std::size_t plane = h * w;
  for (std::size_t f = 0; f < frames; ++f) {
    float* dst = &out.image.pixels(f, 0, 0, 0);
    std::fill(dst, dst + plane, 0.0f);
    for (std::size_t c = 0; c < channels; ++c) {
      const float* src = &in(f, c, 0, 0);
      for (std::size_t i = 0; i < plane; ++i) dst[i] += src[i];
    }
    const float inv = channels ? 1.0f / static_cast<float>(channels) : 0.0f;
    for (std::size_t i = 0; i < plane; ++i) dst[i] *= inv;
  }
  return out;
}

template <sample_view V>
auto to_grey(V source) {
  return transform(std::move(source), [](sample s, rng&) { return to_grey(s); });
}

}  // namespace microcount::data
