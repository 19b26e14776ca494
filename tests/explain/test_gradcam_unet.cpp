// Grad-CAM on a small U-Net in double precision (backend::reference_f64): the closed form at the head's
// input (α = the 1×1 head's weights, map = ReLU(output − bias)), ∂score/∂A at the bottleneck and the
// decoder level against finite
// differences of the score computed by re-running the decoder on a perturbed A by hand, the named
// targets, mode restoration, untouched parameter gradients and readable errors.
#include <doctest/doctest.h>

#include <cmath>

#include "microcount/backends/reference.hpp"
#include "microcount/explain/gradcam.hpp"
#include "microcount/nn/models/unet.hpp"

using namespace microcount;
using f64 = backend::reference_f64;
using T = tensor<double, f64>;
using spec = nn::unet2d<nn::norm::batch, nn::up::transposed, 2>;
using net_t = spec::network<f64>;

namespace {

T random_tensor(const shape& s, rng& r, double lo = -1, double hi = 1) {
  T t(s);
  for (index_t i = 0; i < t.size(); ++i) t[i] = r.uniform(lo, hi);
  return t;
}

// A built U-Net with non-trivial BatchNorm statistics and a positive-leaning head bias.
net_t make_net(rng& r, index_t out_channels = 2) {
  auto net = spec::make<f64>({.in_channels = 1, .out_channels = out_channels, .base_width = 3});
  net.build({1, 1, 12, 16}, r);
  net.for_each_buffer([&](std::string_view name, T& t) {
    for (index_t i = 0; i < t.size(); ++i) t[i] = name.ends_with("running_var") ? r.uniform(0.5, 1.5) : r.uniform(-0.2, 0.2);
  });
  return net;
}

// The score of the network output when the output of a level (0: the bottleneck, 1: the decoder level
// below the top) is replaced by A: the decoder re-run by hand (the same layers, evaluation mode), an
// independent walk of the U-Net structure.
template <class Score>
double score_with_level(net_t& net, const T& x, const T& a, int level, const Score& score) {
  net.set_mode(nn::mode::evaluation);
  auto& l2 = net.get<0>();
  auto& l1 = l2.get<1>().inner.get<1>();
  auto s2 = l2.get<0>().forward(x);                               // level-2 block (skip)
  T d1;
  if (level == 0) {
    auto s1 = l1.get<0>().forward(l2.get<1>().inner.get<0>().forward(s2));  // pool, level-1 block (skip)
    auto u1 = l1.get<1>().inner.get<2>().forward(a);              // up from the bottleneck
    d1 = l1.get<2>().forward(nn::concat_channels<f64>(s1, u1));
  } else {
    d1 = a.clone();
  }
  auto u2 = l2.get<1>().inner.get<2>().forward(d1);
  auto d2 = l2.get<2>().forward(nn::concat_channels<f64>(s2, u2));
  auto out = net.get<1>().forward(d2);
  return score(out);
}

double channel_sum(const T& out, index_t c) {
  const index_t plane = out.shape().size_from(2);
  double s = 0;
  for (index_t i = 0; i < plane; ++i) s += out[c * plane + i];
  return s;
}
double sigmoid_sum(const T& out, index_t c) {
  const index_t plane = out.shape().size_from(2);
  double s = 0;
  for (index_t i = 0; i < plane; ++i) s += 1 / (1 + std::exp(-out[c * plane + i]));
  return s;
}

}  // namespace

// The named targets of other U-Net variants (types only: nothing of these networks is compiled).
static_assert(std::is_same_v<explain::targets<nn::unet2d<nn::norm::group, nn::up::bilinear, 3>::network<f64>>::bottleneck,
                             explain::path<0, 1, 0, 1, 1, 0, 1, 1, 0, 1>>);
static_assert(std::is_same_v<explain::targets<nn::unet2d<nn::norm::group, nn::up::bilinear, 3>::network<f64>>::decoder,
                             explain::path<0, 1, 0, 1>>);
static_assert(std::is_same_v<explain::targets<nn::unet2d<nn::norm::none, nn::up::nearest, 1>::network<f64>>::bottleneck,
                             explain::path<0, 1, 0, 1>>);
static_assert(std::is_same_v<explain::targets<nn::unet3d<nn::norm::batch, nn::up::transposed, 2>::network<f64>>::features,
                             explain::path<0>>);

