// Whole layers on the cpu backend against the same layers on the reference backend: same seed, same
// input, same dy; outputs, input gradients, parameter gradients and buffers agree (training and evaluation).
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "microcount/backends/cpu.hpp"
#include "microcount/nn/layers/activation.hpp"
#include "microcount/nn/layers/conv_transpose.hpp"
#include "microcount/nn/layers/dropout.hpp"
#include "microcount/nn/layers/linear.hpp"
#include "microcount/nn/layers/merge.hpp"
#include "microcount/nn/layers/norm.hpp"
#include "microcount/nn/layers/pool.hpp"
#include "microcount/nn/layers/upsample.hpp"
#include "backend_compare.hpp"

using namespace microcount;

namespace {
using ref = backend::reference;
using cpu = backend::cpu;

using test::worst;

template <class B>
tensor<float, B> random(const shape& s, std::uint64_t seed) {
  rng r(seed);
  tensor<float, B> t(s);
  for (index_t i = 0; i < t.size(); ++i) t[i] = static_cast<float>(r.uniform(-2, 2));
  return t;
}

// Builds `make(ref)` and `make(cpu)` from the same seed, runs two forward/backward rounds in `m`, compares.
template <template <class> class Make>
void same_layer(const shape& in, nn::mode m, double tolerance) {
  CAPTURE(in.str());
  auto a = Make<ref>{}();
  auto b = Make<cpu>{}();
  rng ra(77), rb(77);
  const shape out = a.build(in, ra);
  REQUIRE(b.build(in, rb) == out);
  a.set_mode(m);
  b.set_mode(m);
  for (std::uint64_t round = 0; round < 2; ++round) {
    auto ya = a.forward(random<ref>(in, 10 + round));
    auto yb = b.forward(random<cpu>(in, 10 + round));
    CHECK(worst(ya, yb) <= tolerance);
    auto dxa = a.backward(random<ref>(out, 20 + round));
    auto dxb = b.backward(random<cpu>(out, 20 + round));
    CHECK(worst(dxa, dxb) <= tolerance);
  }
  std::vector<const tensor<float, ref>*> grads_a, buffers_a;
  std::vector<const tensor<float, cpu>*> grads_b, buffers_b;
  a.for_each_parameter([&](const nn::parameter<ref>& p) { grads_a.push_back(p.grad); });
  b.for_each_parameter([&](const nn::parameter<cpu>& p) { grads_b.push_back(p.grad); });
  a.for_each_buffer([&](std::string_view, tensor<float, ref>& t) { buffers_a.push_back(&t); });
  b.for_each_buffer([&](std::string_view, tensor<float, cpu>& t) { buffers_b.push_back(&t); });
  REQUIRE(grads_a.size() == grads_b.size());
  REQUIRE(buffers_a.size() == buffers_b.size());
  for (std::size_t k = 0; k < grads_a.size(); ++k) CHECK(worst(*grads_a[k], *grads_b[k]) <= 10 * tolerance);
  for (std::size_t k = 0; k < buffers_a.size(); ++k) CHECK(worst(*buffers_a[k], *buffers_b[k]) <= tolerance);
}

template <class B> struct make_bn2 { auto operator()() { return nn::batch_norm2d<B>{}; } };
template <class B> struct make_bn3 { auto operator()() { return nn::batch_norm3d<B>{}; } };
template <class B> struct make_gn { auto operator()() { return nn::group_norm2d<B>(3); } };
template <class B> struct make_relu { auto operator()() { return nn::relu<B>{}; } };
template <class B> struct make_leaky { auto operator()() { return nn::leaky_relu<B>(0.2); } };
template <class B> struct make_sigmoid { auto operator()() { return nn::sigmoid<B>{}; } };
template <class B> struct make_softmax { auto operator()() { return nn::softmax<B>{}; } };
template <class B> struct make_pool2 { auto operator()() { return nn::max_pool2d<B>{}; } };
template <class B> struct make_pool3 { auto operator()() { return nn::max_pool3d<B>({1, 2, 2}); } };
template <class B> struct make_bilinear { auto operator()() { return nn::upsample2d<B>({2, 2}, ops::upsample_mode::linear); } };
template <class B> struct make_nearest3 { auto operator()() { return nn::upsample3d<B>({2, 2, 2}); } };
template <class B> struct make_gap { auto operator()() { return nn::global_avg_pool<B>{}; } };
template <class B> struct make_linear { auto operator()() { return nn::linear<B>(7); } };
template <class B> struct make_dropout { auto operator()() { return nn::dropout<B>(0.25); } };
template <class B> struct make_up2 {
  auto operator()() {
    ops::conv_transpose<2> op;
    op.stride = {2, 2};
    return nn::conv_transpose2d<B>(5, {2, 2}, op);
  }
};
template <class B> struct make_up3 {
  auto operator()() {
    ops::conv_transpose<3> op;
    op.stride = {1, 2, 2};
    return nn::conv_transpose3d<B>(3, {1, 2, 2}, op);
  }
};
}  // namespace

