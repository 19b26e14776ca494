// Activation layers: gradient checks in double, closed forms, numerical stability.
#include <cmath>
#include <limits>

#include "gradcheck.hpp"
#include "microcount/nn/layers/activation.hpp"

using namespace microcount;

namespace {
using f64 = test::f64;
using ref = backend::reference;
}  // namespace

TEST_CASE("relu, leaky_relu, sigmoid: gradients match finite differences") {
  rng r(31);
  const shape in{2, 3, 5, 7};
  auto x = test::random_tensor(in, r, -2, 2);
  nn::relu<f64> relu;
  CHECK(relu.build(in, r) == in);
  CHECK(test::gradcheck(relu, x, r) < 1e-8);
  nn::leaky_relu<f64> leaky(0.2);
  leaky.build(in, r);
  CHECK(test::gradcheck(leaky, x, r) < 1e-8);
  nn::leaky_relu<f64> flipped(-0.5);  // a negative slope is allowed (saved input, not output, decides)
  flipped.build(in, r);
  CHECK(test::gradcheck(flipped, x, r) < 1e-8);
  nn::sigmoid<f64> sigmoid;
  sigmoid.build(shape{3, 2, 3, 3, 5}, r);
  CHECK(test::gradcheck(sigmoid, test::random_tensor(shape{3, 2, 3, 3, 5}, r, -6, 6), r) < 1e-8);
}

TEST_CASE("relu, leaky_relu, sigmoid: closed forms") {
  rng r(32);
  tensor<float, ref> x({1, 1, 1, 6});
  const float values[6] = {-100.f, -2.f, -0.f, 0.5f, 3.f, 200.f};
  for (int i = 0; i < 6; ++i) x[i] = values[i];
  nn::relu<ref> relu;
  nn::leaky_relu<ref> leaky(0.1);
  nn::sigmoid<ref> sigmoid;
  relu.build(x.shape(), r);
  leaky.build(x.shape(), r);
  sigmoid.build(x.shape(), r);
  auto a = relu.forward(x), b = leaky.forward(x), s = sigmoid.forward(x);
  for (int i = 0; i < 6; ++i) {
    CHECK(a[i] == std::max(values[i], 0.f));
    CHECK(b[i] == doctest::Approx(values[i] > 0 ? values[i] : 0.1f * values[i]));
    CHECK(s[i] == doctest::Approx(1.0 / (1.0 + std::exp(-double(values[i])))));
  }
  CHECK(s[0] == 0.0f);  // e^100 overflows float: still exactly 0, not NaN
  CHECK(s[5] == 1.0f);
  CHECK(nn::leaky_relu<ref>{}.op.slope == 0.01);  // PyTorch's default
  // relu's gradient passes where x > 0 and is 0 elsewhere (at 0 too, like PyTorch).
  tensor<float, ref> dy(x.shape());
  for (int i = 0; i < 6; ++i) dy[i] = 1.0f + float(i);
  auto dx = relu.backward(dy);
  for (int i = 0; i < 6; ++i) CHECK(dx[i] == (values[i] > 0 ? dy[i] : 0.0f));
}

TEST_CASE("softmax over channels: gradients match finite differences (2D and 3D)") {
  rng r(33);
  {
    nn::softmax<f64> softmax;
    const shape in{2, 4, 3, 5};
    softmax.build(in, r);
    CHECK(test::gradcheck(softmax, test::random_tensor(in, r, -3, 3), r) < 1e-8);
  }
  {
    nn::softmax<f64> softmax;
    const shape in{1, 3, 2, 3, 3};
    softmax.build(in, r);
    CHECK(test::gradcheck(softmax, test::random_tensor(in, r, -3, 3), r) < 1e-8);
  }
}

TEST_CASE("softmax over channels: sums to 1 per position, shift invariant, stable for huge logits") {
  rng r(34);
  nn::softmax<ref> softmax;
  const shape in{2, 3, 4, 5};
  softmax.build(in, r);
  tensor<float, ref> x(in), shifted(in);
  for (index_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(r.uniform(-5, 5));
  // Add a different constant at each (n, position): the softmax over channels must not change.
  for (index_t n = 0; n < 2; ++n)
    for (index_t c = 0; c < 3; ++c)
      for (index_t j = 0; j < 20; ++j) shifted[(n * 3 + c) * 20 + j] = x[(n * 3 + c) * 20 + j] + 500.0f + float(j);
  auto y = softmax.forward(x), z = softmax.forward(shifted);
  for (index_t n = 0; n < 2; ++n)
    for (index_t j = 0; j < 20; ++j) {
      double sum = 0;
      for (index_t c = 0; c < 3; ++c) {
        const index_t at = (n * 3 + c) * 20 + j;
        sum += y[at];
        CHECK(y[at] > 0.0f);
        CHECK(z[at] == doctest::Approx(y[at]).epsilon(1e-4));
      }
      CHECK(sum == doctest::Approx(1.0).epsilon(1e-6));
    }
  // Two channels with logits (a, b): softmax = sigmoid(a − b).
  tensor<float, ref> pair({1, 2, 1, 1});
  pair[0] = 1000.0f;
  pair[1] = 997.0f;
  auto p = softmax.forward(pair);
  CHECK(p[0] == doctest::Approx(1.0 / (1.0 + std::exp(-3.0))));
  CHECK(p[1] == doctest::Approx(1.0 / (1.0 + std::exp(3.0))));
}

TEST_CASE("activations: backward without a training forward, or with a wrong dy, is a readable error") {
  rng r(35);
  nn::relu<ref> relu;
  relu.build({1, 2, 3, 3}, r);
  tensor<float, ref> x({1, 2, 3, 3}), dy({1, 2, 3, 4});
  x.fill_zero();
  relu.set_mode(nn::mode::evaluation);
  relu.forward(x);
  CHECK_THROWS_WITH_AS(relu.backward(x), doctest::Contains("without a training-mode forward"), error);
  relu.set_mode(nn::mode::training);
  relu.forward(x);
  CHECK_THROWS_WITH_AS(relu.backward(dy), doctest::Contains("relu: dy has shape"), error);
}
