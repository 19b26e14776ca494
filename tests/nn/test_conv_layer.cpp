#include "gradcheck.hpp"
#include "microcount/nn/layers/conv.hpp"

using namespace microcount;

TEST_CASE("conv2d layer: gradients match finite differences (odd sizes, stride, dilation, even kernel)") {
  rng r(1);
  struct setup { index_t n, ic, oc, h, w; std::array<int, 2> k, stride, pad, dil; bool bias; };
  for (const setup& s : {setup{2, 3, 4, 7, 9, {3, 3}, {1, 1}, {1, 1}, {1, 1}, true},
                         setup{1, 2, 3, 8, 6, {2, 2}, {2, 2}, {0, 0}, {1, 1}, false},
                         setup{2, 2, 2, 9, 7, {3, 2}, {2, 1}, {1, 0}, {2, 1}, true},
                         setup{1, 1, 5, 5, 5, {1, 1}, {1, 1}, {0, 0}, {1, 1}, true}}) {
    ops::conv<2> op;
    op.stride = s.stride;
    op.pad = s.pad;
    op.dilation = s.dil;
    nn::conv2d<test::f64> layer(s.oc, s.k, op, s.bias);
    const shape in{s.n, s.ic, s.h, s.w};
    layer.build(in, r);
    auto x = test::random_tensor(in, r);
    CHECK(test::gradcheck(layer, x, r) < 1e-6);
  }
}

TEST_CASE("conv3d layer: gradients match finite differences") {
  rng r(2);
  ops::conv<3> op;
  op.pad = {0, 1, 1};
  nn::conv3d<test::f64> layer(3, {3, 3, 3}, op, true);
  const shape in{1, 2, 4, 5, 6};
  CHECK(layer.build(in, r) == shape{1, 3, 2, 5, 6});
  auto x = test::random_tensor(in, r);
  CHECK(test::gradcheck(layer, x, r) < 1e-6);
}

TEST_CASE("conv2d layer: forward matches a direct closed form on a tiny case") {
  // 1 channel 3x3 input, 2x2 kernel of ones, no padding: each output is the sum of a 2x2 window.
  rng r(3);
  nn::conv2d<backend::reference> layer(1, {2, 2}, {}, false);
  layer.build({1, 1, 3, 3}, r);
  for (index_t i = 0; i < 4; ++i) layer.weight[i] = 1.0f;
  tensor<float, backend::reference> x({1, 1, 3, 3});
  for (index_t i = 0; i < 9; ++i) x[i] = static_cast<float>(i);
  auto y = layer.forward(x);
  REQUIRE(y.shape() == shape{1, 1, 2, 2});
  CHECK(y[0] == 0 + 1 + 3 + 4);
  CHECK(y[1] == 1 + 2 + 4 + 5);
  CHECK(y[2] == 3 + 4 + 6 + 7);
  CHECK(y[3] == 4 + 5 + 7 + 8);
}

TEST_CASE("conv2d layer: a channel mismatch is a readable error") {
  rng r(4);
  nn::conv2d<backend::reference> layer(4, {3, 3});
  layer.build({1, 3, 8, 8}, r);
  tensor<float, backend::reference> x({1, 2, 8, 8});
  CHECK_THROWS_WITH_AS(layer.forward(x), doctest::Contains("channels"), error);
}
