// cpu convolutions against the reference backend: every function of conv<2>, conv<3>, conv_transpose<2>,
// conv_transpose<3> on shapes that exercise every path (direct, flipped direct, direct weights, GEMM with
// im2col, pointwise, kernel == stride) and every border case (odd sizes, SIMD tails, 1 channel, stride 2,
// dilation 2, even kernels, pad 0/1/2/3, batch 1 and 3), the exact U-Net layer shapes at a smaller
// spatial size, the fused epilogue against reference + plain loops, and bit-exact determinism.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "microcount/backends/cpu.hpp"
#include "microcount/backends/reference.hpp"
#include "microcount/core/parallel.hpp"
#include "microcount/core/rng.hpp"

using namespace microcount;

namespace {

// One convolution problem in lifted 3-axis form; the last Dims entries are used.
struct conv_case {
  index_t n, ic, oc;
  std::array<index_t, 3> in, k;
  std::array<int, 3> stride{1, 1, 1}, pad{0, 0, 0}, dil{1, 1, 1}, out_pad{0, 0, 0};
  bool bias = true;
};

std::string describe(const conv_case& c, int dims) {
  std::ostringstream s;
  s << "n" << c.n << " ic" << c.ic << " oc" << c.oc;
  auto axes = [&](const char* name, const auto& v) {
    s << ' ' << name;
    for (int a = 3 - dims; a < 3; ++a) s << ' ' << v[a];
  };
  axes("in", c.in);
  axes("k", c.k);
  axes("stride", c.stride);
  axes("pad", c.pad);
  axes("dilation", c.dil);
  return s.str();
}

std::vector<float> random_vector(index_t n, rng& r) {
  std::vector<float> v(static_cast<std::size_t>(n));
  for (auto& e : v) e = static_cast<float>(r.uniform(-1, 1));
  return v;
}

// max |got − want| / max(1, max |want|): sums are reordered, so errors scale with the largest value.
double relative_error(const std::vector<float>& got, const std::vector<float>& want) {
  REQUIRE(got.size() == want.size());
  double err = 0, scale = 1;
  for (std::size_t i = 0; i < got.size(); ++i) {
    if (!std::isfinite(got[i])) return INFINITY;
    err = std::max(err, static_cast<double>(std::abs(got[i] - want[i])));
    scale = std::max(scale, static_cast<double>(std::abs(want[i])));
  }
  return err / scale;
}

constexpr double tolerance = 1e-4;

template <int Rank>
tensor_view<float, Rank> view_of(std::vector<float>& v, const shape& s) {
  std::array<index_t, Rank> e{};
  for (int i = 0; i < Rank; ++i) e[i] = s[i];
  return tensor_view<float, Rank>::contiguous(v.data(), e);
}
template <int Rank>
tensor_view<const float, Rank> cview_of(const std::vector<float>& v, const shape& s) {
  std::array<index_t, Rank> e{};
  for (int i = 0; i < Rank; ++i) e[i] = s[i];
  return tensor_view<const float, Rank>::contiguous(v.data(), e);
}

template <class Op, int Dims>
Op make_op(const conv_case& c) {
  Op op;
  for (int a = 0; a < Dims; ++a) {
    op.stride[a] = c.stride[3 - Dims + a];
    op.pad[a] = c.pad[3 - Dims + a];
    op.dilation[a] = c.dil[3 - Dims + a];
    if constexpr (requires { op.output_pad; }) op.output_pad[a] = c.out_pad[3 - Dims + a];
  }
  return op;
}

// Compares forward, backward_data and backward_weights (+ bias gradient) of Op on cpu and reference.
// Weight shape: [OC, IC, k...] for conv, [IC, OC, k...] for conv_transpose.
template <class Op, int Dims>
void compare_with_reference(const conv_case& c, rng& r) {
  constexpr int rank = Dims + 2;
  using cpu_k = kernel<Op, backend::cpu>;
  using ref_k = kernel<Op, backend::reference>;
  constexpr bool transposed = !std::is_same_v<Op, ops::conv<Dims>>;
  const Op op = make_op<Op, Dims>(c);
  shape xs{c.n, c.ic}, ws{transposed ? c.ic : c.oc, transposed ? c.oc : c.ic};
  xs.rank = ws.rank = rank;
  for (int a = 0; a < Dims; ++a) {
    xs[2 + a] = c.in[3 - Dims + a];
    ws[2 + a] = c.k[3 - Dims + a];
  }
  const shape ys = op.output_shape(xs, ws);
  const std::string label = describe(c, Dims) + (transposed ? " transposed" : "") + " -> y " + ys.str();
  INFO(label);
  const auto x = random_vector(xs.size(), r), w = random_vector(ws.size(), r), dy = random_vector(ys.size(), r);
  const auto b = random_vector(c.oc, r);
  const float* bias = c.bias ? b.data() : nullptr;

  std::vector<float> y_ref(static_cast<std::size_t>(ys.size())), y_cpu(y_ref.size(), NAN);
  ref_k::forward(op, cview_of<rank>(x, xs), cview_of<rank>(w, ws), bias, view_of<rank>(y_ref, ys));
  cpu_k::forward(op, cview_of<rank>(x, xs), cview_of<rank>(w, ws), bias, view_of<rank>(y_cpu, ys));
  CHECK_MESSAGE(relative_error(y_cpu, y_ref) < tolerance, "forward");

  std::vector<float> dx_ref(static_cast<std::size_t>(xs.size())), dx_cpu(dx_ref.size(), NAN);
  ref_k::backward_data(op, cview_of<rank>(dy, ys), cview_of<rank>(w, ws), view_of<rank>(dx_ref, xs));
  cpu_k::backward_data(op, cview_of<rank>(dy, ys), cview_of<rank>(w, ws), view_of<rank>(dx_cpu, xs));
  CHECK_MESSAGE(relative_error(dx_cpu, dx_ref) < tolerance, "backward_data");

  std::vector<float> dw_ref(static_cast<std::size_t>(ws.size())), dw_cpu(dw_ref.size(), NAN);
  std::vector<float> db_ref(static_cast<std::size_t>(c.oc)), db_cpu(db_ref.size(), NAN);
  ref_k::backward_weights(op, cview_of<rank>(x, xs), cview_of<rank>(dy, ys), view_of<rank>(dw_ref, ws),
                          c.bias ? db_ref.data() : nullptr);
  cpu_k::backward_weights(op, cview_of<rank>(x, xs), cview_of<rank>(dy, ys), view_of<rank>(dw_cpu, ws),
                          c.bias ? db_cpu.data() : nullptr);
  CHECK_MESSAGE(relative_error(dw_cpu, dw_ref) < tolerance, "backward_weights");
  if (c.bias) CHECK_MESSAGE(relative_error(db_cpu, db_ref) < tolerance, "bias gradient");
}

conv_case c2(index_t n, index_t ic, index_t oc, index_t h, index_t w, index_t kh, index_t kw, int s = 1, int p = 0,
             int d = 1, bool bias = true) {
  return conv_case{n, ic, oc, {1, h, w}, {1, kh, kw}, {1, s, s}, {0, p, p}, {1, d, d}, {0, 0, 0}, bias};
}

}  // namespace

