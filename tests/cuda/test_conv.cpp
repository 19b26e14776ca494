// The cuda convolution kernels (backends/cuda/conv.cuh) against the reference backend on random data
// (its double-precision instance). The error of a float sum grows with the sum of its terms' magnitudes,
// not with the result (hundreds of signed terms nearly cancel), so each output's difference is measured
// against 1 + Σ|term|, the same op run on the absolute values of its inputs:
// conv and conv_transpose, 2D and 3D, every function (forward with and without bias, backward_data,
// backward_weights with and without the bias gradient), odd sizes, channel counts that are not
// multiples of the 64-wide tiles, strides (including 3: stride phases with several taps), paddings,
// dilations, 1×1, 2×2, 3×3, 4×4 and non-square kernels, empty batches and channel counts, and one
// medium shape per op that crosses tile boundaries in rows, columns and depth (and splits the GEMM
// depth over blocks). Outputs start as NaN on the device, so a missed element shows. Worst error seen:
// about 1.3e-7 of 1 + Σ|term|.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

#include "cuda_test_support.hpp"

using namespace cuda_test;

namespace {

constexpr double tolerance = 1e-6;  // relative to 1 + Σ|term|: the sums are reordered

using oracle_t = tensor<double, backend::reference_f64>;

oracle_t to_double(const ref_t& t) {
  oracle_t d(t.shape());
  for (index_t i = 0; i < t.size(); ++i) d[i] = t[i];
  return d;
}
oracle_t absolute(const oracle_t& t) {
  oracle_t a(t.shape());
  for (index_t i = 0; i < t.size(); ++i) a[i] = std::abs(t[i]);
  return a;
}

// max over elements of |exact − cuda| / (1 + magnitude), magnitude = Σ|term| of that element.
double worst_error(const oracle_t& exact, const oracle_t& magnitude, const device_t& on_cuda) {
  const ref_t got = to_host(on_cuda);
  REQUIRE(got.shape() == exact.shape());
  double w = 0;
  for (index_t i = 0; i < got.size(); ++i) {
    if (std::isnan(got[i])) return INFINITY;
    w = std::max(w, std::abs(exact[i] - double(got[i])) / (1.0 + magnitude[i]));
  }
  return w;
}

// A device tensor of shape s filled with NaN: whatever the kernel leaves unwritten is caught.
device_t nan_device(const shape& s) {
  ref_t h(s);
  for (index_t i = 0; i < h.size(); ++i) h[i] = std::numeric_limits<float>::quiet_NaN();
  return to_device(h);
}

// Runs every function of Op on the reference and on cuda with the same random inputs and compares.
template <class Op>
void check_against_reference(const Op& op, const shape& x_shape, const shape& w_shape, bool with_bias,
                             std::uint64_t seed) {
  constexpr int rank = Op::dims + 2;
  using on_reference = kernel<Op, backend::reference_f64>;
  using on_cuda = kernel<Op, dev>;
  static_assert(supports<Op, dev>, "cuda must implement the op");

  rng g(seed);
  const shape y_shape = op.output_shape(x_shape, w_shape);
  const shape bias_shape{y_shape[1]};
  const ref_t x = random_tensor(x_shape, g), w = random_tensor(w_shape, g);  // [N, C, ...], weight
  const ref_t bias = random_tensor(bias_shape, g);                            // [OC]
  const ref_t dy = random_tensor(y_shape, g);                                 // [N, OC, ...]
  const oracle_t x_o = to_double(x), w_o = to_double(w), bias_o = to_double(bias), dy_o = to_double(dy);
  const device_t x_d = to_device(x), w_d = to_device(w), bias_d = to_device(bias), dy_d = to_device(dy);
  INFO("x " << x_shape.str() << ", w " << w_shape.str() << ", y " << y_shape.str() << ", bias " << with_bias);

  // The reference divides by the batch size in its bias sums: with an empty batch it gets no bias, and
  // the bias gradient's expected value is the empty sum, 0 (the output itself is empty then).
  const bool reference_bias = with_bias && x_shape[0] > 0;

  // Every function twice on the oracle: on the inputs, and on their absolute values (the magnitudes).
  oracle_t y(y_shape), y_abs(y_shape);
  device_t y_d = nan_device(y_shape);
  on_reference::forward(op, x_o.view<rank>(), w_o.view<rank>(), reference_bias ? bias_o.data() : nullptr, y.view<rank>());
  const oracle_t x_a = absolute(x_o), w_a = absolute(w_o), bias_a = absolute(bias_o), dy_a = absolute(dy_o);
  on_reference::forward(op, x_a.view<rank>(), w_a.view<rank>(), reference_bias ? bias_a.data() : nullptr, y_abs.view<rank>());
  on_cuda::forward(op, x_d.view<rank>(), w_d.view<rank>(), with_bias ? bias_d.data() : nullptr, y_d.view<rank>());
  CHECK_MESSAGE(worst_error(y, y_abs, y_d) < tolerance, "forward");

  oracle_t dx(x_shape), dx_abs(x_shape);
  device_t dx_d = nan_device(x_shape);
  on_reference::backward_data(op, dy_o.view<rank>(), w_o.view<rank>(), dx.view<rank>());
  on_reference::backward_data(op, dy_a.view<rank>(), w_a.view<rank>(), dx_abs.view<rank>());
  on_cuda::backward_data(op, dy_d.view<rank>(), w_d.view<rank>(), dx_d.view<rank>());
  CHECK_MESSAGE(worst_error(dx, dx_abs, dx_d) < tolerance, "backward_data");

  oracle_t dw(w_shape), dbias(bias_shape), dw_abs(w_shape), dbias_abs(bias_shape);
  device_t dw_d = nan_device(w_shape), dbias_d = nan_device(bias_shape);
  for (index_t c = 0; c < dbias.size(); ++c) dbias[c] = dbias_abs[c] = 0;
  on_reference::backward_weights(op, x_o.view<rank>(), dy_o.view<rank>(), dw.view<rank>(),
                                 reference_bias ? dbias.data() : nullptr);
  on_reference::backward_weights(op, x_a.view<rank>(), dy_a.view<rank>(), dw_abs.view<rank>(),
                                 reference_bias ? dbias_abs.data() : nullptr);
  on_cuda::backward_weights(op, x_d.view<rank>(), dy_d.view<rank>(), dw_d.view<rank>(),
                            with_bias ? dbias_d.data() : nullptr);
  CHECK_MESSAGE(worst_error(dw, dw_abs, dw_d) < tolerance, "backward_weights");
  if (with_bias) CHECK_MESSAGE(worst_error(dbias, dbias_abs, dbias_d) < tolerance, "bias gradient");
}

ops::conv<2> conv2(int stride, int pad, int dilation) { return {{stride, stride}, {pad, pad}, {dilation, dilation}}; }
ops::conv<3> conv3(int stride, int pad, int dilation) {
  return {{stride, stride, stride}, {pad, pad, pad}, {dilation, dilation, dilation}};
}
ops::conv_transpose<2> transpose2(int stride, int pad, int dilation, int output_pad) {
  return {{stride, stride}, {pad, pad}, {dilation, dilation}, {output_pad, output_pad}};
}
ops::conv_transpose<3> transpose3(int stride, int pad, int dilation, int output_pad) {
  return {{stride, stride, stride}, {pad, pad, pad}, {dilation, dilation, dilation}, {output_pad, output_pad, output_pad}};
}

}  // namespace