TEST_CASE("cpu layers equal reference layers: normalisation") {
  same_layer<make_bn2>({4, 6, 13, 11}, nn::mode::training, 1e-4);
  same_layer<make_bn2>({2, 6, 13, 11}, nn::mode::evaluation, 1e-5);
  same_layer<make_bn3>({2, 3, 3, 9, 7}, nn::mode::training, 1e-4);
  same_layer<make_gn>({3, 6, 9, 10}, nn::mode::training, 1e-4);
}

TEST_CASE("cpu layers equal reference layers: activations") {
  same_layer<make_relu>({2, 3, 17, 9}, nn::mode::training, 0);
  same_layer<make_leaky>({2, 3, 17, 9}, nn::mode::training, 1e-7);
  same_layer<make_sigmoid>({2, 3, 4, 17, 9}, nn::mode::training, 1e-6);
  same_layer<make_softmax>({2, 4, 17, 9}, nn::mode::training, 1e-6);
}

TEST_CASE("cpu layers equal reference layers: pooling, upsampling, linear, dropout") {
  same_layer<make_pool2>({2, 3, 17, 9}, nn::mode::training, 0);
  same_layer<make_pool3>({2, 3, 3, 17, 9}, nn::mode::training, 0);
  same_layer<make_bilinear>({2, 3, 7, 9}, nn::mode::training, 1e-5);
  same_layer<make_nearest3>({1, 3, 3, 7, 9}, nn::mode::training, 1e-6);
  same_layer<make_gap>({3, 5, 7, 9}, nn::mode::training, 1e-6);
  same_layer<make_linear>({3, 5, 2, 3}, nn::mode::training, 1e-5);
  same_layer<make_dropout>({3, 5, 17, 9}, nn::mode::training, 0);
}

TEST_CASE("cpu layers equal reference layers: transposed convolution (U-Net 2x2/2, per-frame 3D)") {
  same_layer<make_up2>({2, 8, 9, 7}, nn::mode::training, 1e-5);
  same_layer<make_up3>({1, 4, 3, 5, 6}, nn::mode::training, 1e-5);
}

TEST_CASE("cpu concat_channels / split_channels / add equal the reference") {
  auto a = random<cpu>({2, 3, 9, 7}, 1), b = random<cpu>({2, 5, 9, 7}, 2);
  auto ar = random<ref>({2, 3, 9, 7}, 1), br = random<ref>({2, 5, 9, 7}, 2);
  auto y = nn::concat_channels(a, b);
  auto yr = nn::concat_channels(ar, br);
  CHECK(worst(yr, y) == 0);
  tensor<float, cpu> da, db;
  nn::split_channels(y, 3, da, db);
  CHECK(worst(ar, da) == 0);
  CHECK(worst(br, db) == 0);
  auto s = nn::add(a, da);
  for (index_t i = 0; i < s.size(); ++i) REQUIRE(s[i] == 2 * a[i]);
}