TEST_CASE("cpu conv<2>: every function equals the reference (borders, strides, dilation, even kernels)") {
  rng r(11);
  std::vector<conv_case> cases = {
      c2(2, 3, 5, 7, 9, 3, 3, 1, 1),           // odd sizes, 5 outputs (8-wide block), SIMD tail
      c2(1, 1, 1, 5, 5, 3, 3, 1, 0, 1, false),  // 1 channel in and out, no padding
      c2(3, 17, 9, 5, 18, 3, 3, 1, 1),          // 9 outputs: a partial block; batch 3
      c2(1, 3, 2, 3, 40, 3, 3, 1, 1),           // several batches per row, 2-output block
      c2(2, 3, 4, 11, 13, 3, 3, 1, 2, 2),       // dilation 2 (runtime column taps), pad 2
      c2(1, 5, 6, 10, 20, 4, 4, 1, 2),          // even kernel, unit stride
      c2(1, 3, 4, 12, 12, 5, 5, 1, 0),          // 5×5, backward-data padding 4
      c2(2, 2, 3, 7, 7, 3, 3, 1, 0),            // backward-data padding 2
      c2(1, 2, 3, 5, 6, 3, 3, 1, 2),            // pad 2 on a 3×3 (output larger than input)
      c2(1, 2, 2, 4, 5, 3, 3, 1, 3),            // pad 3: backward-data crops (negative padding)
      c2(2, 3, 4, 9, 10, 3, 3, 2, 1),           // stride 2 (im2col + GEMM)
      c2(1, 4, 2, 8, 6, 2, 2, 2, 0),            // kernel == stride (per-pixel GEMM)
      c2(1, 4, 3, 9, 7, 2, 2, 2, 0),            // kernel == stride, odd input (leftover row/column)
      c2(2, 3, 2, 6, 33, 1, 1),                 // pointwise
      c2(1, 2, 3, 6, 6, 1, 1, 1, 1),            // 1×1 with padding (direct)
      c2(1, 3, 4, 16, 16, 3, 3, 1, 1),          // exact SIMD rows
      c2(2, 0, 3, 5, 5, 3, 3, 1, 1),            // no input channels: y = bias, dw empty
      c2(1, 2, 3, 5, 5, 5, 5, 1, 0),            // kernel as large as the input: 1×1 output
      c2(20, 2, 3, 5, 6, 3, 3, 1, 1),           // batch 20: more weight-gradient work units than tasks
      c2(20, 2, 3, 6, 6, 2, 2, 2, 0),           // the same on the GEMM path
  };
  conv_case odd = c2(3, 2, 3, 9, 7, 3, 2, 1, 1, 1);  // mixed: stride 2×1, pad 1×0, dilation 2×1
  odd.stride = {1, 2, 1};
  odd.pad = {0, 1, 0};
  odd.dil = {1, 2, 1};
  cases.push_back(odd);
  conv_case rect = c2(1, 3, 3, 8, 10, 3, 3, 1, 1);  // dilation only along H (3 column taps, direct weights)
  rect.dil = {1, 2, 1};
  rect.pad = {0, 2, 1};
  cases.push_back(rect);
  for (const auto& c : cases) compare_with_reference<ops::conv<2>, 2>(c, r);
}