TEST_CASE("cuda conv 2D: every function matches the reference") {
  SUBCASE("3x3 pad 1, 3 -> 17 channels") { check_against_reference(conv2(1, 1, 1), {1, 3, 7, 9}, {17, 3, 3, 3}, true, 1); }
  SUBCASE("3x3 stride 2, no padding") { check_against_reference(conv2(2, 0, 1), {2, 5, 13, 11}, {3, 5, 3, 3}, false, 2); }
  SUBCASE("3x3 stride 2 pad 2, 1 -> 70 channels") {
    check_against_reference(conv2(2, 2, 1), {1, 1, 9, 8}, {70, 1, 3, 3}, true, 3);
  }
  SUBCASE("3x3 dilation 2 pad 2") { check_against_reference(conv2(1, 2, 2), {2, 3, 10, 7}, {5, 3, 3, 3}, true, 4); }
  SUBCASE("3x3 dilation 2 stride 2 pad 1") { check_against_reference(conv2(2, 1, 2), {1, 2, 11, 12}, {3, 2, 3, 3}, false, 5); }
  SUBCASE("5x4 stride 3 pad 2: stride phases with two taps, some with one") {
    check_against_reference(conv2(3, 2, 1), {1, 2, 13, 11}, {3, 2, 5, 4}, true, 15);
  }
  SUBCASE("1x1, 17 -> 3 channels") { check_against_reference(conv2(1, 0, 1), {2, 17, 6, 5}, {3, 17, 1, 1}, true, 6); }
  SUBCASE("1x1, 1 -> 1 channel over 130x127 (a density head; the bias gradient sums 16510 values in 2 chunks)") {
    CHECK(cuda_conv_detail::channel_sum_chunks(130 * 127) == 2);
    check_against_reference(conv2(1, 0, 1), {1, 1, 130, 127}, {1, 1, 1, 1}, true, 16);
  }
  SUBCASE("1x1 stride 2 pad 1") { check_against_reference(conv2(2, 1, 1), {1, 3, 7, 9}, {1, 3, 1, 1}, true, 7); }
  SUBCASE("2x2 stride 2 (a learnt downsampling)") { check_against_reference(conv2(2, 0, 1), {1, 3, 8, 6}, {4, 3, 2, 2}, true, 8); }
  SUBCASE("non-square kernel 1x3 with a 3x1 pair of padding") {
    const ops::conv<2> op{{1, 2}, {0, 1}, {1, 1}};
    check_against_reference(op, {1, 2, 5, 9}, {3, 2, 1, 3}, true, 9);
  }
  SUBCASE("medium: 66 -> 66 channels, crosses every tile boundary and splits the weight gradient") {
    // rows 66 > 64, columns 23·22 = 506 > 64, depth 66·9 = 594 > 16; dw's depth 506 = 32 steps.
    CHECK(cuda_conv_detail::gemm_splits(66, 66 * 9, 23 * 22) == 2);
    check_against_reference(conv2(1, 1, 1), {1, 66, 23, 22}, {66, 66, 3, 3}, true, 10);
  }
}

