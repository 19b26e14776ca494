// backend::cudnn against the reference backend (runs only on a GPU: main.cu skips without one).
// Convolutions 2D/3D and transposed, every function, on random odd shapes with strides, pads and
// dilations; batch normalisation in its three cuDNN-backed functions, with and without γ/β, including the
// running statistics (momentum convention, unbiased variance); the ops cudnn takes from cuda; errors.
#include <doctest/doctest.h>

#include <array>
#include <string>

#include "cuda_test_support.hpp"
#include "microcount/backends/cudnn.hpp"

using namespace cuda_test;

namespace {

using dnn = backend::cudnn;
using dnn_t = tensor<float, dnn>;

dnn_t to_cudnn(const ref_t& h) {
  dnn_t d(h.shape());
  d.upload(h.data());
  return d;
}
ref_t from_cudnn(const dnn_t& d) {
  ref_t h(d.shape());
  d.download(h.data());
  return h;
}

// cuDNN's heuristics may pick FFT or Winograd algorithms, whose rounding differs from a direct sum by
// more than reordering alone: 1e-4 relative (FP32 arithmetic: settings().allow_tf32 is false).
constexpr double conv_tolerance = 1e-4;

struct conv_case {
  index_t n, ic, oc, size;
  int k, stride, pad, dilation;
};

template <int Dims>
shape spatial_shape(index_t a, index_t b, index_t s) {
  if constexpr (Dims == 2) return shape{a, b, s, s + 2};        // non-square: catches swapped axes
  else return shape{a, b, s - 1, s, s + 1};
}

template <int Dims>
void check_conv(const conv_case& c, rng& g) {
  constexpr int rank = Dims + 2;
  using R = kernel<ops::conv<Dims>, ref>;
  using D = kernel<ops::conv<Dims>, dnn>;
  ops::conv<Dims> op;
  op.stride = ops::conv<Dims>::filled(c.stride);
  op.pad = ops::conv<Dims>::filled(c.pad);
  op.dilation = ops::conv<Dims>::filled(c.dilation);
  shape ws{c.oc, c.ic, c.k, c.k};
  if constexpr (Dims == 3) ws = shape{c.oc, c.ic, c.k, c.k, c.k};
  const ref_t x = random_tensor(spatial_shape<Dims>(c.n, c.ic, c.size), g);  // [N, IC, in...]
  const ref_t w = random_tensor(ws, g);                                      // [OC, IC, k...]
  const ref_t bias = random_tensor(shape{c.oc}, g);                          // [OC]
  const shape ys = op.output_shape(x.shape(), w.shape());
  const ref_t dy = random_tensor(ys, g);  // [N, OC, out...]
  CAPTURE(x.shape().str());
  CAPTURE(w.shape().str());
  CAPTURE(c.stride);
  CAPTURE(c.pad);
  CAPTURE(c.dilation);

  ref_t y(ys), dx(x.shape()), dw(w.shape()), db(shape{c.oc});
  R::forward(op, x.view<rank>(), w.view<rank>(), bias.data(), y.view<rank>());
  R::backward_data(op, dy.view<rank>(), w.view<rank>(), dx.view<rank>());
  R::backward_weights(op, x.view<rank>(), dy.view<rank>(), dw.view<rank>(), db.data());

  const dnn_t xd = to_cudnn(x), wd = to_cudnn(w), bd = to_cudnn(bias), dyd = to_cudnn(dy);
  dnn_t yd(ys), dxd(x.shape()), dwd(w.shape()), dbd(shape{c.oc});
  D::forward(op, xd.view<rank>(), wd.view<rank>(), bd.data(), yd.view<rank>());
  D::backward_data(op, dyd.view<rank>(), wd.view<rank>(), dxd.view<rank>());
  D::backward_weights(op, xd.view<rank>(), dyd.view<rank>(), dwd.view<rank>(), dbd.data());
  CHECK(worst(y, from_cudnn(yd)) < conv_tolerance);
  CHECK(worst(dx, from_cudnn(dxd)) < conv_tolerance);
  CHECK(worst(dw, from_cudnn(dwd)) < conv_tolerance);
  CHECK(worst(db, from_cudnn(dbd)) < conv_tolerance);

  // Without bias: forward has no bias added, backward_weights leaves dbias alone (null).
  D::forward(op, xd.view<rank>(), wd.view<rank>(), nullptr, yd.view<rank>());
  R::forward(op, x.view<rank>(), w.view<rank>(), nullptr, y.view<rank>());
  CHECK(worst(y, from_cudnn(yd)) < conv_tolerance);
}

template <int Dims>
void check_conv_transpose(index_t n, index_t ic, index_t oc, index_t size, int k, int stride, int pad, int out_pad,
                          rng& g) {
  constexpr int rank = Dims + 2;
  using R = kernel<ops::conv_transpose<Dims>, ref>;
  using D = kernel<ops::conv_transpose<Dims>, dnn>;
  ops::conv_transpose<Dims> op;
  op.stride = ops::conv<Dims>::filled(stride);
  op.pad = ops::conv<Dims>::filled(pad);
  op.output_pad = ops::conv<Dims>::filled(out_pad);
  shape ws{ic, oc, k, k};
  if constexpr (Dims == 3) ws = shape{ic, oc, k, k, k};
  const ref_t x = random_tensor(spatial_shape<Dims>(n, ic, size), g);  // [N, IC, in...]
  const ref_t w = random_tensor(ws, g);                                // [IC, OC, k...]
  const ref_t bias = random_tensor(shape{oc}, g);                      // [OC]
  const shape ys = op.output_shape(x.shape(), w.shape());
  const ref_t dy = random_tensor(ys, g);  // [N, OC, out...]
  CAPTURE(x.shape().str());
  CAPTURE(ys.str());

  ref_t y(ys), dx(x.shape()), dw(w.shape()), db(shape{oc});
  R::forward(op, x.view<rank>(), w.view<rank>(), bias.data(), y.view<rank>());
  R::backward_data(op, dy.view<rank>(), w.view<rank>(), dx.view<rank>());
  R::backward_weights(op, x.view<rank>(), dy.view<rank>(), dw.view<rank>(), db.data());
  const dnn_t xd = to_cudnn(x), wd = to_cudnn(w), bd = to_cudnn(bias), dyd = to_cudnn(dy);
  dnn_t yd(ys), dxd(x.shape()), dwd(w.shape()), dbd(shape{oc});
  D::forward(op, xd.view<rank>(), wd.view<rank>(), bd.data(), yd.view<rank>());
  D::backward_data(op, dyd.view<rank>(), wd.view<rank>(), dxd.view<rank>());
  D::backward_weights(op, xd.view<rank>(), dyd.view<rank>(), dwd.view<rank>(), dbd.data());
  CHECK(worst(y, from_cudnn(yd)) < conv_tolerance);
  CHECK(worst(dx, from_cudnn(dxd)) < conv_tolerance);
  CHECK(worst(dw, from_cudnn(dwd)) < conv_tolerance);
  CHECK(worst(db, from_cudnn(dbd)) < conv_tolerance);
}

}  // namespace