TEST_CASE("cpu conv<3>: every function equals the reference") {
  rng r(12);
  const std::vector<conv_case> cases = {
      {2, 2, 3, {4, 5, 6}, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}},                            // direct, 27 taps
      {1, 3, 4, {3, 6, 7}, {1, 3, 3}, {1, 1, 1}, {0, 1, 1}},                            // 1×3×3 (2D+t)
      {1, 2, 2, {4, 6, 6}, {2, 2, 2}, {2, 2, 2}, {0, 0, 0}},                            // kernel == stride
      {2, 3, 2, {5, 5, 7}, {3, 3, 3}, {2, 2, 2}, {1, 1, 1}},                            // stride 2 (GEMM)
      {1, 2, 3, {5, 7, 6}, {2, 3, 3}, {1, 1, 1}, {1, 1, 1}, {2, 1, 1}},                  // depth dilation, even depth
      {1, 3, 2, {3, 4, 5}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, {1, 1, 1}, {0, 0, 0}, false},  // pointwise
      {2, 2, 3, {9, 4, 5}, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}},                            // 18 planes > 16 tasks
  };
  for (const auto& c : cases) compare_with_reference<ops::conv<3>, 3>(c, r);
}

TEST_CASE("cpu conv_transpose<2> and <3>: every function equals the reference") {
  rng r(13);
  std::vector<conv_case> cases2 = {
      c2(2, 8, 4, 5, 6, 2, 2, 2, 0),   // the U-Net's up-sampling (exact tiling)
      c2(1, 3, 2, 4, 5, 3, 3, 2, 1),   // overlapping stride 2 (col2im accumulation)
      c2(2, 3, 5, 6, 7, 3, 3, 1, 1),   // unit stride: direct
      c2(1, 2, 3, 5, 5, 4, 4, 2, 1),   // even kernel, stride 2
      c2(1, 3, 2, 5, 4, 3, 3, 1, 0, 2),  // dilation 2
      c2(1, 4, 3, 7, 5, 1, 1),         // pointwise
  };
  cases2[1].out_pad = {0, 1, 1};
  for (const auto& c : cases2) compare_with_reference<ops::conv_transpose<2>, 2>(c, r);
  const std::vector<conv_case> cases3 = {
      {1, 4, 2, {3, 4, 5}, {2, 2, 2}, {2, 2, 2}, {0, 0, 0}},
      {1, 2, 3, {3, 4, 4}, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}},
  };
  for (const auto& c : cases3) compare_with_reference<ops::conv_transpose<3>, 3>(c, r);
}