TEST_CASE("gradcam targets of the U-Net: features = the head's input, decoder = level 1, bottleneck = the level-0 block") {
  using targets = explain::targets<net_t>;
  CHECK(std::is_same_v<targets::features, explain::path<0>>);
  CHECK(std::is_same_v<targets::decoder, explain::path<0, 1, 0, 1>>);
  CHECK(std::is_same_v<targets::bottleneck, explain::path<0, 1, 0, 1, 1, 0, 1>>);
  CHECK(targets::bottleneck::str() == "0.1.0.1.1.0.1");
  rng r(501);
  auto net = make_net(r);
  auto x = random_tensor({1, 1, 12, 16}, r);
  auto bottom = explain::activation_and_gradient<targets::bottleneck>(net, x, explain::score::channel_sum{0});
  auto top = explain::activation_and_gradient<targets::features>(net, x, explain::score::channel_sum{0});
  CHECK(bottom.activation.shape() == shape{1, 12, 3, 4});  // base width 3 · 2², input / 2²
  CHECK(top.activation.shape() == shape{1, 3, 12, 16});
  auto middle = explain::activation_and_gradient<targets::decoder>(net, x, explain::score::channel_sum{0});
  CHECK(middle.activation.shape() == shape{1, 6, 6, 8});  // level 1: width 6, input / 2
  CHECK(bottom.gradient.shape() == bottom.activation.shape());
  CHECK(bottom.output.shape() == shape{1, 2, 12, 16});
  // Layers before the target kept nothing (backward never reaches them); those after it kept their input.
  bottom = explain::activation_and_gradient<targets::bottleneck>(net, x, explain::score::channel_sum{0});
  CHECK(net.get<0>().get<0>().get<0>().input.rank() == 0);
  CHECK(net.get<1>().input.rank() == 4);
}

TEST_CASE("gradcam at the head's input is the closed form: α = head weights, map = ReLU(output − bias)") {
  rng r(502);
  auto net = make_net(r);
  auto& head = net.get<1>();  // 1×1 conv, weight [2, 3, 1, 1], bias [2]
  for (index_t c = 0; c < 2; ++c) head.bias[c] = r.uniform(-0.5, 0.5);
  // Dyadic head weights: their spatial mean (a sum of 192 equal values / 192) is then exact, so α can be
  // compared with ==.
  for (index_t i = 0; i < head.weight.size(); ++i) head.weight[i] = std::round(r.uniform(-1, 1) * 64) / 64;
  auto x = random_tensor({1, 1, 12, 16}, r);
  for (index_t c = 0; c < 2; ++c) {
    auto res = explain::gradcam_details(net, x, explain::score::channel_sum{c}, {.layer = explain::target::features, .normalize = false});
    REQUIRE(res.alpha.size() == 3);
    for (index_t k = 0; k < 3; ++k) CHECK(res.alpha[k] == head.weight[c * 3 + k]);  // exactly
    net.set_mode(nn::mode::evaluation);
    auto out = net.forward(x);
    REQUIRE(res.map.shape(0) == 12);
    REQUIRE(res.map.shape(1) == 16);
    for (index_t i = 0; i < 12 * 16; ++i) {
      const double expected = std::max(0.0, out[c * 12 * 16 + i] - head.bias[c]);
      REQUIRE(res.coarse.data()[i] == doctest::Approx(expected).epsilon(1e-5));
      REQUIRE(res.map.data()[i] == res.coarse.data()[i]);  // same size: upsampling is the identity
    }
  }
  // Detection score: ∂s/∂A_k = w_ck·σ'(o) per pixel, so α_k = w_ck · mean σ'(o).
  net.set_mode(nn::mode::evaluation);
  auto out = net.forward(x);
  double mean_slope = 0;
  for (index_t i = 0; i < 12 * 16; ++i) {
    const double s = 1 / (1 + std::exp(-out[12 * 16 + i]));
    mean_slope += s * (1 - s) / (12 * 16);
  }
  auto res = explain::gradcam_details(net, x, explain::score::sigmoid_sum{1}, {.layer = explain::target::features});
  for (index_t k = 0; k < 3; ++k) CHECK(res.alpha[k] == doctest::Approx(head.weight[3 + k] * mean_slope).epsilon(1e-6));
}

template <class Path>
void check_against_finite_differences(net_t& net, const T& x, int level) {
  struct case_t {
    const char* name;
    double (*score)(const T&, index_t);
    bool detection;
  };
  for (const case_t& k : {case_t{"density", channel_sum, false}, case_t{"detection", sigmoid_sum, true}}) {
    CAPTURE(k.name);
    CAPTURE(level);
    auto ag = k.detection ? explain::activation_and_gradient<Path>(net, x, explain::score::sigmoid_sum{1})
                          : explain::activation_and_gradient<Path>(net, x, explain::score::channel_sum{1});
    auto score = [&](const T& out) { return k.score(out, 1); };
    auto score_with_bottleneck = [&](net_t& n, const T& input, const T& a, const auto& s) {
      return score_with_level(n, input, a, level, s);
    };
    // The hand-run decoder reproduces the network's output score at the unperturbed A.
    CHECK(score_with_bottleneck(net, x, ag.activation, score) == doctest::Approx(score(ag.output)).epsilon(1e-12));
    auto a = ag.activation.clone();
    const double eps = 1e-6;
    double worst = 0;
    for (index_t i = 0; i < a.size(); i += 3) {
      const double keep = a[i];
      a[i] = keep + eps;
      const double up = score_with_bottleneck(net, x, a, score);
      a[i] = keep - eps;
      const double down = score_with_bottleneck(net, x, a, score);
      a[i] = keep;
      const double numeric = (up - down) / (2 * eps);
      worst = std::max(worst, std::abs(numeric - ag.gradient[i]) / std::max(1.0, std::abs(numeric)));
    }
    CHECK(worst < 1e-6);
  }
}

