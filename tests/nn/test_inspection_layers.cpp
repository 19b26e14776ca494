// nn::mode::inspection, layer by layer: the evaluation-mode function forward (bit for bit), its input
// gradient backward (finite differences in double), parameter gradients untouched; and the cpu backend
// (fused conv_bn_relu epilogue, SIMD BatchNorm) against the reference backend.
#include <doctest/doctest.h>

#include <cmath>

#include "inspection_check.hpp"
#include "microcount/backends/cpu.hpp"
#include "microcount/nn/compose.hpp"
#include "microcount/nn/layers/activation.hpp"
#include "microcount/nn/layers/conv.hpp"
#include "microcount/nn/layers/conv_bn_relu.hpp"
#include "microcount/nn/layers/conv_transpose.hpp"
#include "microcount/nn/layers/dropout.hpp"
#include "microcount/nn/layers/linear.hpp"
#include "microcount/nn/layers/norm.hpp"
#include "microcount/nn/layers/pool.hpp"
#include "microcount/nn/layers/upsample.hpp"

using namespace microcount;
using f64 = test::f64;

TEST_CASE("inspection: BatchNorm is the running-statistics function and dx = dy·γ/sqrt(running_var + eps)") {
  rng r(401);
  nn::batch_norm2d<f64> bn;
  const shape in{2, 3, 4, 5};
  bn.build(in, r);
  test::randomise_state(bn, r);
  auto x = test::random_tensor(in, r, -2, 2);
  auto res = test::inspection_check(bn, x, r);
  CHECK(res.worst < 1e-6);
  // Closed form, per channel.
  const index_t s = in.size_from(2);
  for (index_t i = 0; i < x.size(); ++i) {
    const index_t c = (i / s) % in[1];
    const double k = bn.weight[c] / std::sqrt(bn.running_var[c] + bn.op.eps);
    REQUIRE(res.dx[i] == doctest::Approx(res.g[i] * k).epsilon(1e-12));
  }
  // The running statistics are not moved by an inspection forward.
  auto mean = bn.running_mean.clone();
  bn.set_mode(nn::mode::inspection);
  bn.forward(x);
  for (index_t c = 0; c < in[1]; ++c) CHECK(bn.running_mean[c] == mean[c]);
}

TEST_CASE("inspection: GroupNorm, dropout, activations, pooling, resampling, convolutions, linear") {
  rng r(402);
  SUBCASE("group_norm") {
    nn::group_norm2d<f64> gn(2);
    gn.build({2, 4, 3, 3}, r);
    test::randomise_state(gn, r);
    CHECK(test::inspection_check(gn, test::random_tensor({2, 4, 3, 3}, r), r).worst < 1e-6);
  }
  SUBCASE("dropout is the identity, forward and backward") {
    nn::dropout<f64> d(0.5);
    d.build({2, 3, 4}, r);
    auto res = test::inspection_check(d, test::random_tensor({2, 3, 4}, r), r);
    for (index_t i = 0; i < res.g.size(); ++i) REQUIRE(res.dx[i] == res.g[i]);
  }
  SUBCASE("relu, leaky_relu, sigmoid, softmax") {
    const shape in{2, 3, 4, 3};
    nn::relu<f64> a;
    nn::leaky_relu<f64> b(0.1);
    nn::sigmoid<f64> c;
    nn::softmax<f64> d;
    a.build(in, r), b.build(in, r), c.build(in, r), d.build(in, r);
    CHECK(test::inspection_check(a, test::random_tensor(in, r), r).worst < 1e-6);
    CHECK(test::inspection_check(b, test::random_tensor(in, r), r).worst < 1e-6);
    CHECK(test::inspection_check(c, test::random_tensor(in, r), r).worst < 1e-6);
    CHECK(test::inspection_check(d, test::random_tensor(in, r), r).worst < 1e-6);
  }
  SUBCASE("max_pool, global_avg_pool, bilinear upsampling") {
    nn::max_pool2d<f64> p({2, 2});
    nn::global_avg_pool<f64> g;
    nn::upsample2d<f64> u({2, 2}, ops::upsample_mode::linear);
    p.build({2, 2, 5, 6}, r), g.build({2, 2, 5, 6}, r), u.build({2, 2, 5, 6}, r);
    CHECK(test::inspection_check(p, test::random_tensor({2, 2, 5, 6}, r), r).worst < 1e-6);
    CHECK(test::inspection_check(g, test::random_tensor({2, 2, 5, 6}, r), r).worst < 1e-6);
    CHECK(test::inspection_check(u, test::random_tensor({2, 2, 5, 6}, r), r).worst < 1e-6);
  }
  SUBCASE("conv, transposed conv, linear (parameter gradients untouched)") {
    ops::conv<2> same;
    same.pad = {1, 1};
    nn::conv2d<f64> conv(3, {3, 3}, same);
    ops::conv_transpose<2> up;
    up.stride = {2, 2};
    nn::conv_transpose2d<f64> tconv(2, {2, 2}, up);
    nn::linear<f64> lin(3);
    conv.build({2, 2, 5, 4}, r), tconv.build({2, 3, 3, 4}, r), lin.build({2, 3, 2, 2}, r);
    CHECK(test::inspection_check(conv, test::random_tensor({2, 2, 5, 4}, r), r).worst < 1e-6);
    CHECK(test::inspection_check(tconv, test::random_tensor({2, 3, 3, 4}, r), r).worst < 1e-6);
    CHECK(test::inspection_check(lin, test::random_tensor({2, 3, 2, 2}, r), r).worst < 1e-6);
  }
}

