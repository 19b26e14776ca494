// The one-body elementwise launcher: the same body on reference and cpu gives the same result,
// including the scalar tail and the multi-threaded split.
#include <doctest/doctest.h>

#include <vector>

#include "microcount/backends/cpu/launch.hpp"
#include "microcount/backends/reference/launch.hpp"
#include "microcount/core/rng.hpp"
#include "launch_body.hpp"

using namespace microcount;

using test::leaky_axpy;

TEST_CASE("for_each: cpu (SIMD + tail + threads) equals reference") {
  rng r(9);
  for (std::int64_t n : {1, 7, 16, 17, 1000, 70001}) {
    std::vector<float> x(n), y_ref(n), y_cpu(n);
    for (std::int64_t i = 0; i < n; ++i) {
      x[i] = static_cast<float>(r.uniform(-2, 2));
      y_ref[i] = y_cpu[i] = static_cast<float>(r.uniform(-2, 2));
    }
    const std::vector<float> x_before = x;
    const leaky_axpy body{1.5f, 0.1f};
    for_each<backend::reference>(n, body, y_ref.data(), static_cast<const float*>(x.data()));
    for_each<backend::cpu>(n, body, y_cpu.data(), static_cast<const float*>(x.data()));
    for (std::int64_t i = 0; i < n; ++i) REQUIRE(y_cpu[i] == doctest::Approx(y_ref[i]).epsilon(1e-6));
    CHECK(x == x_before);
  }
}