TEST_CASE("gradcam at the bottleneck and the decoder level: ∂score/∂A matches finite differences of the score in A") {
  rng r(503);
  auto net = make_net(r);
  auto x = random_tensor({1, 1, 12, 16}, r);
  check_against_finite_differences<explain::targets<net_t>::bottleneck>(net, x, 0);
  check_against_finite_differences<explain::targets<net_t>::decoder>(net, x, 1);
}

TEST_CASE("gradcam restores the model's mode, leaves parameter gradients alone, and maps are [H, W] in [0, 1]") {
  rng r(504);
  auto net = make_net(r);
  auto x = random_tensor({1, 1, 12, 16}, r);
  std::vector<double> before;
  net.for_each_parameter([&](const nn::parameter<f64>& p) {
    for (index_t i = 0; i < p.grad->size(); ++i) before.push_back((*p.grad)[i] = r.uniform(-1, 1));
  });
  std::vector<double> running;
  net.for_each_buffer([&](std::string_view, T& t) { for (index_t i = 0; i < t.size(); ++i) running.push_back(t[i]); });
  for (auto m : {nn::mode::training, nn::mode::evaluation}) {
    net.set_mode(m);
    for (auto head : {explain::head_kind::density, explain::head_kind::detection}) {
      auto map = explain::gradcam_for_class(net, x, head, 1);
      CHECK(net.get_mode() == m);
      REQUIRE(map.shape(0) == 12);
      REQUIRE(map.shape(1) == 16);
      const auto [lo, hi] = std::minmax_element(map.begin(), map.end());
      CHECK(*lo == 0.0f);
      CHECK((*hi == 1.0f || *hi == 0.0f));
    }
    // An error (class 5 of 2) restores the mode too.
    CHECK_THROWS_WITH_AS(explain::gradcam_for_class(net, x, explain::head_kind::density, 5),
                         doctest::Contains("class 5 does not exist"), error);
    CHECK(net.get_mode() == m);
  }
  std::size_t k = 0, changed = 0;
  net.for_each_parameter([&](const nn::parameter<f64>& p) {
    for (index_t i = 0; i < p.grad->size(); ++i) changed += (*p.grad)[i] != before[k++];
  });
  CHECK(changed == 0);
  k = changed = 0;
  net.for_each_buffer([&](std::string_view, T& t) { for (index_t i = 0; i < t.size(); ++i) changed += t[i] != running[k++]; });
  CHECK(changed == 0);  // no running-statistics update either
}

TEST_CASE("gradcam errors name the problem") {
  rng r(505);
  auto net = make_net(r);
  CHECK_THROWS_WITH_AS(explain::gradcam_for_class(net, random_tensor({2, 1, 12, 16}, r), explain::head_kind::density, 0),
                       doctest::Contains("one image [1, C, H, W]"), error);
  CHECK_THROWS_WITH_AS(explain::gradcam_for_class(net, random_tensor({1, 1, 12, 16}, r), explain::head_kind::regression, 0),
                       doctest::Contains("regression head needs a count output"), error);
  auto wrong_shape = [](const T&) { return T::zeros({1, 1, 3, 3}); };
  CHECK_THROWS_WITH_AS(explain::gradcam(net, random_tensor({1, 1, 12, 16}, r), wrong_shape),
                       doctest::Contains("score gradient has shape"), error);
}

TEST_CASE("gradcam: bilinear upsampling has half-pixel centres (align_corners=False)") {
  xt::xtensor<float, 2> in = {{0.0f, 1.0f}, {2.0f, 3.0f}};
  auto out = explain::upsample_bilinear(in, 4, 4);
  // PyTorch: F.interpolate(t, size=4, mode="bilinear", align_corners=False) rows: 0, .25, .75, 1 (x), ×2 in y.
  const float expected[4][4] = {{0.0f, 0.25f, 0.75f, 1.0f}, {0.5f, 0.75f, 1.25f, 1.5f},
                                {1.5f, 1.75f, 2.25f, 2.5f}, {2.0f, 2.25f, 2.75f, 3.0f}};
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 4; ++x) CHECK(out(y, x) == doctest::Approx(expected[y][x]));
}
