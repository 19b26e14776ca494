#pragma once
// The elementwise body the launcher tests run on a backend and on the reference backend, to compare
// (backends/test_launch.cpp: cpu; cuda/test_emulator.cpp: the emulated cuda backend).
#include "microcount/core/config.hpp"
#include "microcount/core/elementwise.hpp"

namespace microcount::test {

// y = leaky_relu(a·x + y), and x is left alone.
struct leaky_axpy {
  float a, slope;
  template <class V>
  MICROCOUNT_HOST_DEVICE void operator()(V& y, const V& x) const {
    using namespace microcount::math;
    const V t = V(a) * x + y;
    y = select(t > V(0), t, t * V(slope));
  }
};

}  // namespace microcount::test
