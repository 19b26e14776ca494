#pragma once
// Checks of nn::mode::inspection for one layer or network (double precision, backend::reference_f64):
//   - the inspection forward is the evaluation forward, bit for bit;
//   - backward returns dx of that evaluation-mode function: compared with central differences of
//     loss(x) = Σ g ⊙ layer_eval(x) for a fixed random g;
//   - parameter gradients keep their values (inspection computes dx only).
#include <cmath>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "gradcheck.hpp"

namespace microcount::test {

// Sets every parameter and buffer to uniform(lo, hi) (positive by default, so variances stay valid).
template <class L>
void randomise_state(L& layer, rng& r, double lo = 0.5, double hi = 1.5) {
  layer.for_each_parameter([&](const nn::parameter<f64>& p) {
    for (index_t i = 0; i < p.value->size(); ++i) (*p.value)[i] = r.uniform(lo, hi);
  });
  layer.for_each_buffer([&](std::string_view, tensor<double, f64>& t) {
    for (index_t i = 0; i < t.size(); ++i) t[i] = r.uniform(lo, hi);
  });
}

struct inspection_result {
  tensor<double, f64> y;   // the forward output (evaluation = inspection)
  tensor<double, f64> g;   // the random output gradient used
  tensor<double, f64> dx;  // backward(g) after the inspection forward
  double worst = 0;        // worst relative error of dx against finite differences
};

template <class L>
inspection_result inspection_check(L& layer, const tensor<double, f64>& x, rng& r, double eps = 1e-6,
                                   double tolerance = 1e-6, int max_checks = 64) {
  inspection_result out;
  layer.set_mode(nn::mode::evaluation);
  auto y_eval = layer.forward(x);
  constexpr double sentinel = 7.25;  // parameter gradients must keep it
  layer.for_each_parameter([&](const nn::parameter<f64>& p) {
    for (index_t i = 0; i < p.grad->size(); ++i) (*p.grad)[i] = sentinel;
  });
  layer.set_mode(nn::mode::inspection);
  out.y = layer.forward(x);
  REQUIRE(out.y.shape() == y_eval.shape());
  for (index_t i = 0; i < y_eval.size(); ++i) REQUIRE(out.y[i] == y_eval[i]);
  out.g = random_tensor(out.y.shape(), r);
  out.dx = layer.backward(out.g);
  REQUIRE(out.dx.shape() == x.shape());
  int touched = 0;
  layer.for_each_parameter([&](const nn::parameter<f64>& p) {
    for (index_t i = 0; i < p.grad->size(); ++i) touched += (*p.grad)[i] != sentinel;
  });
  CHECK(touched == 0);
  // Finite differences of the evaluation-mode function.
  layer.set_mode(nn::mode::evaluation);
  auto loss_at = [&](const tensor<double, f64>& input) { return dot(layer.forward(input), out.g); };
  auto xp = x.clone();
  const index_t stride = std::max<index_t>(1, x.size() / max_checks);
  for (index_t i = 0; i < x.size(); i += stride) {
    const double keep = xp[i];
    xp[i] = keep + eps;
    const double up = loss_at(xp);
    xp[i] = keep - eps;
    const double down = loss_at(xp);
    xp[i] = keep;
    const double numeric = (up - down) / (2 * eps), analytic = out.dx[i];
    const double err = std::abs(analytic - numeric) / std::max({1.0, std::abs(analytic), std::abs(numeric)});
    out.worst = std::max(out.worst, err);
    if (err > tolerance) FAIL_CHECK("dx[" << i << "]: analytic " << analytic << " vs numeric " << numeric);
  }
  return out;
}

}  // namespace microcount::test
