#pragma once
// How far one backend's tensor is from another's (tests/backends: cpu kernels and layers against the
// reference backend).
#include <algorithm>
#include <cmath>

#include <doctest/doctest.h>

#include "microcount/core/tensor.hpp"

namespace microcount::test {

// max |a − b| / (1 + |a|) over the elements of two tensors of one shape; 0 means identical.
template <class A, class B>
double worst(const A& a, const B& b) {
  REQUIRE(a.shape() == b.shape());
  double w = 0;
  for (index_t i = 0; i < a.size(); ++i)
    w = std::max(w, std::abs(double(a[i]) - double(b[i])) / (1.0 + std::abs(double(a[i]))));
  return w;
}

}  // namespace microcount::test
