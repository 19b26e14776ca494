// Channel concatenation and its split, add, dropout, linear and transposed-convolution layers.
#include <cmath>
#include <vector>

#include "gradcheck.hpp"
#include "microcount/nn/layers/conv_transpose.hpp"
#include "microcount/nn/layers/dropout.hpp"
#include "microcount/nn/layers/linear.hpp"
#include "microcount/nn/layers/merge.hpp"

using namespace microcount;

namespace {
using f64 = test::f64;
using ref = backend::reference;

// Dropout with its generator reset before every forward: a fixed mask, so finite differences apply.
struct frozen_dropout : nn::layer_base<f64> {
  static constexpr std::string_view kind = "frozen_dropout";
  nn::dropout<f64> inner;
  std::uint64_t seed = 7;
  explicit frozen_dropout(double p) : inner(p) {}
  shape build(const shape& in, rng& r) { return inner.build(in, r); }
  nn::tensor_t<f64> forward(const nn::tensor_t<f64>& x) {
    inner.generator.reseed(seed);
    return inner.forward(x);
  }
  nn::tensor_t<f64> backward(const nn::tensor_t<f64>& dy) { return inner.backward(dy); }
  void set_mode(nn::mode m) { inner.set_mode(m); }
};
}  // namespace

TEST_CASE("concat_channels: skip first, then the other; split_channels is its adjoint (2D and 3D)") {
  rng r(61);
  for (const auto& [sa, sb] : {std::pair{shape{2, 3, 5, 7}, shape{2, 2, 5, 7}}, std::pair{shape{2, 1, 3, 4, 5}, shape{2, 4, 3, 4, 5}}}) {
    auto a = test::random_tensor(sa, r), b = test::random_tensor(sb, r);
    auto y = nn::concat_channels(a, b);
    shape sy = sa;
    sy[1] = sa[1] + sb[1];
    REQUIRE(y.shape() == sy);
    const index_t s = sa.size_from(2);
    for (index_t n = 0; n < sa[0]; ++n)
      for (index_t c = 0; c < sy[1]; ++c)
        for (index_t j = 0; j < s; ++j) {
          const double expected = c < sa[1] ? a[(n * sa[1] + c) * s + j] : b[(n * sb[1] + c - sa[1]) * s + j];
          CHECK(y[(n * sy[1] + c) * s + j] == expected);
        }
    // <concat(a, b), g> = <a, ga> + <b, gb> for (ga, gb) = split(g).
    auto g = test::random_tensor(sy, r);
    tensor<double, f64> ga, gb;
    nn::split_channels(g, sa[1], ga, gb);
    REQUIRE(ga.shape() == sa);
    REQUIRE(gb.shape() == sb);
    CHECK(test::dot(y, g) == doctest::Approx(test::dot(a, ga) + test::dot(b, gb)).epsilon(1e-14));
  }
  tensor<float, ref> a({1, 2, 4, 4}), b({1, 2, 4, 5});
  CHECK_THROWS_WITH_AS(nn::concat_channels(a, b), doctest::Contains("cannot concatenate [1, 2, 4, 4] and [1, 2, 4, 5]"),
                       error);
}

TEST_CASE("add and accumulate") {
  rng r(62);
  auto a = test::random_tensor({2, 3, 4, 5}, r), b = test::random_tensor({2, 3, 4, 5}, r);
  auto y = nn::add(a, b);
  for (index_t i = 0; i < y.size(); ++i) CHECK(y[i] == a[i] + b[i]);
  nn::accumulate(y, a);
  for (index_t i = 0; i < y.size(); ++i) CHECK(y[i] == (a[i] + b[i]) + a[i]);
  CHECK_THROWS_WITH_AS(nn::add(a, test::random_tensor({2, 3, 5, 4}, r)), doctest::Contains("add"), error);
}

