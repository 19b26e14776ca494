// Upsampling (nearest, bilinear, trilinear, per-frame bilinear): gradient checks, ramps, PyTorch's numbers.
#include <algorithm>
#include <cmath>

#include "gradcheck.hpp"
#include "microcount/nn/layers/upsample.hpp"

using namespace microcount;

namespace {
using f64 = test::f64;
using ref = backend::reference;
constexpr auto nearest = ops::upsample_mode::nearest;
constexpr auto linear = ops::upsample_mode::linear;
}  // namespace

TEST_CASE("upsample: gradients match finite differences (nearest and linear, 2D and 3D, odd sizes)") {
  rng r(51);
  for (auto mode : {nearest, linear}) {
    {
      nn::upsample2d<f64> up({2, 3}, mode);
      const shape in{2, 3, 3, 5};
      CHECK(up.build(in, r) == shape{2, 3, 6, 15});
      CHECK(test::gradcheck(up, test::random_tensor(in, r), r) < 1e-8);
    }
    {
      nn::upsample3d<f64> up({1, 2, 2}, mode);
      const shape in{1, 2, 3, 3, 5};
      CHECK(up.build(in, r) == shape{1, 2, 3, 6, 10});
      CHECK(test::gradcheck(up, test::random_tensor(in, r), r) < 1e-8);
    }
    {
      nn::upsample3d<f64> up({2, 2, 2}, mode);
      const shape in{1, 2, 3, 1, 3};  // an axis of extent 1 interpolates between one sample and itself
      CHECK(up.build(in, r) == shape{1, 2, 6, 2, 6});
      CHECK(test::gradcheck(up, test::random_tensor(in, r), r) < 1e-8);
    }
  }
}

TEST_CASE("upsample: a ramp is reproduced (nearest: steps; bilinear: the line, clamped at the borders)") {
  rng r(52);
  const index_t h = 3, w = 7;
  tensor<double, f64> x({1, 1, h, w});
  for (index_t i = 0; i < h; ++i)
    for (index_t j = 0; j < w; ++j) x[i * w + j] = 10.0 * double(i) + double(j);
  for (int s : {2, 3, 4}) {
    nn::upsample2d<f64> bilinear({s, s}, linear), steps({s, s}, nearest);
    bilinear.build(x.shape(), r);
    steps.build(x.shape(), r);
    auto y = bilinear.forward(x), z = steps.forward(x);
    auto source = [s](index_t o, index_t n) { return std::clamp((double(o) + 0.5) / s - 0.5, 0.0, double(n - 1)); };
    for (index_t i = 0; i < h * s; ++i)
      for (index_t j = 0; j < w * s; ++j) {
        CHECK(y[i * w * s + j] == doctest::Approx(10.0 * source(i, h) + source(j, w)).epsilon(1e-12));
        CHECK(z[i * w * s + j] == 10.0 * double(i / s) + double(j / s));
      }
  }
}