TEST_CASE("inspection: conv_bn_relu (folded BatchNorm) gives dx of its evaluation function, as the separate layers do") {
  rng r(403);
  ops::conv<2> same;
  same.pad = {1, 1};
  const shape in{2, 3, 5, 4};
  nn::conv_bn_relu<2, f64> fused(4, {3, 3}, same);
  fused.build(in, r);
  test::randomise_state(fused, r, -1.0, 1.0);
  fused.for_each_buffer([&](std::string_view name, tensor<double, f64>& t) {
    if (name.ends_with("running_var"))
      for (index_t i = 0; i < t.size(); ++i) t[i] = r.uniform(0.5, 1.5);
  });
  auto x = test::random_tensor(in, r);
  auto res = test::inspection_check(fused, x, r, 1e-6, 1e-6);
  CHECK(res.worst < 1e-6);
  // The same parameters in conv -> batch_norm -> relu, also in inspection mode: the same dx.
  nn::seq<nn::conv2d<f64>, nn::batch_norm2d<f64>, nn::relu<f64>> separate(nn::conv2d<f64>(4, {3, 3}, same, false),
                                                                           nn::batch_norm2d<f64>(), nn::relu<f64>());
  separate.build(in, r);
  separate.get<0>().weight = fused.conv.weight.clone();
  separate.get<1>().weight = fused.bn.weight.clone();
  separate.get<1>().bias = fused.bn.bias.clone();
  separate.get<1>().running_mean = fused.bn.running_mean.clone();
  separate.get<1>().running_var = fused.bn.running_var.clone();
  auto sep = test::inspection_check(separate, x, r);
  fused.set_mode(nn::mode::inspection);
  fused.forward(x);
  auto dx = fused.backward(sep.g);
  for (index_t i = 0; i < dx.size(); ++i) REQUIRE(dx[i] == doctest::Approx(sep.dx[i]).epsilon(1e-10));
}

TEST_CASE("inspection: backward after an evaluation forward is still refused (nothing kept), and modes round-trip") {
  rng r(404);
  ops::conv<2> same;
  same.pad = {1, 1};
  nn::seq<nn::conv_bn_relu<2, f64>, nn::max_pool2d<f64>> net(nn::conv_bn_relu<2, f64>(2, {3, 3}, same),
                                                             nn::max_pool2d<f64>({2, 2}));
  net.build({1, 1, 4, 4}, r);
  auto x = test::random_tensor({1, 1, 4, 4}, r);
  net.set_mode(nn::mode::training);
  net.forward(x);  // a training forward, then an evaluation one: the training state must not be used
  net.set_mode(nn::mode::evaluation);
  CHECK(net.get_mode() == nn::mode::evaluation);
  auto y = net.forward(x);
  CHECK_THROWS_AS(net.backward(tensor<double, f64>::zeros(y.shape())), error);
  net.set_mode(nn::mode::inspection);
  CHECK(net.get_mode() == nn::mode::inspection);
  CHECK(net.get<0>().get_mode() == nn::mode::inspection);
  net.forward(x);
  CHECK(net.backward(tensor<double, f64>::zeros(y.shape())).shape() == x.shape());
}

