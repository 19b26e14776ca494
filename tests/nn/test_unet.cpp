#include "gradcheck.hpp"
#include "microcount/nn/models/unet.hpp"

using namespace microcount;

TEST_CASE("unet2d<batch, transposed, 3> is the reference counting U-Net: 482,449 parameters") {
  rng r(1);
  using spec = nn::unet2d<nn::norm::batch, nn::up::transposed, 3>;
  auto net = spec::make<backend::reference>({});
  CHECK(net.build({2, 1, 32, 48}, r) == shape{2, 1, 32, 48});
  CHECK(nn::parameter_count(net) == 482449);
  CHECK(spec::name() == "unet2d<batch,transposed,3>");
}

TEST_CASE("unet2d: a size not divisible by the pooling factors is a readable error") {
  rng r(2);
  auto net = nn::unet2d<>::make<backend::reference>({});
  CHECK_THROWS_WITH_AS(net.build({1, 1, 36, 36}, r), doctest::Contains("divisible"), error);
}

TEST_CASE("unet variants: gradients of whole small networks match finite differences") {
  rng r(3);
  SUBCASE("2D, batch norm, transposed") {
    auto net = nn::unet2d<nn::norm::batch, nn::up::transposed, 1>::make<test::f64>({.in_channels = 2, .out_channels = 2, .base_width = 2});
    net.build({2, 2, 4, 6}, r);
    auto x = test::random_tensor({2, 2, 4, 6}, r);
    CHECK(test::gradcheck(net, x, r, {.eps = 1e-6, .tolerance = 1e-5}) < 1e-5);
  }
  SUBCASE("2D, group norm, bilinear") {
    auto net = nn::unet2d<nn::norm::group, nn::up::bilinear, 2>::make<test::f64>({.base_width = 2, .groups = 2});
    net.build({1, 1, 8, 8}, r);
    auto x = test::random_tensor({1, 1, 8, 8}, r);
    CHECK(test::gradcheck(net, x, r, {.eps = 1e-6, .tolerance = 1e-5}) < 1e-5);
  }
  SUBCASE("3D, no norm, nearest, pooling (1,2,2)") {
    auto net = nn::unet3d<nn::norm::none, nn::up::nearest, 1>::make<test::f64>({.out_channels = 3, .base_width = 2});
    CHECK(net.build({1, 1, 3, 4, 4}, r) == shape{1, 3, 3, 4, 4});
    auto x = test::random_tensor({1, 1, 3, 4, 4}, r);
    CHECK(test::gradcheck(net, x, r, {.eps = 1e-6, .tolerance = 1e-5}) < 1e-5);
  }
}
