// Batch and group normalisation layers: double-precision gradient checks (training and evaluation mode),
// closed forms (normalised moments, the running-statistics update) and PyTorch's numbers.
#include <cmath>
#include <vector>

#include "gradcheck.hpp"
#include "microcount/nn/layers/norm.hpp"

using namespace microcount;

namespace {
using f64 = test::f64;
using ref = backend::reference;

// Per-channel mean and biased variance of a [N, C, S...] tensor, computed directly.
template <class T, class B>
std::pair<std::vector<double>, std::vector<double>> channel_moments(const tensor<T, B>& t) {
  const index_t n = t.dim(0), c = t.dim(1), s = t.shape().size_from(2);
  std::vector<double> mean(c, 0.0), var(c, 0.0);
  for (index_t i = 0; i < n; ++i)
    for (index_t k = 0; k < c; ++k)
      for (index_t j = 0; j < s; ++j) mean[k] += t[(i * c + k) * s + j] / double(n * s);
  for (index_t i = 0; i < n; ++i)
    for (index_t k = 0; k < c; ++k)
      for (index_t j = 0; j < s; ++j) var[k] += std::pow(t[(i * c + k) * s + j] - mean[k], 2) / double(n * s);
  return {mean, var};
}

template <class L>
void randomise_affine(L& layer, rng& r) {
  for (index_t i = 0; i < layer.weight.size(); ++i) {
    layer.weight[i] = r.uniform(0.5, 2.0);
    layer.bias[i] = r.uniform(-1, 1);
  }
}
}  // namespace

TEST_CASE("batch_norm: gradients match finite differences in training mode (2D and 3D, odd sizes)") {
  rng r(11);
  {
    nn::batch_norm2d<f64> bn;
    const shape in{3, 4, 5, 7};
    CHECK(bn.build(in, r) == in);
    randomise_affine(bn, r);
    auto x = test::random_tensor(in, r, -2, 3);
    CHECK(test::gradcheck(bn, x, r) < 1e-6);
  }
  {
    nn::batch_norm3d<f64> bn;
    const shape in{2, 3, 3, 5, 3};
    bn.build(in, r);
    randomise_affine(bn, r);
    auto x = test::random_tensor(in, r);
    CHECK(test::gradcheck(bn, x, r) < 1e-6);
  }
}

TEST_CASE("batch_norm: gradients match finite differences in evaluation mode (running statistics)") {
  rng r(12);
  nn::batch_norm2d<f64> bn;
  const shape in{2, 3, 5, 3};
  bn.build(in, r);
  randomise_affine(bn, r);
  for (index_t c = 0; c < 3; ++c) {
    bn.running_mean[c] = r.uniform(-1, 1);
    bn.running_var[c] = r.uniform(0.2, 3);
  }
  auto x = test::random_tensor(in, r);
  test::gradcheck_options opt;
  opt.layer_mode = nn::mode::evaluation;
  CHECK(test::gradcheck(bn, x, r, opt) < 1e-6);
}