TEST_CASE("cudnn conv<2>: forward, backward_data, backward_weights and dbias match the reference") {
  rng g(51);
  const conv_case cases[] = {
      {2, 3, 5, 9, 3, 1, 1, 1},   // the U-Net's 3×3 "same" convolution, odd sizes
      {1, 4, 6, 11, 3, 2, 0, 1},  // stride 2, no padding: the last row/column is dropped
      {3, 2, 3, 10, 3, 1, 2, 2},  // dilation 2
      {2, 5, 1, 7, 1, 1, 0, 1},   // 1×1 head
      {1, 3, 4, 12, 5, 3, 2, 1},  // large kernel, stride 3
  };
  for (const auto& c : cases) check_conv<2>(c, g);
}

TEST_CASE("cudnn conv<3>: forward, backward_data, backward_weights and dbias match the reference") {
  rng g(52);
  const conv_case cases[] = {
      {2, 2, 3, 6, 3, 1, 1, 1},
      {1, 3, 2, 7, 3, 2, 1, 1},
      {1, 2, 2, 8, 2, 1, 0, 2},
  };
  for (const auto& c : cases) check_conv<3>(c, g);
}

TEST_CASE("cudnn conv_transpose<2>/<3>: the U-Net's 2×2 stride-2 up-convolution and odd geometries") {
  rng g(53);
  check_conv_transpose<2>(2, 6, 3, 5, 2, 2, 0, 0, g);
  check_conv_transpose<2>(1, 3, 4, 7, 3, 2, 1, 1, g);
  check_conv_transpose<3>(1, 4, 2, 4, 2, 2, 0, 0, g);
}

TEST_CASE("cudnn conv: a wrong output shape is an error naming the call") {
  ops::conv<2> op;
  op.pad = {1, 1};
  dnn_t x(shape{1, 2, 8, 8}), w(shape{3, 2, 3, 3}), y(shape{1, 3, 7, 8});
  using D = kernel<ops::conv<2>, dnn>;
  CHECK_THROWS_WITH_AS(D::forward(op, x.view<4>(), w.view<4>(), nullptr, y.view<4>()),
                       doctest::Contains("forward: input [1, 2, 8, 8] and weight [3, 2, 3, 3] make output [1, 3, 8, 8]"),
                       microcount::error);
}

TEST_CASE("cudnn: a failing call becomes microcount::error quoting the call and cuDNN's status text") {
  CHECK_THROWS_WITH_AS(MICROCOUNT_CUDNN_CHECK(CUDNN_STATUS_BAD_PARAM),
                       doctest::Contains(doctest::String((std::string("CUDNN_STATUS_BAD_PARAM failed: ") +
                                                          cudnnGetErrorString(CUDNN_STATUS_BAD_PARAM)).c_str())),
                       microcount::error);
}

