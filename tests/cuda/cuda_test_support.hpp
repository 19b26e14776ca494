#pragma once
// Shared by the cuda backend's tests: the same random values on the reference backend and on cuda,
// copies back to the host, and the worst relative difference. Every op test follows one shape
// (ggml's test-backend-ops): build the inputs once, run the op on reference and on cuda, compare.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "microcount/backends/cuda.hpp"
#include "microcount/backends/reference.hpp"
#include "microcount/core/rng.hpp"

namespace cuda_test {

using namespace microcount;
using ref = backend::reference;
using dev = backend::cuda;
using ref_t = tensor<float, ref>;
using device_t = tensor<float, dev>;

// A cuda tensor holding the host tensor's values.
inline device_t to_device(const ref_t& h) {
  device_t d(h.shape());
  d.upload(h.data());
  return d;
}
// The host copy of a cuda tensor.
inline ref_t to_host(const device_t& d) {
  ref_t h(d.shape());
  d.download(h.data());
  return h;
}
inline ref_t random_tensor(const shape& s, rng& g, double lo = -1, double hi = 1) {
  ref_t t(s);
  for (index_t i = 0; i < t.size(); ++i) t[i] = static_cast<float>(g.uniform(lo, hi));
  return t;
}

// max |a − b| / (1 + |a|) over all elements; 0 when identical, infinity when only one side is NaN.
inline double worst(const ref_t& a, const ref_t& b) {
  REQUIRE(a.shape() == b.shape());
  double w = 0;
  for (index_t i = 0; i < a.size(); ++i) {
    if (std::isnan(a[i]) || std::isnan(b[i])) {
      if (std::isnan(a[i]) && std::isnan(b[i])) continue;
      return INFINITY;
    }
    w = std::max(w, std::abs(double(a[i]) - double(b[i])) / (1.0 + std::abs(double(a[i]))));
  }
  return w;
}
inline double worst(const ref_t& a, const device_t& b) { return worst(a, to_host(b)); }

}  // namespace cuda_test