namespace {
template <class A, class B>
double worst_diff(const A& a, const B& b) {
  REQUIRE(a.size() == b.size());
  double w = 0;
  for (index_t i = 0; i < a.size(); ++i) w = std::max(w, std::abs(double(a[i]) - double(b[i])) / (1.0 + std::abs(double(a[i]))));
  return w;
}
}  // namespace

TEST_CASE("inspection on cpu equals the reference backend: conv_bn_relu (fused epilogue), BatchNorm, GroupNorm") {
  using ref = backend::reference;
  using cpu = backend::cpu;
  rng r(405);
  ops::conv<2> same;
  same.pad = {1, 1};
  const shape in{2, 5, 9, 7};  // odd sizes: SIMD tails
  nn::conv_bn_relu<2, ref> a(6, {3, 3}, same);
  nn::conv_bn_relu<2, cpu> b(6, {3, 3}, same);
  nn::batch_norm2d<ref> bn_a;
  nn::batch_norm2d<cpu> bn_b;
  nn::group_norm2d<ref> gn_a(3);
  nn::group_norm2d<cpu> gn_b(3);
  a.build(in, r), b.build(in, r), bn_a.build(in, r), bn_b.build(in, r);
  gn_a.build({2, 6, 9, 7}, r), gn_b.build({2, 6, 9, 7}, r);
  auto copy_state = [&](auto& from, auto& to) {
    std::vector<float*> src, dst;
    from.for_each_parameter([&](const auto& p) { src.push_back(p.value->data()); });
    from.for_each_buffer([&](std::string_view, auto& t) { src.push_back(t.data()); });
    to.for_each_parameter([&](const auto& p) { dst.push_back(p.value->data()); });
    to.for_each_buffer([&](std::string_view, auto& t) { dst.push_back(t.data()); });
    std::size_t k = 0;
    from.for_each_parameter([&](const auto& p) {
      for (index_t i = 0; i < p.value->size(); ++i) src[k][i] = dst[k][i] = static_cast<float>(r.uniform(0.5, 1.5));
      ++k;
    });
    from.for_each_buffer([&](std::string_view, auto& t) {
      for (index_t i = 0; i < t.size(); ++i) src[k][i] = dst[k][i] = static_cast<float>(r.uniform(0.5, 1.5));
      ++k;
    });
  };
  copy_state(a, b), copy_state(bn_a, bn_b), copy_state(gn_a, gn_b);
  auto run = [&](auto& la, auto& lb, const shape& s) {
    tensor<float, ref> xa(s), ga;
    tensor<float, cpu> xb(s);
    for (index_t i = 0; i < xa.size(); ++i) xa[i] = xb[i] = static_cast<float>(r.uniform(-1, 1));
    la.set_mode(nn::mode::inspection);
    lb.set_mode(nn::mode::inspection);
    auto ya = la.forward(xa);
    auto yb = lb.forward(xb);
    CHECK(worst_diff(ya, yb) < 1e-5);
    tensor<float, ref> gra(ya.shape());
    tensor<float, cpu> grb(ya.shape());
    for (index_t i = 0; i < gra.size(); ++i) gra[i] = grb[i] = static_cast<float>(r.uniform(-1, 1));
    CHECK(worst_diff(la.backward(gra), lb.backward(grb)) < 1e-5);
  };
  run(a, b, in);
  run(bn_a, bn_b, in);
  run(gn_a, gn_b, {2, 6, 9, 7});
  CHECK(nn::conv_bn_relu<2, cpu>::fused);  // the cpu path above is the fused epilogue
}