TEST_CASE("upsample: matches PyTorch's F.interpolate (bilinear (2,3) and trilinear 2, align_corners=False)") {
  rng r(53);
  // x = torch.arange(12.).reshape(1, 1, 3, 4) ** 2
  // F.interpolate(x, scale_factor=(2, 3), mode='bilinear', align_corners=False), PyTorch 1.13:
  const double bilinear[72] = {
      0.0,  0.0,  0.333333, 0.666667, 1.0,  2.0,  3.0,  4.0,       5.666667,  7.333334,  9.0,       9.0,
      4.0,  4.0,  5.0,      6.0,      7.0,  8.666667, 10.333334, 12.000001, 14.333334, 16.666668, 19.0, 19.0,
      12.0, 12.0, 14.333334, 16.666666, 19.0, 22.0, 25.0, 28.0,    31.666668, 35.333336, 38.999996, 39.0,
      28.0, 28.0, 31.666668, 35.333332, 39.0, 43.333332, 47.666668, 52.0, 57.0, 62.0,   67.0,      67.0,
      52.0, 52.0, 57.0,     62.0,     67.0, 72.666664, 78.333336, 84.0, 90.333336, 96.666672, 102.999992, 103.0,
      64.0, 64.0, 69.666664, 75.333336, 81.0, 87.333336, 93.666672, 100.0, 107.0, 114.0, 120.999992, 121.0};
  tensor<float, ref> x({1, 1, 3, 4});
  for (index_t i = 0; i < 12; ++i) x[i] = float(i * i);
  nn::upsample2d<ref> up({2, 3}, linear);
  up.build(x.shape(), r);
  auto y = up.forward(x);
  REQUIRE(y.shape() == shape{1, 1, 6, 12});
  for (index_t i = 0; i < 72; ++i) CHECK(y[i] == doctest::Approx(bilinear[i]).epsilon(1e-5));
  // x3 = torch.arange(8.).reshape(1, 1, 2, 2, 2) ** 2; F.interpolate(x3, scale_factor=2, mode='trilinear')
  const double trilinear[64] = {
      0.0,  0.25,  0.75,  1.0,  1.0,  1.5,   2.5,   3.0,  3.0,  4.0,   6.0,   7.0,  4.0,  5.25,  7.75,  9.0,
      4.0,  4.75,  6.25,  7.0,  6.0,  7.0,   9.0,   10.0, 10.0, 11.5,  14.5,  16.0, 12.0, 13.75, 17.25, 19.0,
      12.0, 13.75, 17.25, 19.0, 16.0, 18.0,  22.0,  24.0, 24.0, 26.5,  31.5,  34.0, 28.0, 30.75, 36.25, 39.0,
      16.0, 18.25, 22.75, 25.0, 21.0, 23.5,  28.5,  31.0, 31.0, 34.0,  40.0,  43.0, 36.0, 39.25, 45.75, 49.0};
  tensor<float, ref> x3({1, 1, 2, 2, 2});
  for (index_t i = 0; i < 8; ++i) x3[i] = float(i * i);
  nn::upsample3d<ref> up3({2, 2, 2}, linear);
  up3.build(x3.shape(), r);
  auto y3 = up3.forward(x3);
  for (index_t i = 0; i < 64; ++i) CHECK(y3[i] == doctest::Approx(trilinear[i]).epsilon(1e-6));
}

TEST_CASE("upsample3d (1,2,2) linear is bilinear per frame; nearest (2,2,2) repeats frames") {
  rng r(54);
  const shape in{2, 2, 3, 4, 5};
  tensor<double, f64> x = test::random_tensor(in, r);
  nn::upsample3d<f64> per_frame({1, 2, 2}, linear), nearest3({2, 2, 2}, nearest);
  per_frame.build(in, r);
  nearest3.build(in, r);
  auto y = per_frame.forward(x), z = nearest3.forward(x);
  // The same data read as 2D frames [N·C·T, 1, H, W] (NCDHW's frames are contiguous planes).
  tensor<double, f64> frames = x.clone();
  frames.reshape({12, 1, 4, 5});
  nn::upsample2d<f64> bilinear_frames({2, 2}, linear);
  bilinear_frames.build(frames.shape(), r);
  auto expected = bilinear_frames.forward(frames);
  REQUIRE(expected.size() == y.size());
  for (index_t i = 0; i < y.size(); ++i) CHECK(y[i] == doctest::Approx(expected[i]).epsilon(1e-14));
  auto zv = z.view<5>();
  auto xv = x.view<5>();
  for (index_t d = 0; d < 6; ++d) CHECK(zv(1, 1, d, 7, 9) == xv(1, 1, d / 2, 3, 4));
}

TEST_CASE("upsample: bad shapes are readable errors") {
  rng r(55);
  nn::upsample2d<ref> up({2, 0});
  CHECK_THROWS_WITH_AS(up.build({1, 1, 4, 4}, r), doctest::Contains("at least 1"), error);
  nn::upsample2d<ref> ok;
  CHECK_THROWS_WITH_AS(ok.build({1, 1, 4, 4, 4}, r), doctest::Contains("rank 4"), error);
}