TEST_CASE("cpu conv: the U-Net's layer shapes (spatial 8/16/32) equal the reference") {
  rng r(14);
  // 3×3, pad 1, no bias: encoder, bottom, and decoder after concatenation (input widths 32/64/128/256).
  struct layer { index_t ic, oc, size, n; };
  // The widest layers run at 8×8 to keep the scalar reference fast; the rest at 16×16 / 32×32 (whole SIMD rows).
  for (const layer& l : {layer{1, 16, 32, 2}, layer{16, 16, 32, 1}, layer{32, 16, 16, 1}, layer{16, 32, 16, 1},
                         layer{32, 32, 16, 1}, layer{64, 32, 16, 1}, layer{32, 64, 16, 1}, layer{64, 64, 8, 1},
                         layer{128, 64, 8, 1}, layer{64, 128, 8, 1}, layer{128, 128, 8, 1}, layer{256, 128, 8, 1}})
    compare_with_reference<ops::conv<2>, 2>(c2(l.n, l.ic, l.oc, l.size, l.size, 3, 3, 1, 1, 1, false), r);
  // 2×2 stride 2 up-sampling with bias, and the 1×1 head with bias.
  for (const layer& l : {layer{128, 64, 16, 1}, layer{64, 32, 16, 2}, layer{32, 16, 16, 2}})
    compare_with_reference<ops::conv_transpose<2>, 2>(c2(l.n, l.ic, l.oc, l.size, l.size, 2, 2, 2, 0), r);
  compare_with_reference<ops::conv<2>, 2>(c2(2, 16, 1, 32, 32, 1, 1), r);
}

namespace {

// forward_fused against the reference forward followed by plain loops.
void check_fused(const conv_case& c, bool scale_shift, bool relu, bool statistics, rng& r) {
  INFO(describe(c, 2), " scale/shift ", scale_shift, " relu ", relu, " statistics ", statistics);
  const ops::conv<2> op = make_op<ops::conv<2>, 2>(c);
  const shape xs{c.n, c.ic, c.in[1], c.in[2]}, ws{c.oc, c.ic, c.k[1], c.k[2]};
  const shape ys = op.output_shape(xs, ws);
  const auto x = random_vector(xs.size(), r), w = random_vector(ws.size(), r), b = random_vector(c.oc, r);
  const auto scale = random_vector(c.oc, r), shift = random_vector(c.oc, r);
  std::vector<float> z(static_cast<std::size_t>(ys.size())), y(z.size(), NAN);
  const float* bias = c.bias ? b.data() : nullptr;
  kernel<ops::conv<2>, backend::reference>::forward(op, cview_of<4>(x, xs), cview_of<4>(w, ws), bias, view_of<4>(z, ys));

  conv_epilogue e;
  std::vector<double> sum(static_cast<std::size_t>(c.oc), -7.0), squares(sum.size(), -7.0);  // overwritten
  if (scale_shift) {
    e.scale = scale.data();
    e.shift = shift.data();
  }
  e.relu = relu;
  if (statistics) {
    e.sum = sum.data();
    e.sum_squares = squares.data();
  }
  kernel<ops::conv<2>, backend::cpu>::forward_fused(op, cview_of<4>(x, xs), cview_of<4>(w, ws), bias, e, view_of<4>(y, ys));

  const index_t spatial = ys[2] * ys[3];
  std::vector<float> want(z.size());
  for (index_t o = 0; o < c.oc; ++o) {
    double s = 0, q = 0, scale_abs = 0;
    for (index_t n = 0; n < c.n; ++n)
      for (index_t i = 0; i < spatial; ++i) {
        const std::size_t at = static_cast<std::size_t>((n * c.oc + o) * spatial + i);
        const double v = z[at];
        s += v;
        q += v * v;
        scale_abs += std::abs(v);
        float t = z[at];
        if (scale_shift) t = t * scale[static_cast<std::size_t>(o)] + shift[static_cast<std::size_t>(o)];
        if (relu) t = std::max(t, 0.0f);
        want[at] = t;
      }
    if (statistics) {
      CHECK(std::abs(sum[static_cast<std::size_t>(o)] - s) <= 1e-4 * std::max(1.0, scale_abs));
      CHECK(std::abs(squares[static_cast<std::size_t>(o)] - q) <= 1e-4 * std::max(1.0, q));
    }
  }
  CHECK(relative_error(y, want) < tolerance);
}

}  // namespace