TEST_CASE("dropout: with a fixed mask the gradient is the mask scaled by 1/(1-p)") {
  rng r(63);
  const shape in{2, 3, 5, 7};
  nn::dropout<f64> drop(0.3);
  drop.build(in, r);
  auto x = test::random_tensor(in, r, 0.5, 1.5);  // never 0, so dropped elements are recognisable
  auto y = drop.forward(x);
  auto dy = test::random_tensor(in, r);
  auto dx = drop.backward(dy);
  index_t dropped = 0;
  for (index_t i = 0; i < x.size(); ++i) {
    if (y[i] == 0) {
      ++dropped;
      CHECK(dx[i] == 0);
    } else {
      CHECK(y[i] == doctest::Approx(x[i] / 0.7).epsilon(1e-15));
      CHECK(dx[i] == doctest::Approx(dy[i] / 0.7).epsilon(1e-15));
    }
  }
  CHECK(dropped > 0);
  CHECK(dropped < x.size());
  frozen_dropout frozen(0.4);
  frozen.build(in, r);
  CHECK(test::gradcheck(frozen, x, r) < 1e-8);
}

TEST_CASE("dropout: drop rate and mean as expected, deterministic for a seed, identity in evaluation") {
  const shape in{4, 8, 64, 64};  // 131072 elements
  rng seed_a(5), seed_b(5);
  nn::dropout<ref> a(0.3), b(0.3);
  a.build(in, seed_a);
  b.build(in, seed_b);
  tensor<float, ref> x(in);
  for (index_t i = 0; i < x.size(); ++i) x[i] = 1.0f;
  auto ya = a.forward(x), yb = b.forward(x), ya2 = a.forward(x);
  index_t dropped = 0, differ = 0;
  double sum = 0;
  for (index_t i = 0; i < x.size(); ++i) {
    dropped += ya[i] == 0.0f;
    sum += ya[i];
    differ += ya[i] != ya2[i];
    REQUIRE(ya[i] == yb[i]);  // same seed, same masks
  }
  const double n = double(x.size()), sd = std::sqrt(n * 0.3 * 0.7);
  CHECK(std::abs(double(dropped) - 0.3 * n) < 5 * sd);
  CHECK(std::abs(sum / n - 1.0) < 5 * sd / n / 0.7);
  CHECK(differ > 0.3 * n);  // the next forward draws a new mask
  a.set_mode(nn::mode::evaluation);
  auto ye = a.forward(x);
  for (index_t i = 0; i < x.size(); i += 97) CHECK(ye[i] == 1.0f);
  auto dxe = a.backward(x);
  CHECK(dxe[12345] == 1.0f);
  nn::dropout<ref> none(0.0), all(1.0), bad(1.5);
  rng r(1);
  none.build(in, r);
  all.build(in, r);
  auto yn = none.forward(x), y_all = all.forward(x);
  for (index_t i = 0; i < x.size(); i += 101) {
    CHECK(yn[i] == 1.0f);
    CHECK(y_all[i] == 0.0f);
  }
  CHECK_THROWS_WITH_AS(bad.build(in, r), doctest::Contains("p must be in [0, 1]"), error);
}

