#include "gradcheck.hpp"
#include "microcount/nn/models/regressor.hpp"

using namespace microcount;

TEST_CASE("count_regressor: shapes, area scaling and whole-network gradients") {
  rng r(5);
  using spec = nn::count_regressor<2, nn::norm::batch, 2>;
  auto net = spec::make<test::f64>({.in_channels = 1, .classes = 3, .base_width = 2, .reference_pixels = 64});
  CHECK(net.build({2, 1, 8, 8}, r) == shape{2, 3});
  auto x = test::random_tensor({2, 1, 8, 8}, r);
  CHECK(test::gradcheck(net, x, r, {.eps = 1e-6, .tolerance = 1e-5}) < 1e-5);
  CHECK(spec::name() == "count_regressor2d<batch,2>");

  // In evaluation mode, a 16x16 input tiled from the same 8x8 content doubles both spatial sides: the
  // pooled features are the same means up to borders, and the count scales with the area (x4).
  net.set_mode(nn::mode::evaluation);
  auto y8 = net.forward(x);
  CHECK(net.get<3>().factor == doctest::Approx(1.0));
  auto x16 = test::random_tensor({2, 1, 16, 16}, r);
  net.forward(x16);
  CHECK(net.get<3>().factor == doctest::Approx(4.0));
}

TEST_CASE("count_regressor 3D with group norm builds to [N, classes]") {
  rng r(6);
  auto net = nn::count_regressor<3, nn::norm::group, 1>::make<test::f64>({.classes = 2, .base_width = 4, .groups = 2});
  CHECK(net.build({1, 1, 2, 8, 8}, r) == shape{1, 2});
  auto x = test::random_tensor({1, 1, 2, 8, 8}, r);
  CHECK(test::gradcheck(net, x, r, {.eps = 1e-6, .tolerance = 1e-5}) < 1e-5);
}
