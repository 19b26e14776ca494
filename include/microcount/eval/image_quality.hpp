#pragma once
// Full-reference image quality: how close a (denoised) image is to the clean one.
//
//   double p = eval::psnr(clean, denoised, range);   // dB; +inf for identical images
//   double s = eval::ssim(clean, denoised, range);   // mean SSIM in [−1, 1]; 1 for identical images
//
// PSNR = 10·log10(range² / MSE). SSIM as Wang, Bovik, Sheikh, Simoncelli (IEEE TIP 2004): at every
// position where the whole 11 × 11 Gaussian window (σ = 1.5, weights normalised to sum 1) fits inside the
// image ("valid" filtering, as the authors' ssim_index.m), with weighted local means μ, variances σ² and
// covariance σ_xy (no N/(N−1) correction, as the paper),
//   SSIM = (2 μx μy + C1)(2 σxy + C2) / ((μx² + μy² + C1)(σx² + σy² + C2)),  C1 = (0.01 L)², C2 = (0.03 L)²,
// averaged over the positions. L = `range`, the data range (e.g. 255 for 8-bit images; for float images
// the clean image's max − min: data_range_of). scikit-image's structural_similarity(gaussian_weights=True,
// sigma=1.5, use_sample_covariance=False, data_range=L) gives the same number up to its border handling.
// Planes are [H, W]; images [C, H, W] average over channels.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <limits>
#include <string>
#include <vector>

#include <xtensor/xtensor.hpp>

#include "microcount/core/error.hpp"

