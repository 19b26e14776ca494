// PSNR and SSIM against closed forms (constant images, identical images), a brute-force 2D-window SSIM
// written from the paper's definition, scikit-image's numbers for two fixed images, and real vgg-cells
// images with added noise.
#include <cmath>
#include <limits>

#include "microcount/core/rng.hpp"
#include "microcount/eval/image_quality.hpp"
#include "microcount/io/tiff.hpp"
#include "test_support.hpp"

using namespace microcount;

namespace {
using plane = xt::xtensor<float, 2>;

plane filled(std::size_t h, std::size_t w, float v) {
  plane p = plane::from_shape({h, w});  // [h, w]
  p.fill(v);
  return p;
}

// The two fixed test images (also given to scikit-image, see below): [20, 23].
plane pattern_x() {
  plane p = plane::from_shape({20, 23});
  for (std::size_t i = 0; i < 20; ++i)
    for (std::size_t j = 0; j < 23; ++j) p(i, j) = static_cast<float>((i * 7 + j * 13) % 17 * 10);
  return p;
}
plane pattern_y() {
  plane p = plane::from_shape({20, 23});
  for (std::size_t i = 0; i < 20; ++i)
    for (std::size_t j = 0; j < 23; ++j) p(i, j) = static_cast<float>((i * 5 + j * 3) % 11 * 20 + (i + j));
  return p;
}

// SSIM straight from Wang et al. 2004: 2D Gaussian weights w(u,v) ∝ exp(−(u² + v²)/(2σ²)) on 11 × 11,
// local weighted statistics at every valid position, mean of the index map.
double brute_ssim(const plane& a, const plane& b, double range) {
  const int side = 11, half = 5;
  double wsum = 0, wts[11][11];
  for (int u = -half; u <= half; ++u)
    for (int v = -half; v <= half; ++v) wsum += wts[u + half][v + half] = std::exp(-(u * u + v * v) / (2 * 1.5 * 1.5));
  const double c1 = std::pow(0.01 * range, 2), c2 = std::pow(0.03 * range, 2);
  const int h = static_cast<int>(a.shape()[0]), w = static_cast<int>(a.shape()[1]);
  double total = 0;
  int n = 0;
  for (int y = 0; y + side <= h; ++y)
    for (int x = 0; x + side <= w; ++x) {
      double mx = 0, my = 0;
      for (int u = 0; u < side; ++u)
        for (int v = 0; v < side; ++v) {
          mx += wts[u][v] / wsum * a(y + u, x + v);
          my += wts[u][v] / wsum * b(y + u, x + v);
        }
      double vx = 0, vy = 0, cxy = 0;
      for (int u = 0; u < side; ++u)
        for (int v = 0; v < side; ++v) {
          const double k = wts[u][v] / wsum, dx = a(y + u, x + v) - mx, dy = b(y + u, x + v) - my;
          vx += k * dx * dx, vy += k * dy * dy, cxy += k * dx * dy;
        }
      total += (2 * mx * my + c1) * (2 * cxy + c2) / ((mx * mx + my * my + c1) * (vx + vy + c2));
      ++n;
    }
  return total / n;
}
}  // namespace

TEST_CASE("psnr: closed forms") {
  const plane zero = filled(8, 9, 0.0f), two = filled(8, 9, 2.0f);
  CHECK(eval::mean_squared_error(zero, two) == doctest::Approx(4.0));
  CHECK(eval::psnr(zero, two, 255.0) == doctest::Approx(10 * std::log10(255.0 * 255.0 / 4.0)));
  CHECK(eval::psnr(two, two, 1.0) == std::numeric_limits<double>::infinity());
  // Half the pixels off by 1, range 1: MSE 0.5 → 10·log10(2) dB.
  plane half = zero;
  for (std::size_t i = 0; i < half.size(); i += 2) half.data()[i] = 1.0f;
  const double m = 36.0 / 72.0;
  CHECK(eval::psnr(zero, half, 1.0) == doctest::Approx(10 * std::log10(1.0 / m)));
  CHECK_THROWS_AS(eval::psnr(zero, filled(8, 8, 0.0f), 1.0), error);
  CHECK_THROWS_AS(eval::psnr(zero, two, 0.0), error);
  CHECK(eval::data_range_of(pattern_x()) == doctest::Approx(160.0));
  CHECK(eval::data_range_of(zero) == 1.0);
}

