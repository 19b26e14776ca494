// Max pooling (2D, anisotropic 3D) and global average pooling: gradient checks, brute-force maxima,
// PyTorch's floor semantics, tie and NaN behaviour.
#include <cmath>
#include <limits>

#include "gradcheck.hpp"
#include "microcount/nn/layers/pool.hpp"

using namespace microcount;

namespace {
using f64 = test::f64;
using ref = backend::reference;
}  // namespace

TEST_CASE("max_pool: gradients match finite differences (2D, overlapping windows, 3D (1,2,2) and (2,2,2))") {
  rng r(41);
  {
    nn::max_pool2d<f64> pool;
    const shape in{2, 3, 7, 9};
    CHECK(pool.build(in, r) == shape{2, 3, 3, 4});  // odd sizes floor
    CHECK(test::gradcheck(pool, test::random_tensor(in, r), r) < 1e-8);
  }
  {
    nn::max_pool2d<f64> pool({3, 3}, {2, 1});  // overlapping windows: gradients add up where maxima repeat
    const shape in{1, 2, 7, 6};
    CHECK(pool.build(in, r) == shape{1, 2, 3, 4});
    CHECK(test::gradcheck(pool, test::random_tensor(in, r), r) < 1e-8);
  }
  {
    nn::max_pool3d<f64> pool({1, 2, 2});
    const shape in{2, 2, 3, 5, 6};
    CHECK(pool.build(in, r) == shape{2, 2, 3, 2, 3});
    CHECK(test::gradcheck(pool, test::random_tensor(in, r), r) < 1e-8);
  }
  {
    nn::max_pool3d<f64> pool({2, 2, 2});
    const shape in{1, 3, 5, 4, 7};
    CHECK(pool.build(in, r) == shape{1, 3, 2, 2, 3});
    CHECK(test::gradcheck(pool, test::random_tensor(in, r), r) < 1e-8);
  }
}

TEST_CASE("max_pool: forward equals the brute-force window maximum") {
  rng r(42);
  nn::max_pool3d<ref> pool({2, 3, 2}, {1, 2, 2});
  const shape in{2, 2, 4, 8, 5};
  const shape out = pool.build(in, r);
  REQUIRE(out == shape{2, 2, 3, 3, 2});
  tensor<float, ref> x(in);
  for (index_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(r.uniform(-1, 1));
  auto y = pool.forward(x);
  auto xv = x.view<5>();
  auto yv = y.view<5>();
  for (index_t n = 0; n < 2; ++n)
    for (index_t c = 0; c < 2; ++c)
      for (index_t d = 0; d < 3; ++d)
        for (index_t h = 0; h < 3; ++h)
          for (index_t w = 0; w < 2; ++w) {
            float best = -std::numeric_limits<float>::infinity();
            for (index_t kd = 0; kd < 2; ++kd)
              for (index_t kh = 0; kh < 3; ++kh)
                for (index_t kw = 0; kw < 2; ++kw) best = std::max(best, xv(n, c, d + kd, 2 * h + kh, 2 * w + kw));
            CHECK(yv(n, c, d, h, w) == best);
          }
}

TEST_CASE("max_pool: ties send the gradient to the first maximum; NaN propagates; too small is an error") {
  rng r(43);
  nn::max_pool2d<ref> pool;
  pool.build({1, 1, 4, 4}, r);
  tensor<float, ref> x({1, 1, 4, 4}), dy({1, 1, 2, 2});
  for (index_t i = 0; i < 16; ++i) x[i] = 1.0f;
  for (index_t i = 0; i < 4; ++i) dy[i] = float(i + 1);
  pool.forward(x);
  auto dx = pool.backward(dy);
  // Windows start at (0,0), (0,2), (2,0), (2,2): their first elements in scan order get the gradient.
  for (index_t i = 0; i < 16; ++i) {
    const bool first = (i / 4) % 2 == 0 && (i % 4) % 2 == 0;
    CHECK(dx[i] == (first ? dy[(i / 8) * 2 + (i % 4) / 2] : 0.0f));
  }
  x[5] = std::numeric_limits<float>::quiet_NaN();
  auto y = pool.forward(x);
  CHECK(std::isnan(y[0]));
  CHECK(y[1] == 1.0f);
  CHECK_THROWS_WITH_AS(pool.forward(tensor<float, ref>({1, 1, 1, 4})), doctest::Contains("smaller than the window"), error);
}

TEST_CASE("global_avg_pool: gradients, closed form, shapes") {
  rng r(44);
  nn::global_avg_pool<f64> gap;
  const shape in{3, 4, 5, 3};
  CHECK(gap.build(in, r) == shape{3, 4});
  auto x = test::random_tensor(in, r);
  CHECK(test::gradcheck(gap, x, r) < 1e-8);
  auto y = gap.forward(x);
  for (index_t n = 0; n < 3; ++n)
    for (index_t c = 0; c < 4; ++c) {
      double sum = 0;
      for (index_t j = 0; j < 15; ++j) sum += x[(n * 4 + c) * 15 + j];
      CHECK(y[n * 4 + c] == doctest::Approx(sum / 15).epsilon(1e-14));
    }
  nn::global_avg_pool<f64> gap3;
  CHECK(gap3.build(shape{2, 3, 2, 3, 5}, r) == shape{2, 3});
  CHECK(test::gradcheck(gap3, test::random_tensor(shape{2, 3, 2, 3, 5}, r), r) < 1e-8);
}
