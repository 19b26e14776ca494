#pragma once
// Finite-difference gradient checks of whole layers in double precision (backend::reference_f64),
// in the spirit of dlib's test_layer: loss = Σ g ⊙ layer(x) for a fixed random g, then every
// analytic gradient (input and parameters) is compared with central differences.
#include <cmath>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "microcount/backends/reference.hpp"
#include "microcount/core/rng.hpp"
#include "microcount/nn/layer.hpp"

namespace microcount::test {

using f64 = backend::reference_f64;

inline tensor<double, f64> random_tensor(const shape& s, rng& r, double lo = -1, double hi = 1) {
  tensor<double, f64> t(s);
  for (index_t i = 0; i < t.size(); ++i) t[i] = r.uniform(lo, hi);
  return t;
}

inline double dot(const tensor<double, f64>& a, const tensor<double, f64>& b) {
  double s = 0;
  for (index_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

struct gradcheck_options {
  double eps = 1e-6;
  double tolerance = 1e-6;   // on |analytic − numeric| / max(1, |analytic|, |numeric|)
  int max_checks_per_tensor = 64;
  nn::mode layer_mode = nn::mode::training;
};

// Checks dx and every parameter gradient of `layer` (already built for x's shape) at input x.
// Returns the worst relative error seen; CHECKs each tensor.
template <class L>
double gradcheck(L& layer, const tensor<double, f64>& x, rng& r, gradcheck_options opt = {}) {
  layer.set_mode(opt.layer_mode);
  auto y = layer.forward(x);
  auto g = random_tensor(y.shape(), r);
  auto dx = layer.backward(g);
  REQUIRE(dx.shape() == x.shape());
  auto loss_at = [&](const tensor<double, f64>& input) { return dot(layer.forward(input), g); };
  double worst = 0;
  auto compare = [&](const std::string& what, double analytic, double numeric) {
    const double err = std::abs(analytic - numeric) / std::max({1.0, std::abs(analytic), std::abs(numeric)});
    worst = std::max(worst, err);
    if (err > opt.tolerance) FAIL_CHECK(what << ": analytic " << analytic << " vs numeric " << numeric);
  };
  // Input gradient.
  auto xp = x.clone();
  const index_t stride_x = std::max<index_t>(1, x.size() / opt.max_checks_per_tensor);
  for (index_t i = 0; i < x.size(); i += stride_x) {
    const double keep = xp[i];
    xp[i] = keep + opt.eps;
    const double up = loss_at(xp);
    xp[i] = keep - opt.eps;
    const double down = loss_at(xp);
    xp[i] = keep;
    compare("dx[" + std::to_string(i) + "]", dx[i], (up - down) / (2 * opt.eps));
  }
  // Parameter gradients (recomputed by the backward above; forward again does not change them).
  std::vector<std::pair<std::string, tensor<double, f64>>> grads;
  layer.for_each_parameter([&](const nn::parameter<f64>& p) { grads.emplace_back(p.name, p.grad->clone()); });
  std::size_t k = 0;
  layer.for_each_parameter([&](const nn::parameter<f64>& p) {
    const auto& grad = grads[k++].second;
    const index_t stride_p = std::max<index_t>(1, p.value->size() / opt.max_checks_per_tensor);
    for (index_t i = 0; i < p.value->size(); i += stride_p) {
      const double keep = (*p.value)[i];
      (*p.value)[i] = keep + opt.eps;
      const double up = loss_at(x);
      (*p.value)[i] = keep - opt.eps;
      const double down = loss_at(x);
      (*p.value)[i] = keep;
      compare(p.name + "[" + std::to_string(i) + "]", grad[i], (up - down) / (2 * opt.eps));
    }
  });
  return worst;
}

}  // namespace microcount::test