namespace microcount::eval {

struct ssim_options {
  int window = 11;       // Gaussian window side (odd)
  double sigma = 1.5;    // Gaussian window standard deviation, pixels
  double k1 = 0.01, k2 = 0.03;
};

namespace quality_detail {
inline void require_same(const std::vector<std::size_t>& a, const std::vector<std::size_t>& b, const char* who) {
  if (a != b) {
    std::string s;
    for (auto v : a) s += std::to_string(v) + " ";
    s += "vs ";
    for (auto v : b) s += std::to_string(v) + " ";
    throw error(who, "images differ in shape: " + s);
  }
}
template <class E>
std::vector<std::size_t> shape_of(const E& e) {
  return {e.shape().begin(), e.shape().end()};
}
}  // namespace quality_detail

// max − min of the finite values of `reference` (1 when the image is constant or empty).
template <class E>
double data_range_of(const E& reference) {
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (const auto v : reference)
    if (std::isfinite(v)) {
      lo = std::min<double>(lo, v);
      hi = std::max<double>(hi, v);
    }
  return hi > lo ? hi - lo : 1.0;
}

// Mean squared difference (double accumulation).
template <class E>
double mean_squared_error(const E& reference, const E& test) {
  quality_detail::require_same(quality_detail::shape_of(reference), quality_detail::shape_of(test), "mse");
  require(reference.size() > 0, "mse", "empty images");
  double s = 0;
  auto t = test.begin();
  for (auto r = reference.begin(); r != reference.end(); ++r, ++t) {
    const double d = static_cast<double>(*r) - static_cast<double>(*t);
    s += d * d;
  }
  return s / static_cast<double>(reference.size());
}

// Peak signal-to-noise ratio in dB for the data range `range` (> 0); +inf when the images are equal.
template <class E>
double psnr(const E& reference, const E& test, double range) {
  require(std::isfinite(range) && range > 0, "psnr", "data range must be positive, got " + std::to_string(range));
  const double mse = mean_squared_error(reference, test);
  if (mse == 0) return std::numeric_limits<double>::infinity();
  return 10.0 * std::log10(range * range / mse);
}

// The normalised 1D Gaussian of the window (the 2D window is its outer product).
inline std::vector<double> gaussian_window(int side, double sigma) {
  require(side >= 1 && side % 2 == 1 && sigma > 0, "ssim", "window side must be odd and sigma positive");
  std::vector<double> g(static_cast<std::size_t>(side));
  const int half = side / 2;
  double total = 0;
  for (int i = 0; i < side; ++i) total += g[static_cast<std::size_t>(i)] = std::exp(-0.5 * (i - half) * (i - half) / (sigma * sigma));
  for (auto& v : g) v /= total;
  return g;
}

// Mean SSIM of two planes [H, W]; both sides must be at least the window side.
inline double ssim(const xt::xtensor<float, 2>& reference, const xt::xtensor<float, 2>& test, double range,
                   const ssim_options& o = {}) {
  quality_detail::require_same(quality_detail::shape_of(reference), quality_detail::shape_of(test), "ssim");
  require(std::isfinite(range) && range > 0, "ssim", "data range must be positive, got " + std::to_string(range));
  const auto h = reference.shape()[0], w = reference.shape()[1];
  const auto side = static_cast<std::size_t>(o.window);
  require(h >= side && w >= side, "ssim",
          "image " + std::to_string(h) + "×" + std::to_string(w) + " is smaller than the " + std::to_string(side) + "-pixel window");
  const auto g = gaussian_window(o.window, o.sigma);
  const std::size_t vh = h - side + 1, vw = w - side + 1;  // valid positions
  // Five filtered maps by separable filtering: rows first ([H, vw]), then columns ([vh, vw]).
  std::array<std::vector<double>, 5> rows;  // x, y, x², y², xy, each [H, vw]
  for (auto& r : rows) r.assign(h * vw, 0.0);
  for (std::size_t y = 0; y < h; ++y)
    for (std::size_t x = 0; x < vw; ++x) {
      std::array<double, 5> s{};
      for (std::size_t k = 0; k < side; ++k) {
        const double a = reference(y, x + k), b = test(y, x + k), wk = g[k];
        s[0] += wk * a, s[1] += wk * b, s[2] += wk * a * a, s[3] += wk * b * b, s[4] += wk * a * b;
      }
      for (int i = 0; i < 5; ++i) rows[static_cast<std::size_t>(i)][y * vw + x] = s[static_cast<std::size_t>(i)];
    }
  const double c1 = (o.k1 * range) * (o.k1 * range), c2 = (o.k2 * range) * (o.k2 * range);
  double total = 0;
  for (std::size_t y = 0; y < vh; ++y)
    for (std::size_t x = 0; x < vw; ++x) {
      std::array<double, 5> s{};
      for (std::size_t k = 0; k < side; ++k)
        for (int i = 0; i < 5; ++i) s[static_cast<std::size_t>(i)] += g[k] * rows[static_cast<std::size_t>(i)][(y + k) * vw + x];
      const double mx = s[0], my = s[1];
      const double vx = s[2] - mx * mx, vy = s[3] - my * my, cxy = s[4] - mx * my;
      total += (2 * mx * my + c1) * (2 * cxy + c2) / ((mx * mx + my * my + c1) * (vx + vy + c2));
    }
  return total / static_cast<double>(vh * vw);
}

// Mean SSIM over the channels of [C, H, W] images.
inline double ssim(const xt::xtensor<float, 3>& reference, const xt::xtensor<float, 3>& test, double range,
                   const ssim_options& o = {}) {
  quality_detail::require_same(quality_detail::shape_of(reference), quality_detail::shape_of(test), "ssim");
  const auto c = reference.shape()[0], h = reference.shape()[1], w = reference.shape()[2];
  require(c >= 1, "ssim", "no channels");
  double total = 0;
  for (std::size_t k = 0; k < c; ++k) {
    xt::xtensor<float, 2> a = xt::xtensor<float, 2>::from_shape({h, w}), b = xt::xtensor<float, 2>::from_shape({h, w});  // [H, W]
    std::copy(reference.data() + k * h * w, reference.data() + (k + 1) * h * w, a.data());
    std::copy(test.data() + k * h * w, test.data() + (k + 1) * h * w, b.data());
    total += ssim(a, b, range, o);
  }
  return total / static_cast<double>(c);
}

}  // namespace microcount::eval