TEST_CASE("cudnn batch_norm: training forward (output, saved and running statistics), inference, backward") {
  using R = kernel<ops::batch_norm, ref>;
  using D = kernel<ops::batch_norm, dnn>;
  rng g(54);
  struct bn_case {
    index_t n, c, s;
    bool affine;
  };
  for (const bn_case bc : {bn_case{2, 3, 37, true}, bn_case{4, 5, 9, false}, bn_case{1, 2, 64, true}}) {
    CAPTURE(bc.n);
    CAPTURE(bc.c);
    CAPTURE(bc.s);
    ops::batch_norm op;
    op.momentum = 0.3;  // not the default, so a swapped convention (factor vs 1 − factor) shows
    const shape xs{bc.n, bc.c, bc.s};
    const ref_t x = random_tensor(xs, g, -2, 3);  // [N, C, S], mean away from 0
    const ref_t dy = random_tensor(xs, g);        // [N, C, S]
    const ref_t gamma = random_tensor(shape{bc.c}, g, 0.5, 1.5), beta = random_tensor(shape{bc.c}, g);  // [C]
    const ref_t rm0 = random_tensor(shape{bc.c}, g), rv0 = random_tensor(shape{bc.c}, g, 0.5, 2);        // [C]

    ref_t y(xs), mean(shape{bc.c}), invstd(shape{bc.c}), rm = rm0.clone(), rv = rv0.clone();
    const float* gp = bc.affine ? gamma.data() : nullptr;
    const float* bp = bc.affine ? beta.data() : nullptr;
    R::forward_training(op, x.view<3>(), gp, bp, y.view<3>(), mean.data(), invstd.data(), rm.data(), rv.data());

    const dnn_t xd = to_cudnn(x), dyd = to_cudnn(dy), gd = to_cudnn(gamma), bd = to_cudnn(beta);
    dnn_t yd(xs), meand(shape{bc.c}), invstdd(shape{bc.c}), rmd = to_cudnn(rm0), rvd = to_cudnn(rv0);
    const float* gdp = bc.affine ? gd.data() : nullptr;
    const float* bdp = bc.affine ? bd.data() : nullptr;
    D::forward_training(op, xd.view<3>(), gdp, bdp, yd.view<3>(), meand.data(), invstdd.data(), rmd.data(), rvd.data());
    CHECK(worst(y, from_cudnn(yd)) < 1e-4);
    CHECK(worst(mean, from_cudnn(meand)) < 1e-5);
    CHECK(worst(invstd, from_cudnn(invstdd)) < 1e-4);
    CHECK(worst(rm, from_cudnn(rmd)) < 1e-5);
    CHECK(worst(rv, from_cudnn(rvd)) < 1e-4);  // unbiased variance, momentum on the batch side

    // Inference with the updated running statistics.
    ref_t yi(xs);
    dnn_t yid(xs);
    R::forward_inference(op, x.view<3>(), gp, bp, rm.data(), rv.data(), yi.view<3>());
    D::forward_inference(op, xd.view<3>(), gdp, bdp, rmd.data(), rvd.data(), yid.view<3>());
    CHECK(worst(yi, from_cudnn(yid)) < 1e-5);

    // Backward from the saved statistics, with and without parameter gradients.
    ref_t dx(xs), dg(shape{bc.c}), db(shape{bc.c});
    R::backward_training(op, x.view<3>(), dy.view<3>(), gp, mean.data(), invstd.data(), dx.view<3>(), dg.data(), db.data());
    dnn_t dxd(xs), dgd(shape{bc.c}), dbd(shape{bc.c});
    D::backward_training(op, xd.view<3>(), dyd.view<3>(), gdp, meand.data(), invstdd.data(), dxd.view<3>(), dgd.data(),
                         dbd.data());
    CHECK(worst(dx, from_cudnn(dxd)) < 1e-4);
    CHECK(worst(dg, from_cudnn(dgd)) < 1e-4);
    CHECK(worst(db, from_cudnn(dbd)) < 1e-4);
    dnn_t dx_only(xs);
    D::backward_training(op, xd.view<3>(), dyd.view<3>(), gdp, meand.data(), invstdd.data(), dx_only.view<3>(), nullptr,
                         nullptr);
    CHECK(worst(dx, from_cudnn(dx_only)) < 1e-4);
  }
}

TEST_CASE("cudnn: ops without a cuDNN kernel are the cuda backend's") {
  // The generic specialisation: same kernel functions as cuda's, for every op cuda implements.
  if constexpr (supports<ops::relu, backend::cuda>) {
    CHECK(supports<ops::relu, dnn>);
    rng g(55);
    const ref_t x = random_tensor(shape{1000}, g);
    ref_t y(shape{1000});
    for_each<ref>(x.size(), ops::relu::forward_body{}, y.data(), x.data());
    const dnn_t xd = to_cudnn(x);
    dnn_t yd(shape{1000});
    for_each<dnn>(xd.size(), ops::relu::forward_body{}, yd.data(), static_cast<const float*>(xd.data()));
    CHECK(worst(y, from_cudnn(yd)) == 0);
  }
  CHECK(supports<ops::conv<2>, dnn>);
  CHECK(supports<ops::batch_norm, dnn>);
}