TEST_CASE("batch_norm: training output has zero mean and unit (biased) variance per channel") {
  rng r(13);
  nn::batch_norm2d<ref> bn;
  const shape in{4, 3, 9, 11};
  bn.build(in, r);
  tensor<float, ref> x(in);
  for (index_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(r.uniform(-1, 1) * 5 + 3 * ((i / 99) % 3));
  auto [mean_x, var_x] = channel_moments(x);
  auto y = bn.forward(x);
  auto [mean_y, var_y] = channel_moments(y);
  for (index_t c = 0; c < 3; ++c) {
    CHECK(mean_y[c] == doctest::Approx(0).epsilon(1e-5).scale(1));
    CHECK(var_y[c] == doctest::Approx(var_x[c] / (var_x[c] + 1e-5)).epsilon(1e-5));  // eps inside the sqrt
  }
}

TEST_CASE("batch_norm: running statistics follow the momentum formula with the unbiased variance") {
  rng r(14);
  nn::batch_norm2d<f64> bn;
  const shape in{2, 2, 3, 5};
  bn.build(in, r);
  auto x = test::random_tensor(in, r, -3, 4);
  auto [mean, var] = channel_moments(x);
  const double m = 2 * 15;
  bn.forward(x);
  for (index_t c = 0; c < 2; ++c) {
    CHECK(bn.running_mean[c] == doctest::Approx(0.9 * 0 + 0.1 * mean[c]).epsilon(1e-12));
    CHECK(bn.running_var[c] == doctest::Approx(0.9 * 1 + 0.1 * var[c] * m / (m - 1)).epsilon(1e-12));
  }
  bn.forward(x);  // a second step moves them on from there
  for (index_t c = 0; c < 2; ++c)
    CHECK(bn.running_mean[c] == doctest::Approx(0.9 * (0.1 * mean[c]) + 0.1 * mean[c]).epsilon(1e-12));
}

TEST_CASE("batch_norm: evaluation mode normalises with the running statistics") {
  rng r(15);
  nn::batch_norm2d<f64> bn;
  const shape in{2, 2, 3, 3};
  bn.build(in, r);
  randomise_affine(bn, r);
  bn.running_mean[0] = 0.5;
  bn.running_mean[1] = -2;
  bn.running_var[0] = 4;
  bn.running_var[1] = 0.25;
  bn.set_mode(nn::mode::evaluation);
  auto x = test::random_tensor(in, r);
  auto y = bn.forward(x);
  for (index_t i = 0; i < x.size(); ++i) {
    const index_t c = (i / 9) % 2;
    const double expected = bn.weight[c] * (x[i] - bn.running_mean[c]) / std::sqrt(bn.running_var[c] + 1e-5) + bn.bias[c];
    CHECK(y[i] == doctest::Approx(expected).epsilon(1e-12));
  }
  CHECK(bn.running_mean[0] == 0.5);  // evaluation leaves the buffers alone
}

TEST_CASE("batch_norm: matches PyTorch's BatchNorm2d on a small case") {
  // Reference values printed by PyTorch 1.13:
  //   x = torch.arange(12.).reshape(1, 2, 2, 3) ** 1.5;  bn = torch.nn.BatchNorm2d(2);  y = bn(x)
  rng r(16);
  nn::batch_norm2d<ref> bn;
  bn.build({1, 2, 2, 3}, r);
  tensor<float, ref> x({1, 2, 2, 3});
  for (index_t i = 0; i < 12; ++i) x[i] = std::pow(float(i), 1.5f);
  auto y = bn.forward(x);
  const float expected_y[12] = {-1.1977903f, -0.9429857f, -0.4770942f, 0.1262130f, 0.8406461f, 1.6510112f,
                                -1.4035428f, -0.8905927f, -0.3395623f, 0.2470787f, 0.8672864f, 1.5193337f};
  for (index_t i = 0; i < 12; ++i) CHECK(y[i] == doctest::Approx(expected_y[i]).epsilon(1e-5));
  CHECK(bn.running_mean[0] == doctest::Approx(0.4700820f).epsilon(1e-6));
  CHECK(bn.running_mean[1] == doctest::Approx(2.5158377f).epsilon(1e-6));
  CHECK(bn.running_var[0] == doctest::Approx(2.7482750f).epsilon(1e-6));
  CHECK(bn.running_var[1] == doctest::Approx(7.5667253f).epsilon(1e-6));
}

TEST_CASE("batch_norm: parameters are not decayed, running statistics are buffers, bad input is named") {
  rng r(17);
  nn::batch_norm2d<ref> bn;
  bn.build({2, 3, 4, 4}, r);
  std::vector<std::string> names;
  bn.for_each_parameter([&](const nn::parameter<ref>& p) {
    names.push_back(p.name);
    CHECK_FALSE(p.decay);
  });
  CHECK(names == std::vector<std::string>{"weight", "bias"});
  names.clear();
  bn.for_each_buffer([&](std::string_view name, tensor<float, ref>& t) {
    names.emplace_back(name);
    CHECK(t.shape() == shape{3});
  });
  CHECK(names == std::vector<std::string>{"running_mean", "running_var"});
  CHECK(bn.weight[0] == 1.0f);
  CHECK(bn.bias[0] == 0.0f);
  CHECK(bn.running_var[2] == 1.0f);
  tensor<float, ref> wrong({2, 4, 4, 4});
  CHECK_THROWS_WITH_AS(bn.forward(wrong), doctest::Contains("batch_norm2d"), error);
  tensor<float, ref> single({1, 3, 1, 1});
  CHECK_THROWS_WITH_AS(bn.forward(single), doctest::Contains("more than one value per channel"), error);
}

TEST_CASE("group_norm: gradients match finite differences (affine and not, 2D and 3D)") {
  rng r(21);
  {
    nn::group_norm2d<f64> gn(2);
    const shape in{2, 6, 3, 5};
    gn.build(in, r);
    randomise_affine(gn, r);
    auto x = test::random_tensor(in, r, -2, 2);
    CHECK(test::gradcheck(gn, x, r) < 1e-6);
  }
  {
    nn::group_norm3d<f64> gn(3, 1e-5, false);
    const shape in{2, 3, 2, 3, 3};
    gn.build(in, r);
    auto x = test::random_tensor(in, r);
    CHECK(test::gradcheck(gn, x, r) < 1e-6);
  }
}

TEST_CASE("group_norm: every (sample, group) has zero mean and unit variance; groups must divide C") {
  rng r(22);
  nn::group_norm2d<f64> gn(2);
  const shape in{3, 4, 5, 5};
  gn.build(in, r);
  auto x = test::random_tensor(in, r, -1, 7);
  auto y = gn.forward(x);
  for (index_t n = 0; n < 3; ++n)
    for (index_t g = 0; g < 2; ++g) {
      double sum = 0, squares = 0, sum_x = 0, squares_x = 0;
      for (index_t j = 0; j < 50; ++j) {
        const index_t at = (n * 4 + g * 2) * 25 + j;
        sum += y[at];
        squares += y[at] * y[at];
        sum_x += x[at];
      }
      for (index_t j = 0; j < 50; ++j) squares_x += std::pow(x[(n * 4 + g * 2) * 25 + j] - sum_x / 50, 2);
      const double var_x = squares_x / 50;
      CHECK(sum / 50 == doctest::Approx(0).scale(1).epsilon(1e-12));
      CHECK(squares / 50 == doctest::Approx(var_x / (var_x + 1e-5)).epsilon(1e-12));
    }
  nn::group_norm2d<f64> bad(3);
  CHECK_THROWS_WITH_AS(bad.build(in, r), doctest::Contains("cannot be split into 3 groups"), error);
}
