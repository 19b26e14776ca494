#pragma once
// Helpers of the loss / optimizer tests: the closed-form inputs shared with tests/nn/torch_reference.py,
// and a central-difference check of a loss gradient in double precision.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>

#include "microcount/backends/reference/loss.hpp"
#include "microcount/core/rng.hpp"
#include "microcount/nn/loss.hpp"

namespace microcount::test::loss {

using f64 = backend::reference_f64;
using tensor64 = tensor<double, f64>;

// The inputs of torch_reference.py: [2, 3, 2, 2] logits, soft targets, a mask, and an [2, 2, 2] label map.
inline const shape golden_shape{2, 3, 2, 2};
inline tensor64 golden_logits() {
  tensor64 x(golden_shape);
  for (index_t i = 0; i < x.size(); ++i) x[i] = static_cast<double>((7 * i) % 11) * 0.5 - 2.5;
  return x;
}
inline tensor64 golden_soft() {
  tensor64 t(golden_shape);
  for (index_t i = 0; i < t.size(); ++i) t[i] = static_cast<double>((5 * i) % 9) / 8.0;
  return t;
}
inline tensor64 golden_mask() {
  tensor64 m(golden_shape);
  for (index_t i = 0; i < m.size(); ++i) m[i] = i % 3 == 0 ? 1.0 : 0.0;
  return m;
}
inline tensor64 golden_labels() {
  tensor64 l(shape{2, 2, 2});
  for (index_t j = 0; j < l.size(); ++j) l[j] = static_cast<double>((2 * j + 1) % 3);
  l[5] = -1;  // ignored
  return l;
}

template <class T, class B>
tensor<T, B> filled(const shape& s, rng& r, double lo, double hi) {
  tensor<T, B> t(s);
  for (index_t i = 0; i < t.size(); ++i) t[i] = static_cast<T>(r.uniform(lo, hi));
  return t;
}
// Integer class labels 0 … classes−1 as values; every `ignore_every`-th pixel −1 (0: none ignored).
template <class T, class B>
tensor<T, B> random_labels(const shape& s, index_t classes, rng& r, index_t ignore_every = 0) {
  tensor<T, B> t(s);
  for (index_t i = 0; i < t.size(); ++i)
    t[i] = ignore_every && i % ignore_every == ignore_every - 1 ? T(-1) : static_cast<T>(r.below(static_cast<std::uint64_t>(classes)));
  return t;
}

// Compares the analytic gradient of `evaluate` at x with central differences of its value, element by
// element. The error of one element is |analytic − numeric| / max(|analytic|, |numeric|, floor) with
// floor = 1e-3 · the largest analytic gradient (below it, differences are round-off). Returns the worst.
inline double check_loss_gradient(const std::function<nn::loss_result<double, f64>(const tensor64&)>& evaluate,
                                  const tensor64& x, double eps = 1e-4, double tolerance = 1e-5) {
  const auto r = evaluate(x);
  REQUIRE(r.gradient.shape() == x.shape());
  REQUIRE(std::isfinite(r.value));
  double largest = 0;
  for (index_t i = 0; i < x.size(); ++i) largest = std::max(largest, std::abs(r.gradient[i]));
  const double floor = std::max(1e-9, 1e-3 * largest);
  auto xp = x.clone();
  double worst = 0;
  for (index_t i = 0; i < x.size(); ++i) {
    const double keep = xp[i];
    xp[i] = keep + eps;
    const double up = evaluate(xp).value;
    xp[i] = keep - eps;
    const double down = evaluate(xp).value;
    xp[i] = keep;
    const double numeric = (up - down) / (2 * eps), analytic = r.gradient[i];
    const double err = std::abs(analytic - numeric) / std::max({std::abs(analytic), std::abs(numeric), floor});
    worst = std::max(worst, err);
    if (err > tolerance) FAIL_CHECK("d/dx[" << i << "]: analytic " << analytic << " vs numeric " << numeric);
  }
  return worst;
}

}  // namespace microcount::test::loss