TEST_CASE("cuda conv 3D: every function matches the reference") {
  SUBCASE("3x3x3 pad 1") { check_against_reference(conv3(1, 1, 1), {1, 2, 5, 6, 7}, {3, 2, 3, 3, 3}, true, 11); }
  SUBCASE("2x2x2 stride 2") { check_against_reference(conv3(2, 0, 1), {1, 3, 5, 6, 7}, {4, 3, 2, 2, 2}, false, 12); }
  SUBCASE("3x3x3 dilation 2 pad 2, 1 -> 17 channels") {
    check_against_reference(conv3(1, 2, 2), {1, 1, 4, 5, 6}, {17, 1, 3, 3, 3}, true, 13);
  }
  SUBCASE("1x3x3 (a 2D kernel over a volume), stride 2 pad 1") {
    const ops::conv<3> op{{1, 2, 2}, {0, 1, 1}, {1, 1, 1}};
    check_against_reference(op, {2, 3, 3, 7, 6}, {5, 3, 1, 3, 3}, false, 14);
  }
}

TEST_CASE("cuda conv_transpose 2D: every function matches the reference") {
  SUBCASE("U-Net upsampling: 2x2 stride 2, 17 -> 3 channels") {
    check_against_reference(transpose2(2, 0, 1, 0), {1, 17, 5, 6}, {17, 3, 2, 2}, true, 21);
  }
  SUBCASE("3x3 stride 2 pad 1 output_pad 1") {
    check_against_reference(transpose2(2, 1, 1, 1), {2, 3, 7, 9}, {3, 5, 3, 3}, false, 22);
  }
  SUBCASE("3x3 dilation 2 pad 2, 1 -> 70 channels") {
    check_against_reference(transpose2(1, 2, 2, 0), {1, 1, 6, 5}, {1, 70, 3, 3}, true, 23);
  }
  SUBCASE("4x4 stride 2 pad 1 (the other common upsampling)") {
    check_against_reference(transpose2(2, 1, 1, 0), {1, 3, 5, 4}, {3, 2, 4, 4}, true, 26);
  }
  SUBCASE("3x3 stride 3 dilation 2 output_pad 2") {
    check_against_reference(transpose2(3, 0, 2, 2), {1, 2, 4, 3}, {2, 3, 3, 3}, false, 27);
  }
  SUBCASE("1x1 stride 1") { check_against_reference(transpose2(1, 0, 1, 0), {2, 5, 4, 7}, {5, 3, 1, 1}, true, 24); }
  SUBCASE("medium: 2x2 stride 2, 70 -> 70 channels") {
    check_against_reference(transpose2(2, 0, 1, 0), {2, 70, 9, 10}, {70, 70, 2, 2}, true, 25);
  }
}

TEST_CASE("cuda conv_transpose 3D: every function matches the reference") {
  SUBCASE("2x2x2 stride 2") { check_against_reference(transpose3(2, 0, 1, 0), {1, 4, 3, 4, 5}, {4, 2, 2, 2, 2}, true, 31); }
  SUBCASE("3x3x3 stride 2 pad 1 output_pad 1") {
    check_against_reference(transpose3(2, 1, 1, 1), {1, 2, 3, 3, 4}, {2, 3, 3, 3, 3}, false, 32);
  }
}