TEST_CASE("linear: gradients match finite differences; forward closed form; initialisation bounds") {
  rng r(64);
  {
    nn::linear<f64> fc(5);
    CHECK(fc.build({3, 7}, r) == shape{3, 5});
    for (index_t i = 0; i < 5; ++i) fc.bias[i] = r.uniform(-1, 1);
    CHECK(test::gradcheck(fc, test::random_tensor({3, 7}, r), r) < 1e-8);
  }
  {
    nn::linear<f64> fc(2, false);  // flattens [N, C, H, W]
    CHECK(fc.build({2, 3, 2, 3}, r) == shape{2, 2});
    CHECK(test::gradcheck(fc, test::random_tensor({2, 3, 2, 3}, r), r) < 1e-8);
  }
  nn::linear<ref> fc(2);
  fc.build({1, 3}, r);
  const double bound = std::sqrt(6.0 / 3.0);
  for (index_t i = 0; i < 6; ++i) CHECK(std::abs(fc.weight[i]) <= bound);
  CHECK(fc.bias[0] == 0.0f);
  tensor<float, ref> x({1, 3});
  x[0] = 1, x[1] = 2, x[2] = 3;
  fc.bias[1] = 0.5f;
  auto y = fc.forward(x);
  CHECK(y[0] == doctest::Approx(fc.weight[0] + 2 * fc.weight[1] + 3 * fc.weight[2]));
  CHECK(y[1] == doctest::Approx(fc.weight[3] + 2 * fc.weight[4] + 3 * fc.weight[5] + 0.5));
  CHECK_THROWS_WITH_AS(fc.forward(tensor<float, ref>({1, 4})), doctest::Contains("3 input features"), error);
}

TEST_CASE("conv_transpose layer: gradients match finite differences (U-Net 2x2/2, padded, 3D per frame)") {
  rng r(65);
  {
    ops::conv_transpose<2> op;
    op.stride = {2, 2};
    nn::conv_transpose2d<f64> up(3, {2, 2}, op);
    const shape in{2, 4, 3, 5};
    CHECK(up.build(in, r) == shape{2, 3, 6, 10});
    CHECK(test::gradcheck(up, test::random_tensor(in, r), r) < 1e-8);
  }
  {
    ops::conv_transpose<2> op;
    op.stride = {2, 1};
    op.pad = {1, 0};
    op.output_pad = {1, 0};
    nn::conv_transpose2d<f64> up(2, {3, 2}, op, false);
    const shape in{1, 3, 4, 3};
    CHECK(up.build(in, r) == shape{1, 2, 8, 4});
    CHECK(test::gradcheck(up, test::random_tensor(in, r), r) < 1e-8);
  }
  {
    ops::conv_transpose<3> op;
    op.stride = {1, 2, 2};
    nn::conv_transpose3d<f64> up(2, {1, 2, 2}, op);
    const shape in{1, 3, 3, 2, 3};
    CHECK(up.build(in, r) == shape{1, 2, 3, 4, 6});
    CHECK(test::gradcheck(up, test::random_tensor(in, r), r) < 1e-8);
  }
}

TEST_CASE("conv_transpose layer: 2x2 stride 2 spreads each input into its own 2x2 block; init and errors") {
  rng r(66);
  ops::conv_transpose<2> op;
  op.stride = {2, 2};
  nn::conv_transpose2d<ref> up(1, {2, 2}, op);
  up.build({1, 1, 2, 3}, r);
  const double bound = std::sqrt(6.0 / 4.0);  // fan-in OC·k·k = 4
  for (index_t i = 0; i < 4; ++i) CHECK(std::abs(up.weight[i]) <= bound);
  for (index_t i = 0; i < 4; ++i) up.weight[i] = float(i + 1);  // [[1, 2], [3, 4]]
  up.bias[0] = 0.5f;
  tensor<float, ref> x({1, 1, 2, 3});
  for (index_t i = 0; i < 6; ++i) x[i] = float(10 * (i + 1));
  auto y = up.forward(x);
  REQUIRE(y.shape() == shape{1, 1, 4, 6});
  for (index_t h = 0; h < 4; ++h)
    for (index_t w = 0; w < 6; ++w)
      CHECK(y[h * 6 + w] == doctest::Approx(x[(h / 2) * 3 + w / 2] * float((h % 2) * 2 + w % 2 + 1) + 0.5f));
  tensor<float, ref> wrong({1, 2, 2, 3});
  CHECK_THROWS_WITH_AS(up.forward(wrong), doctest::Contains("channels"), error);
  std::vector<bool> decay;
  up.for_each_parameter([&](const nn::parameter<ref>& p) { decay.push_back(p.decay); });
  CHECK(decay == std::vector<bool>{true, false});
}