TEST_CASE("cpu conv forward_fused: scale/shift, ReLU and statistics equal reference + plain loops") {
  rng r(15);
  for (const conv_case& c : {c2(2, 5, 9, 7, 20, 3, 3, 1, 1),          // direct path, SIMD tails, partial block
                             c2(3, 16, 16, 16, 16, 3, 3, 1, 1, 1, false),  // U-Net-like, no bias
                             c2(2, 4, 3, 6, 35, 1, 1),                // pointwise (GEMM path)
                             c2(1, 3, 4, 9, 10, 3, 3, 2, 1)})         // stride 2 (im2col + GEMM)
    for (int mode = 0; mode < 8; ++mode) check_fused(c, mode & 1, mode & 2, mode & 4, r);
}

TEST_CASE("cpu conv: results are bit-identical across runs and thread counts") {
  rng r(16);
  const int threads_before = max_threads();
  struct problem { conv_case c; bool transposed; };
  for (const problem& p : {problem{c2(3, 16, 16, 40, 48, 3, 3, 1, 1), false},  // direct paths
                           problem{c2(3, 1, 16, 37, 20, 3, 3, 1, 1), false},   // 1-channel input: split weights tasks
                           problem{c2(2, 16, 1, 33, 48, 1, 1), false},         // pointwise GEMM
                           problem{c2(1, 6, 5, 19, 21, 3, 3, 2, 1), false},    // im2col GEMM, batch 1
                           problem{c2(1, 64, 64, 32, 32, 1, 1), false},        // one GEMM task: Eigen's own threads
                           problem{c2(2, 32, 16, 24, 24, 2, 2, 2, 0), true}}) {  // up-sampling
    const std::string label = describe(p.c, 2) + (p.transposed ? " transposed" : "");
    INFO(label);
    const conv_case& c = p.c;
    const shape xs{c.n, c.ic, c.in[1], c.in[2]};
    const shape ws = p.transposed ? shape{c.ic, c.oc, c.k[1], c.k[2]} : shape{c.oc, c.ic, c.k[1], c.k[2]};
    const auto x = random_vector(xs.size(), r), w = random_vector(ws.size(), r), b = random_vector(c.oc, r);
    struct results {
      std::vector<std::vector<float>> tensors;  // y, dx, dw, dbias
      std::vector<double> statistics;           // fused forward: sum, sum of squares
    };
    auto run = [&](int threads) {
      set_threads(threads);
      results out;
      auto go = [&](auto op, auto k) {
        using K = decltype(k);
        const shape ys = op.output_shape(xs, ws);
        rng dy_rng(99);
        const auto dy = random_vector(ys.size(), dy_rng);
        std::vector<float> y(static_cast<std::size_t>(ys.size())), dx(static_cast<std::size_t>(xs.size()));
        std::vector<float> dw(static_cast<std::size_t>(ws.size())), db(static_cast<std::size_t>(c.oc));
        K::forward(op, cview_of<4>(x, xs), cview_of<4>(w, ws), b.data(), view_of<4>(y, ys));
        K::backward_data(op, cview_of<4>(dy, ys), cview_of<4>(w, ws), view_of<4>(dx, xs));
        K::backward_weights(op, cview_of<4>(x, xs), cview_of<4>(dy, ys), view_of<4>(dw, ws), db.data());
        out.tensors = {y, dx, dw, db};
        if constexpr (std::is_same_v<K, kernel<ops::conv<2>, backend::cpu>>) {
          out.statistics.assign(static_cast<std::size_t>(2 * c.oc), 0.0);
          conv_epilogue e;
          e.sum = out.statistics.data();
          e.sum_squares = out.statistics.data() + c.oc;
          K::forward_fused(op, cview_of<4>(x, xs), cview_of<4>(w, ws), b.data(), e, view_of<4>(y, ys));
        }
      };
      if (p.transposed)
        go(make_op<ops::conv_transpose<2>, 2>(c), kernel<ops::conv_transpose<2>, backend::cpu>{});
      else
        go(make_op<ops::conv<2>, 2>(c), kernel<ops::conv<2>, backend::cpu>{});
      return out;
    };
    const auto first = run(2), second = run(2), single = run(1);
    set_threads(threads_before);
    REQUIRE(first.tensors.size() == 4);
    for (std::size_t i = 0; i < first.tensors.size(); ++i) {
      CHECK(first.tensors[i] == second.tensors[i]);
      CHECK(first.tensors[i] == single.tensors[i]);
    }
    CHECK(first.statistics == second.statistics);
    CHECK(first.statistics == single.statistics);
  }
}