TEST_CASE("cuda conv: empty batches and channel counts (the cudnn backend hands these to cuda)") {
  SUBCASE("batch 0") { check_against_reference(conv2(1, 1, 1), {0, 3, 5, 4}, {2, 3, 3, 3}, true, 41); }
  SUBCASE("0 input channels: y is the bias, dw is empty") {
    check_against_reference(conv2(1, 1, 1), {1, 0, 5, 4}, {2, 0, 3, 3}, true, 42);
  }
  SUBCASE("0 output channels: dx is zero") { check_against_reference(conv3(2, 0, 1), {1, 2, 4, 4, 5}, {0, 2, 2, 2, 2}, true, 43); }
  SUBCASE("transposed, 0 input channels: y is the bias") {
    check_against_reference(transpose2(2, 0, 1, 0), {2, 0, 3, 4}, {0, 3, 2, 2}, true, 44);
  }
  SUBCASE("transposed, batch 0") { check_against_reference(transpose3(2, 0, 1, 0), {0, 2, 2, 2, 2}, {2, 3, 2, 2, 2}, true, 45); }
}

TEST_CASE("cuda conv: the reduction splits depend on the shape only") {
  // A small grid of tiles with a long depth is split; a wide grid or a short depth is not.
  CHECK(cuda_conv_detail::gemm_splits(64, 64, 16 * 1024) == 64);
  CHECK(cuda_conv_detail::gemm_splits(64, 64, 16 * 31) == 1);
  CHECK(cuda_conv_detail::gemm_splits(64 * 16, 64 * 16, 1 << 20) == 1);
  // Every split is non-empty: 40 steps at 16 per split are 2 splits (not 3 with an empty one).
  CHECK(cuda_conv_detail::gemm_splits(64, 64, 16 * 40) == 2);
  // The bias gradient: one chunk per 16 Ki values, at most 64.
  CHECK(cuda_conv_detail::channel_sum_chunks(0) == 1);
  CHECK(cuda_conv_detail::channel_sum_chunks(16 * 1024) == 1);
  CHECK(cuda_conv_detail::channel_sum_chunks(16 * 1024 + 1) == 2);
  CHECK(cuda_conv_detail::channel_sum_chunks(std::int64_t(1) << 30) == 64);
}

TEST_CASE("cuda conv: division by multiplication is exact for every 31-bit numerator") {
  rng g(41);
  for (int d = 1; d <= 600; ++d) {
    const auto divisor = cuda_conv_detail::int_divisor::of(d);
    for (int x : {0, 1, d - 1, d, d + 1, 2 * d - 1, std::numeric_limits<int>::max(), std::numeric_limits<int>::max() - d})
      REQUIRE(divisor.div(x) == x / d);
    for (int trial = 0; trial < 200; ++trial) {
      const int x = static_cast<int>(g.uniform(0, 2147483647.0));
      REQUIRE(divisor.div(x) == x / d);
    }
  }
  for (const int d : {65535, 65536, 1 << 20, 1000003, (1 << 30) + 1, std::numeric_limits<int>::max()}) {
    const auto divisor = cuda_conv_detail::int_divisor::of(d);
    for (const int x : {d - 1, d, std::numeric_limits<int>::max(), 123456789})
      REQUIRE(divisor.div(x) == x / d);
  }
}

TEST_CASE("cuda conv: mismatched views are readable errors") {
  using conv_on_cuda = kernel<ops::conv<2>, dev>;
  using transpose_on_cuda = kernel<ops::conv_transpose<2>, dev>;
  const device_t x(shape{1, 3, 8, 8}), w(shape{4, 3, 3, 3});
  device_t y(shape{1, 4, 8, 8});  // a 3x3 convolution without padding gives 6x6
  const auto wrong_output = [&] { conv_on_cuda::forward({}, x.view<4>(), w.view<4>(), nullptr, y.view<4>()); };
  CHECK_THROWS_WITH_AS(wrong_output(), doctest::Contains("gives [1, 4, 6, 6]"), microcount::error);
  device_t dw(shape{4, 3, 3, 3});
  // A transposed convolution of 3 channels needs a weight [3, OC, ...], not [4, 3, ...].
  const auto wrong_weight = [&] { transpose_on_cuda::backward_weights({}, x.view<4>(), x.view<4>(), dw.view<4>(), nullptr); };
  CHECK_THROWS_WITH_AS(wrong_weight(), doctest::Contains("channels but the weight expects"), microcount::error);
}