TEST_CASE("ssim: closed forms for identical and constant images") {
  CHECK(eval::ssim(pattern_x(), pattern_x(), 255.0) == doctest::Approx(1.0));
  // Constant α and β: no variance, SSIM = (2αβ + C1) / (α² + β² + C1) everywhere.
  const double a = 40, b = 90, c1 = std::pow(0.01 * 255, 2);
  CHECK(eval::ssim(filled(16, 12, 40.0f), filled(16, 12, 90.0f), 255.0) ==
        doctest::Approx((2 * a * b + c1) / (a * a + b * b + c1)));
  // The Gaussian window sums to 1 and has the σ = 1.5 ratio between neighbours.
  const auto g = eval::gaussian_window(11, 1.5);
  double s = 0;
  for (double v : g) s += v;
  CHECK(s == doctest::Approx(1.0));
  CHECK(g[6] / g[5] == doctest::Approx(std::exp(-0.5 / 2.25)));
  CHECK_THROWS_AS(eval::ssim(filled(10, 30, 1.0f), filled(10, 30, 1.0f), 1.0), error);  // smaller than the window
}

TEST_CASE("ssim: separable implementation equals the 2D-window definition and scikit-image") {
  const plane x = pattern_x(), y = pattern_y();
  CHECK(eval::ssim(x, y, 255.0) == doctest::Approx(brute_ssim(x, y, 255.0)).epsilon(1e-10));
  rng r(4);
  plane p = plane::from_shape({17, 15}), q = plane::from_shape({17, 15});
  for (std::size_t i = 0; i < p.size(); ++i) {
    p.data()[i] = static_cast<float>(r.uniform(0, 1));
    q.data()[i] = static_cast<float>(0.5 * p.data()[i] + r.normal(0, 0.2));
  }
  CHECK(eval::ssim(p, q, 1.0) == doctest::Approx(brute_ssim(p, q, 1.0)).epsilon(1e-10));
  // scikit-image 0.26: structural_similarity(x, y, gaussian_weights=True, sigma=1.5,
  // use_sample_covariance=False, data_range=255) and peak_signal_noise_ratio(x, y, data_range=255).
  CHECK(eval::ssim(x, y, 255.0) == doctest::Approx(0.04157838389432659).epsilon(1e-9));
  plane z = x;
  for (auto& v : z) v = 0.5f * v + 20.0f;
  CHECK(eval::ssim(x, z, 255.0) == doctest::Approx(0.7715649687403087).epsilon(1e-9));
  CHECK(eval::psnr(x, y, 255.0) == doctest::Approx(8.940375321784092).epsilon(1e-9));
}

TEST_CASE("image quality: real vgg-cells image with Gaussian noise") {
  MICROCOUNT_REQUIRE_DATA();
  const io::image im = io::read_tiff(test::data_dir() / "vgg-cells" / "image_001.tif");  // [1, 1, 256, 256]
  xt::xtensor<float, 3> clean = xt::xtensor<float, 3>::from_shape({1, 256, 256});         // [1, H, W]
  std::copy(im.pixels.begin(), im.pixels.end(), clean.begin());
  rng r(9);
  xt::xtensor<float, 3> light = clean, heavy = clean;
  for (std::size_t i = 0; i < clean.size(); ++i) {
    const double n = r.normal();
    light.data()[i] += static_cast<float>(5 * n);
    heavy.data()[i] += static_cast<float>(20 * n);
  }
  // Gaussian noise of σ: MSE ≈ σ², PSNR ≈ 10·log10(255² / σ²) (within sampling error of 65,536 pixels).
  CHECK(eval::psnr(clean, light, 255.0) == doctest::Approx(10 * std::log10(255.0 * 255.0 / 25.0)).epsilon(0.01));
  CHECK(eval::psnr(clean, heavy, 255.0) == doctest::Approx(10 * std::log10(255.0 * 255.0 / 400.0)).epsilon(0.01));
  const double s_light = eval::ssim(clean, light, 255.0), s_heavy = eval::ssim(clean, heavy, 255.0);
  CHECK(s_light < 1.0);
  CHECK(s_heavy < s_light);
  CHECK(s_heavy > 0.0);
}
