// The losses and optimizers of nn/ run unchanged on backend::cuda (their per-element bodies through the
// cuda for_each launcher, their sums through kernel<ops::channel_sum, cuda>): loss values and gradients,
// gradient norms, clipping and optimizer steps equal the reference's. Elementwise bodies are the same
// float arithmetic (expf/logf may differ by an ulp on a GPU); sums are double in a different order.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "cuda_test_support.hpp"
#include "microcount/nn/loss.hpp"
#include "microcount/nn/optim.hpp"

using namespace cuda_test;
namespace nn = microcount::nn;

namespace {

constexpr double tolerance = 1e-5;

// Evaluates `loss` on both backends with the same inputs and compares value and gradient.
template <class Loss, class... Extra>
void check_loss(const Loss& loss, const ref_t& prediction, const ref_t& target, const Extra&... extra) {
  const auto expected = loss.evaluate(prediction, target, extra...);
  const auto got = loss.evaluate(to_device(prediction), to_device(target), to_device(extra)...);
  CHECK(std::isfinite(expected.value));
  CHECK(got.value == doctest::Approx(expected.value).epsilon(tolerance));
  CHECK(worst(expected.gradient, got.gradient) <= tolerance);
}

ref_t labels(const shape& s, index_t classes, rng& g, bool with_ignored) {
  ref_t t(s);
  for (index_t i = 0; i < t.size(); ++i)
    t[i] = (with_ignored && i % 7 == 3) ? -1.f : static_cast<float>(g.below(std::uint64_t(classes)));
  return t;
}
ref_t binary(const shape& s, rng& g) {
  ref_t t(s);
  for (index_t i = 0; i < t.size(); ++i) t[i] = g.uniform() < 0.3 ? 1.f : 0.f;
  return t;
}

}  // namespace

TEST_CASE("cuda losses: mse and masked mse (value and gradient) equal the reference") {
  rng g(31);
  const shape s{2, 3, 5, 7};
  const ref_t p = random_tensor(s, g), t = random_tensor(s, g);
  check_loss(nn::mse_loss{}, p, t);
  ref_t mask = random_tensor(s, g);  // about half the elements count
  check_loss(nn::mse_loss{}, p, t, mask);
  // An empty mask: value 0 and zero gradient on both.
  const ref_t none = ref_t::zeros(s);
  const auto got = nn::mse_loss{}.evaluate(to_device(p), to_device(t), to_device(none));
  CHECK(got.value == 0.0);
  CHECK(worst(ref_t::zeros(s), got.gradient) == 0.0);
  // A closed form: p − t = 1 everywhere → MSE 1.
  ref_t ones(s), zeros = ref_t::zeros(s);
  for (index_t i = 0; i < ones.size(); ++i) ones[i] = 1.f;
  CHECK(nn::mse_loss{}.value(to_device(ones), to_device(zeros)) == doctest::Approx(1.0).epsilon(1e-12));
}

TEST_CASE("cuda losses: bce with logits, one and per-channel pos_weight") {
  rng g(32);
  const shape s{3, 4, 9};
  const ref_t x = random_tensor(s, g, -5, 5), t = binary(s, g);
  check_loss(nn::bce_with_logits_loss{}, x, t);
  check_loss(nn::bce_with_logits_loss{{2.5}}, x, t);
  check_loss(nn::bce_with_logits_loss{{0.5, 1, 2, 4}}, x, t);
}

TEST_CASE("cuda losses: focal, sigmoid and softmax (soft targets, class-index maps with ignored pixels)") {
  rng g(33);
  const shape s{2, 3, 6, 5};
  const ref_t x = random_tensor(s, g, -4, 4);
  nn::focal_loss sigmoid_focal;
  check_loss(sigmoid_focal, x, binary(s, g));
  sigmoid_focal.alpha = -1;  // no alpha weighting
  sigmoid_focal.gamma = 0.5;
  check_loss(sigmoid_focal, x, binary(s, g));

  nn::focal_loss softmax_focal;
  softmax_focal.over = nn::focal_loss::activation::softmax;
  // A soft same-shape target: positive values normalised over the channels of each pixel.
  ref_t soft = random_tensor(s, g, 0.05, 1);
  for (index_t n = 0; n < 2; ++n)
    for (index_t j = 0; j < 30; ++j) {
      double total = 0;
      for (index_t c = 0; c < 3; ++c) total += soft[(n * 3 + c) * 30 + j];
      for (index_t c = 0; c < 3; ++c) soft[(n * 3 + c) * 30 + j] = float(soft[(n * 3 + c) * 30 + j] / total);
    }
  check_loss(softmax_focal, x, soft);
  check_loss(softmax_focal, x, labels({2, 6, 5}, 3, g, false));
  softmax_focal.class_weights = {0.5, 1.0, 3.0};
  check_loss(softmax_focal, x, labels({2, 1, 6, 5}, 3, g, true));
}

