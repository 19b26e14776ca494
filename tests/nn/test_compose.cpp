#include "gradcheck.hpp"
#include "microcount/nn/compose.hpp"
#include "microcount/nn/layers/conv.hpp"
#include "microcount/nn/layers/conv_bn_relu.hpp"

using namespace microcount;
using f64 = test::f64;

TEST_CASE("seq / skip_concat / residual: shapes, parameter paths and gradients") {
  rng r(11);
  ops::conv<2> same;
  same.pad = {1, 1};
  using conv = nn::conv2d<f64>;
  nn::seq net(conv(3, {3, 3}, same), nn::skip_concat(nn::seq(conv(2, {3, 3}, same), conv(4, {1, 1}))),
              nn::residual(conv(7, {3, 3}, same)));
  const shape out = net.build({2, 2, 5, 6}, r);
  CHECK(out == shape{2, 7, 5, 6});  // 3 skip channels + 4 inner channels
  std::vector<std::string> names;
  net.for_each_parameter([&](const nn::parameter<f64>& p) { names.push_back(p.name); });
  CHECK(names == std::vector<std::string>{"0.weight", "0.bias", "1.inner.0.weight", "1.inner.0.bias",
                                          "1.inner.1.weight", "1.inner.1.bias", "2.inner.weight", "2.inner.bias"});
  auto x = test::random_tensor({2, 2, 5, 6}, r);
  CHECK(test::gradcheck(net, x, r) < 1e-6);
}

TEST_CASE("skip_concat puts the skip first, then the inner output") {
  rng r(12);
  nn::skip_concat<nn::conv2d<backend::reference>> s(nn::conv2d<backend::reference>(1, {1, 1}, {}, false));
  s.build({1, 1, 2, 2}, r);
  s.inner.weight[0] = 2.0f;
  tensor<float, backend::reference> x({1, 1, 2, 2});
  for (int i = 0; i < 4; ++i) x[i] = static_cast<float>(i + 1);
  auto y = s.forward(x);
  REQUIRE(y.shape() == shape{1, 2, 2, 2});
  for (int i = 0; i < 4; ++i) {
    CHECK(y[i] == x[i]);
    CHECK(y[4 + i] == 2 * x[i]);
  }
}

TEST_CASE("residual rejects an inner layer that changes the shape, naming both shapes") {
  rng r(13);
  nn::residual<nn::conv2d<backend::reference>> res(nn::conv2d<backend::reference>(5, {3, 3}));
  CHECK_THROWS_WITH_AS(res.build({1, 2, 8, 8}, r), doctest::Contains("[1, 5, 6, 6]"), error);
}

TEST_CASE("residual does not write into the inner layer's kept output (conv_bn_relu keeps it for its ReLU mask)") {
  rng r(14);
  ops::conv<2> same;
  same.pad = {1, 1};
  nn::residual res(nn::conv_bn_relu<2, f64>(2, {3, 3}, same));
  res.build({2, 2, 4, 5}, r);
  auto x = test::random_tensor({2, 2, 4, 5}, r);
  CHECK(test::gradcheck(res, x, r, {.eps = 1e-6, .tolerance = 1e-5}) < 1e-5);
}