TEST_CASE("cpu conv: mismatched views are readable errors") {
  std::vector<float> x(2 * 3 * 8 * 8), w(4 * 3 * 3 * 3), y(2 * 4 * 8 * 8);
  const ops::conv<2> op{{1, 1}, {1, 1}, {1, 1}};
  using K = kernel<ops::conv<2>, backend::cpu>;
  // Output that does not match the convolution (pad 1 keeps 8×8; claim 7×7).
  auto bad_y = tensor_view<float, 4>::contiguous(y.data(), {2, 4, 7, 7});
  CHECK_THROWS_WITH_AS(K::forward(op, tensor_view<const float, 4>::contiguous(x.data(), {2, 3, 8, 8}),
                                  tensor_view<const float, 4>::contiguous(w.data(), {4, 3, 3, 3}), nullptr, bad_y),
                       doctest::Contains("gives [2, 4, 8, 8]"), error);
  // Channel mismatch between input and weight.
  CHECK_THROWS_WITH_AS(K::forward(op, tensor_view<const float, 4>::contiguous(x.data(), {2, 3, 8, 8}),
                                  tensor_view<const float, 4>::contiguous(w.data(), {4, 2, 3, 3}), nullptr,
                                  tensor_view<float, 4>::contiguous(y.data(), {2, 4, 8, 8})),
                       doctest::Contains("channels"), error);
  // A strided (non-contiguous) view.
  auto strided = tensor_view<float, 4>::contiguous(y.data(), {2, 4, 8, 4});
  strided.stride[3] = 2;
  CHECK_THROWS_WITH_AS(K::backward_data(op, tensor_view<const float, 4>::contiguous(y.data(), {2, 4, 8, 8}),
                                        tensor_view<const float, 4>::contiguous(w.data(), {4, 3, 3, 3}), strided),
                       doctest::Contains("contiguous"), error);
}

TEST_CASE("cpu conv: horizontal sums of SIMD accumulators (the AVX-512 transposing tree) are exact") {
  using cpu_conv_detail::batch;
  for (int count : {1, 5, 16, 17, 27, 40}) {
    std::vector<batch> rows(static_cast<std::size_t>(count));
    std::vector<float> want(rows.size());
    for (int i = 0; i < count; ++i) {
      alignas(64) float lanes[batch::size];
      want[static_cast<std::size_t>(i)] = 0;
      for (std::size_t j = 0; j < batch::size; ++j) {  // small integers: every sum order is exact
        lanes[j] = static_cast<float>(i * 100 + static_cast<int>(j));
        want[static_cast<std::size_t>(i)] += lanes[j];
      }
      rows[static_cast<std::size_t>(i)] = batch::load_aligned(lanes);
    }
    std::vector<float> got(rows.size(), NAN);
    cpu_conv_detail::horizontal_sums(rows.data(), count, got.data());
    CHECK(got == want);
  }
}