TEST_CASE("cuda losses: tversky / dice over softmax, sigmoid and raw probabilities") {
  rng g(34);
  const shape s{2, 3, 7, 3};
  const ref_t x = random_tensor(s, g, -3, 3);
  check_loss(nn::tversky_loss{}, x, labels({2, 7, 3}, 3, g, false));
  check_loss(nn::tversky_loss{nn::tversky_loss::activation::softmax, 0.3, 0.7, 1.0}, x, labels({2, 1, 7, 3}, 3, g, true));
  check_loss(nn::tversky_loss::dice(nn::tversky_loss::activation::sigmoid, 0.5), x, binary(s, g));
  check_loss(nn::tversky_loss{nn::tversky_loss::activation::none, 0.5, 0.5, 1.0}, random_tensor(s, g, 0, 1), binary(s, g));
  // A bad label (≥ C) is refused on cuda as on the reference (the check reads a device-side sum).
  ref_t bad = labels({2, 7, 3}, 3, g, false);
  bad[4] = 3.f;
  const device_t xd = to_device(x), bad_d = to_device(bad);
  CHECK_THROWS_AS((void)nn::tversky_loss{}.evaluate(xd, bad_d), microcount::error);
}

namespace {

// A model's worth of parameters on one backend: values and gradients of a few odd shapes.
template <class B>
struct parameter_set {
  std::vector<tensor<float, B>> values, grads;
  nn::parameter_list<B> list() {
    nn::parameter_list<B> out;
    for (std::size_t i = 0; i < values.size(); ++i)  // odd ones: no decay (like biases)
      out.push_back({std::to_string(i), &values[i], &grads[i], i % 2 == 0});
    return out;
  }
};
struct both_sets {
  parameter_set<ref> host;
  parameter_set<dev> device;
  both_sets(rng& g, double gradient_scale) {
    for (const shape s : {shape{7, 3, 3, 3}, shape{7}, shape{5, 11}, shape{1}}) {
      const ref_t v = random_tensor(s, g), d = random_tensor(s, g, -gradient_scale, gradient_scale);
      device.values.push_back(to_device(v));
      device.grads.push_back(to_device(d));
      host.values.push_back(v.clone());
      host.grads.push_back(d.clone());
    }
  }
  // Fresh gradients for the next step, the same on both.
  void regrade(rng& g) {
    for (std::size_t i = 0; i < host.grads.size(); ++i) {
      const ref_t d = random_tensor(host.grads[i].shape(), g);
      host.grads[i] = d.clone();
      device.grads[i] = to_device(d);
    }
  }
  double worst_value() const {
    double w = 0;
    for (std::size_t i = 0; i < host.values.size(); ++i) w = std::max(w, worst(host.values[i], device.values[i]));
    return w;
  }
};

template <class B>
B backend_of(const nn::parameter_list<B>&);

// A factory building optimizer Opt<B> with the same options for whichever backend's parameters it gets.
template <template <class> class Opt, class Options>
auto factory(Options options) {
  return [options](auto params) {
    using B = decltype(backend_of(params));
    return Opt<B>(std::move(params), options);
  };
}

}  // namespace

TEST_CASE("cuda optimizers: gradient norm and clipping") {
  rng g(35);
  both_sets sets(g, 3.0);
  auto host = sets.host.list();
  auto device = sets.device.list();
  const double norm = nn::gradient_norm(host);
  CHECK(nn::gradient_norm(device) == doctest::Approx(norm).epsilon(1e-12));
  // Clipping to half the norm scales every gradient alike on both.
  CHECK(nn::clip_grad_norm(device, norm / 2) == doctest::Approx(nn::clip_grad_norm(host, norm / 2)).epsilon(1e-12));
  for (std::size_t i = 0; i < sets.host.grads.size(); ++i) CHECK(worst(sets.host.grads[i], sets.device.grads[i]) <= 1e-6);
  CHECK(nn::gradient_norm(device) == doctest::Approx(norm / 2).epsilon(1e-5));
  // Below the limit nothing changes.
  const double now = nn::gradient_norm(device);
  CHECK(nn::clip_grad_norm(device, now * 4) == doctest::Approx(now).epsilon(1e-12));
  CHECK(nn::gradient_norm(device) == doctest::Approx(now).epsilon(1e-12));
}

TEST_CASE("cuda optimizers: sgd (plain, momentum, Nesterov, weight decay), adam and adamw steps") {
  rng g(36);
  const auto run = [&](auto make_optimizer) {
    both_sets sets(g, 1.0);
    auto host_opt = make_optimizer(sets.host.list());
    auto device_opt = make_optimizer(sets.device.list());
    for (int step = 0; step < 4; ++step) {
      host_opt.step();
      device_opt.step();
      sets.regrade(g);
    }
    CHECK(device_opt.steps() == 4);
    CHECK(sets.worst_value() <= 1e-6);
  };
  run(factory<nn::sgd>(nn::sgd_options{0.1, 0, 0, 0.01, false}));
  run(factory<nn::sgd>(nn::sgd_options{0.05, 0.9, 0.1, 0, false}));
  run(factory<nn::sgd>(nn::sgd_options{0.05, 0.9, 0, 1e-3, true}));
  run(factory<nn::adam>(nn::adam_options{1e-2, 0.9, 0.999, 1e-8, 1e-3}));
  run(factory<nn::adamw>(nn::adamw_options{1e-2, 0.8, 0.99, 1e-8, 0.05}));
}
