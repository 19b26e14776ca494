#include "gradcheck.hpp"
#include "microcount/nn/compose.hpp"
#include "microcount/nn/layers/activation.hpp"
#include "microcount/nn/layers/conv_bn_relu.hpp"

using namespace microcount;
using f64 = test::f64;

namespace {
// The fused layer and the three separate layers with the same parameters.
struct pair_of_nets {
  nn::conv_bn_relu<2, f64> fused;
  nn::seq<nn::conv2d<f64>, nn::batch_norm2d<f64>, nn::relu<f64>> separate;
  pair_of_nets(rng& r, const shape& in) {
    ops::conv<2> same;
    same.pad = {1, 1};
    fused = nn::conv_bn_relu<2, f64>(3, {3, 3}, same);
    separate = decltype(separate)(nn::conv2d<f64>(3, {3, 3}, same, false), nn::batch_norm2d<f64>(), nn::relu<f64>());
    fused.build(in, r);
    separate.build(in, r);
    // Copy every parameter and buffer from the fused net into the separate one (same order).
    std::vector<tensor<double, f64>*> from, to;
    fused.for_each_parameter([&](const nn::parameter<f64>& p) { from.push_back(p.value); });
    separate.for_each_parameter([&](const nn::parameter<f64>& p) { to.push_back(p.value); });
    fused.for_each_buffer([&](std::string_view, tensor<double, f64>& t) { from.push_back(&t); });
    separate.for_each_buffer([&](std::string_view, tensor<double, f64>& t) { to.push_back(&t); });
    REQUIRE(from.size() == to.size());
    for (std::size_t i = 0; i < from.size(); ++i) {
      for (index_t k = 0; k < from[i]->size(); ++k) (*from[i])[k] = r.uniform(0.5, 1.5);  // also var > 0
      *to[i] = from[i]->clone();
    }
  }
};
}  // namespace

TEST_CASE("conv_bn_relu equals conv -> batch_norm -> relu in training and evaluation, gradients included") {
  rng r(21);
  const shape in{3, 2, 5, 6};
  pair_of_nets nets(r, in);
  auto x = test::random_tensor(in, r);
  for (auto m : {nn::mode::training, nn::mode::evaluation}) {
    nets.fused.set_mode(m);
    nets.separate.set_mode(m);
    auto a = nets.fused.forward(x);
    auto b = nets.separate.forward(x);
    for (index_t i = 0; i < a.size(); ++i) REQUIRE(a[i] == doctest::Approx(b[i]).epsilon(1e-12));
    if (m == nn::mode::training) {
      auto g = test::random_tensor(a.shape(), r);
      auto da = nets.fused.backward(g);
      auto db = nets.separate.backward(g);
      for (index_t i = 0; i < da.size(); ++i) REQUIRE(da[i] == doctest::Approx(db[i]).epsilon(1e-10));
      std::vector<double> ga, gb;
      nets.fused.for_each_parameter([&](const nn::parameter<f64>& p) { for (index_t i = 0; i < p.grad->size(); ++i) ga.push_back((*p.grad)[i]); });
      nets.separate.for_each_parameter([&](const nn::parameter<f64>& p) { for (index_t i = 0; i < p.grad->size(); ++i) gb.push_back((*p.grad)[i]); });
      REQUIRE(ga.size() == gb.size());
      for (std::size_t i = 0; i < ga.size(); ++i) REQUIRE(ga[i] == doctest::Approx(gb[i]).epsilon(1e-10));
      std::vector<double> ra, rb;  // running statistics moved the same way
      nets.fused.for_each_buffer([&](std::string_view, tensor<double, f64>& t) { for (index_t i = 0; i < t.size(); ++i) ra.push_back(t[i]); });
      nets.separate.for_each_buffer([&](std::string_view, tensor<double, f64>& t) { for (index_t i = 0; i < t.size(); ++i) rb.push_back(t[i]); });
      for (std::size_t i = 0; i < ra.size(); ++i) REQUIRE(ra[i] == doctest::Approx(rb[i]).epsilon(1e-12));
    }
  }
}

TEST_CASE("conv_bn_relu: gradients match finite differences") {
  rng r(22);
  ops::conv<2> same;
  same.pad = {1, 1};
  nn::conv_bn_relu<2, f64> layer(4, {3, 3}, same);
  const shape in{2, 3, 5, 4};
  layer.build(in, r);
  auto x = test::random_tensor(in, r);
  CHECK(test::gradcheck(layer, x, r, {.eps = 1e-6, .tolerance = 1e-5}) < 1e-5);
}
