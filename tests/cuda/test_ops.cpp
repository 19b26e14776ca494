// Every non-convolution op of backend::cuda against the reference backend (ggml test-backend-ops style):
// the same random inputs on both, every function of the op, shapes with odd extents and borders. Copies,
// masks and pooling must be bit-identical; sums in double are compared at 1e-5 relative (they agree far
// closer, but their order differs).
#include <doctest/doctest.h>

#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "cuda_test_support.hpp"

using namespace cuda_test;

namespace {

constexpr double tolerance = 1e-5;

// Bitwise equality of two host tensors (NaN patterns included).
bool identical(const ref_t& a, const ref_t& b) {
  return a.shape() == b.shape() && (a.size() == 0 || std::memcmp(a.data(), b.data(), sizeof(float) * a.size()) == 0);
}
bool identical(const ref_t& a, const device_t& b) { return identical(a, to_host(b)); }

template <int Rank>
auto cview(const ref_t& t) { return t.view<Rank>(); }
template <int Rank>
auto cview(const device_t& t) { return t.view<Rank>(); }

// A host tensor from values (for small fixed cases).
ref_t from_values(const shape& s, const std::vector<float>& v) {
  ref_t t(s);
  REQUIRE(index_t(v.size()) == t.size());
  for (index_t i = 0; i < t.size(); ++i) t[i] = v[std::size_t(i)];
  return t;
}

}  // namespace

TEST_CASE("cuda ops: relu, leaky_relu, sigmoid forward and backward equal the reference") {
  rng g(11);
  for (const index_t n : {index_t(1), index_t(255), index_t(1031)}) {
    ref_t x = random_tensor({n}, g, -4, 4), dy = random_tensor({n}, g);
    if (n > 3) {  // the borders of each body: exact zeros, huge magnitudes
      x[0] = 0.f;
      x[1] = -100.f;
      x[2] = 100.f;
    }
    const device_t xd = to_device(x), dyd = to_device(dy);
    const auto check = [&](const auto& op_params, auto op_tag) {
      using Op = decltype(op_tag);
      ref_t y({n}), dx({n});
      device_t yd({n}), dxd({n});
      kernel<Op, ref>::forward(op_params, n, x.data(), y.data());
      kernel<Op, dev>::forward(op_params, n, xd.data(), yd.data());
      CHECK(worst(y, yd) <= 1e-6);  // expf on the device may differ from glibc's by an ulp
      const ref_t& saved = Op::saves_output ? y : x;
      const device_t& saved_d = Op::saves_output ? yd : xd;
      kernel<Op, ref>::backward(op_params, n, saved.data(), dy.data(), dx.data());
      kernel<Op, dev>::backward(op_params, n, saved_d.data(), dyd.data(), dxd.data());
      CHECK(worst(dx, dxd) <= 1e-6);
    };
    check(ops::relu{}, ops::relu{});
    check(ops::leaky_relu{0.2}, ops::leaky_relu{});
    check(ops::sigmoid{}, ops::sigmoid{});
    // relu and leaky_relu are exact (no transcendental).
    ref_t y({n});
    device_t yd({n});
    kernel<ops::leaky_relu, ref>::forward({0.03}, n, x.data(), y.data());
    kernel<ops::leaky_relu, dev>::forward({0.03}, n, xd.data(), yd.data());
    CHECK(identical(y, yd));
  }
}

TEST_CASE("cuda ops: softmax over channels, forward and backward") {
  rng g(12);
  for (const shape s : {shape{1, 1, 1}, shape{3, 5, 7}, shape{2, 1, 9}, shape{1, 7, 300}}) {
    ref_t x = random_tensor(s, g, -6, 6), dy = random_tensor(s, g);
    if (s[1] > 2) x[0] = 80.f;  // a large logit: the max subtraction keeps exp finite
    ref_t y(s), dx(s);
    device_t yd(s), dxd(s);
    const device_t xd = to_device(x), dyd = to_device(dy);
    kernel<ops::softmax, ref>::forward({}, x.view<3>(), y.view<3>());
    kernel<ops::softmax, dev>::forward({}, cview<3>(xd), yd.view<3>());
    CHECK(worst(y, yd) <= 1e-6);
    kernel<ops::softmax, ref>::backward({}, cview<3>(y), dy.view<3>(), dx.view<3>());
    const device_t y_same = to_device(y);  // the same y on both sides: backward alone is compared
    kernel<ops::softmax, dev>::backward({}, cview<3>(y_same), cview<3>(dyd), dxd.view<3>());
    CHECK(worst(dx, dxd) <= 1e-6);
  }
}

TEST_CASE("cuda ops: add and accumulate are exact") {
  rng g(13);
  const index_t n = 777;
  const ref_t a = random_tensor({n}, g), b = random_tensor({n}, g);
  ref_t y({n});
  device_t yd({n});
  const device_t ad = to_device(a), bd = to_device(b);
  kernel<ops::add, ref>::forward({}, n, a.data(), b.data(), y.data());
  kernel<ops::add, dev>::forward({}, n, ad.data(), bd.data(), yd.data());
  CHECK(identical(y, yd));
  kernel<ops::add, ref>::accumulate({}, n, a.data(), y.data());
  kernel<ops::add, dev>::accumulate({}, n, ad.data(), yd.data());
  CHECK(identical(y, yd));
}

TEST_CASE("cuda ops: concat of different channel counts, rank 3 to 5, forward and backward are exact") {
  rng g(14);
  const auto run = [&]<int Rank>(const shape& sa, const shape& sb) {
    const ref_t a = random_tensor(sa, g), b = random_tensor(sb, g);
    const shape sy = ops::concat{}.output_shape(sa, sb);
    ref_t y(sy), da(sa), db(sb);
    device_t yd(sy), dad(sa), dbd(sb);
    const device_t ad = to_device(a), bd = to_device(b);
    kernel<ops::concat, ref>::forward<Rank>({}, cview<Rank>(a), cview<Rank>(b), y.view<Rank>());
    kernel<ops::concat, dev>::forward<Rank>({}, cview<Rank>(ad), cview<Rank>(bd), yd.view<Rank>());
    CHECK(identical(y, yd));
    const ref_t dy = random_tensor(sy, g);
    const device_t dyd = to_device(dy);
    kernel<ops::concat, ref>::backward<Rank>({}, cview<Rank>(dy), da.view<Rank>(), db.view<Rank>());
    kernel<ops::concat, dev>::backward<Rank>({}, cview<Rank>(dyd), dad.view<Rank>(), dbd.view<Rank>());
    CHECK(identical(da, dad));
    CHECK(identical(db, dbd));
  };
  run.operator()<3>(shape{3, 1, 5}, shape{3, 4, 5});
  run.operator()<4>(shape{2, 3, 5, 7}, shape{2, 2, 5, 7});
  run.operator()<4>(shape{1, 5, 1, 1}, shape{1, 1, 1, 1});
  run.operator()<5>(shape{2, 2, 3, 3, 5}, shape{2, 3, 3, 3, 5});
  // A mismatched output is refused before any launch.
  const device_t a({2, 3, 4}), b({2, 2, 4});
  device_t wrong({2, 4, 4});
  const auto mismatched = [&] { kernel<ops::concat, dev>::forward<3>({}, cview<3>(a), cview<3>(b), wrong.view<3>()); };
  CHECK_THROWS_AS(mismatched(), microcount::error);
}

TEST_CASE("cuda ops: dropout masks equal the reference bit for bit, apply is exact") {
  rng g(15);
  for (const double p : {0.0, 0.1, 0.5, 0.9, 1.0}) {
    const ops::dropout op{p};
    for (const std::uint64_t key : {std::uint64_t(0), std::uint64_t(0x9e3779b97f4a7c15ull), std::uint64_t(42)}) {
      const index_t n = 1001;
      ref_t mask({n});
      device_t mask_d({n});
      kernel<ops::dropout, ref>::make_mask(op, key, n, mask.data());
      kernel<ops::dropout, dev>::make_mask(op, key, n, mask_d.data());
      CHECK(identical(mask, mask_d));
      const ref_t x = random_tensor({n}, g);
      ref_t y({n});
      device_t yd({n});
      const device_t xd = to_device(x);
      kernel<ops::dropout, ref>::apply(op, n, x.data(), mask.data(), y.data());
      kernel<ops::dropout, dev>::apply(op, n, xd.data(), mask_d.data(), yd.data());
      CHECK(identical(y, yd));
    }
  }
  // Different keys give different masks (the device does not ignore the key).
  device_t m1({64}), m2({64});
  kernel<ops::dropout, dev>::make_mask({0.5}, 1, 64, m1.data());
  kernel<ops::dropout, dev>::make_mask({0.5}, 2, 64, m2.data());
  CHECK_FALSE(identical(to_host(m1), m2));
}

TEST_CASE("cuda ops: linear forward, backward_data, backward_weights (tiled GEMM, ragged tiles)") {
  rng g(16);
  struct dims { index_t n, in, out; bool bias; };
  for (const dims d : {dims{1, 1, 1, true}, dims{3, 17, 5, true}, dims{19, 33, 18, false}, dims{2, 40, 1, true}}) {
    const ref_t x = random_tensor({d.n, d.in}, g), w = random_tensor({d.out, d.in}, g), bias = random_tensor({d.out}, g);
    const ref_t dy = random_tensor({d.n, d.out}, g);
    const device_t xd = to_device(x), wd = to_device(w), bd = to_device(bias), dyd = to_device(dy);
    ref_t y({d.n, d.out}), dx({d.n, d.in}), dw({d.out, d.in}), dbias({d.out});
    device_t yd({d.n, d.out}), dxd({d.n, d.in}), dwd({d.out, d.in}), dbiasd({d.out});
    kernel<ops::linear, ref>::forward({}, cview<2>(x), cview<2>(w), d.bias ? bias.data() : nullptr, y.view<2>());
    kernel<ops::linear, dev>::forward({}, cview<2>(xd), cview<2>(wd), d.bias ? bd.data() : nullptr, yd.view<2>());
    CHECK(worst(y, yd) <= tolerance);
    kernel<ops::linear, ref>::backward_data({}, cview<2>(dy), cview<2>(w), dx.view<2>());
    kernel<ops::linear, dev>::backward_data({}, cview<2>(dyd), cview<2>(wd), dxd.view<2>());
    CHECK(worst(dx, dxd) <= tolerance);
    kernel<ops::linear, ref>::backward_weights({}, cview<2>(x), cview<2>(dy), dw.view<2>(), d.bias ? dbias.data() : nullptr);
    kernel<ops::linear, dev>::backward_weights({}, cview<2>(xd), cview<2>(dyd), dwd.view<2>(),
                                               d.bias ? dbiasd.data() : nullptr);
    CHECK(worst(dw, dwd) <= tolerance);
    if (d.bias) CHECK(worst(dbias, dbiasd) <= tolerance);
  }
  // A closed form: x = 1, w = 1 → every output is in + bias.
  const ref_t ones_x = from_values({2, 3}, {1, 1, 1, 1, 1, 1}), ones_w = from_values({2, 3}, {1, 1, 1, 1, 1, 1});
  const ref_t b = from_values({2}, {0.5f, -1.f});
  device_t y({2, 2});
  const device_t xd = to_device(ones_x), wd = to_device(ones_w), bd = to_device(b);
  kernel<ops::linear, dev>::forward({}, cview<2>(xd), cview<2>(wd), bd.data(), y.view<2>());
  const ref_t yh = to_host(y);
  CHECK(yh[0] == 3.5f);
  CHECK(yh[1] == 2.f);
  CHECK(yh[2] == 3.5f);
  CHECK(yh[3] == 2.f);
}

TEST_CASE("cuda ops: channel_sum (sums and squares) returns the reference's doubles to the host") {
  rng g(17);
  struct layout { index_t outer, channels, inner; };
  for (const layout l : {layout{1, 1, 1}, layout{3, 5, 7}, layout{1, 1, 5000}, layout{2, 3, 1}}) {
    const ref_t x = random_tensor({l.outer, l.channels, l.inner}, g, -2, 3);
    const device_t xd = to_device(x);
    for (const bool squares : {false, true}) {
      std::vector<double> expected(std::size_t(l.channels), -1), got(std::size_t(l.channels), -1);
      kernel<ops::channel_sum, ref>::run({squares}, x.data(), l.outer, l.channels, l.inner, expected.data());
      kernel<ops::channel_sum, dev>::run({squares}, xd.data(), l.outer, l.channels, l.inner, got.data());
      for (std::size_t c = 0; c < got.size(); ++c) CHECK(got[c] == doctest::Approx(expected[c]).epsilon(1e-12));
    }
  }
  // Deterministic: the same call twice gives the same bits.
  const ref_t x = random_tensor({1, 2, 20000}, g);
  const device_t xd = to_device(x);
  double first[2], second[2];
  kernel<ops::channel_sum, dev>::run({false}, xd.data(), 1, 2, 20000, first);
  kernel<ops::channel_sum, dev>::run({false}, xd.data(), 1, 2, 20000, second);
  CHECK(std::memcmp(first, second, sizeof first) == 0);
}

TEST_CASE("cuda ops: batch_norm training/inference forward and backward over N = 1 and N = 3") {
  rng g(18);
  const ops::batch_norm op{1e-5, 0.1};
  for (const shape s : {shape{1, 3, 7}, shape{3, 4, 5}, shape{3, 2, 1}, shape{2, 3, 700}}) {
    const index_t c = s[1];
    ref_t x = random_tensor(s, g, -1, 1);
    for (index_t i = 0; i < x.size(); ++i) x[i] += 50.f;  // a large mean: the two-pass variance stays accurate
    const ref_t dy = random_tensor(s, g), gamma = random_tensor({c}, g, 0.5, 1.5), beta = random_tensor({c}, g);
    ref_t run_mean = random_tensor({c}, g), run_var = random_tensor({c}, g, 0.5, 2);
    const device_t xd = to_device(x), dyd = to_device(dy), gd = to_device(gamma), bd = to_device(beta);
    device_t run_mean_d = to_device(run_mean), run_var_d = to_device(run_var);
    for (const bool affine : {true, false}) {
      const float* gh = affine ? gamma.data() : nullptr;
      const float* bh = affine ? beta.data() : nullptr;
      const float* gdev = affine ? gd.data() : nullptr;
      const float* bdev = affine ? bd.data() : nullptr;
      ref_t y(s), mean({c}), invstd({c});
      device_t yd(s), mean_d({c}), invstd_d({c});
      kernel<ops::batch_norm, ref>::forward_training(op, cview<3>(x), gh, bh, y.view<3>(), mean.data(), invstd.data(),
                                                     run_mean.data(), run_var.data());
      kernel<ops::batch_norm, dev>::forward_training(op, cview<3>(xd), gdev, bdev, yd.view<3>(), mean_d.data(),
                                                     invstd_d.data(), run_mean_d.data(), run_var_d.data());
      CHECK(worst(y, yd) <= tolerance);
      CHECK(worst(mean, mean_d) <= tolerance);
      CHECK(worst(invstd, invstd_d) <= tolerance);
      CHECK(worst(run_mean, run_mean_d) <= tolerance);
      CHECK(worst(run_var, run_var_d) <= tolerance);

      // Backward of training mode from the same saved statistics on both sides.
      const device_t mean_same = to_device(mean), invstd_same = to_device(invstd);
      ref_t dx(s), dgamma({c}), dbeta({c});
      device_t dxd(s), dgamma_d({c}), dbeta_d({c});
      kernel<ops::batch_norm, ref>::backward_training(op, cview<3>(x), cview<3>(dy), gh, mean.data(), invstd.data(),
                                                      dx.view<3>(), dgamma.data(), dbeta.data());
      kernel<ops::batch_norm, dev>::backward_training(op, cview<3>(xd), cview<3>(dyd), gdev, mean_same.data(),
                                                      invstd_same.data(), dxd.view<3>(), dgamma_d.data(), dbeta_d.data());
      CHECK(worst(dx, dxd) <= tolerance);
      CHECK(worst(dgamma, dgamma_d) <= tolerance);
      CHECK(worst(dbeta, dbeta_d) <= tolerance);
      // dgamma / dbeta not wanted: dx alone.
      device_t dx_only(s);
      kernel<ops::batch_norm, dev>::backward_training(op, cview<3>(xd), cview<3>(dyd), gdev, mean_same.data(),
                                                      invstd_same.data(), dx_only.view<3>(), nullptr, nullptr);
      CHECK(identical(to_host(dxd), dx_only));

      // Inference forward and backward with the (now updated) running statistics of the reference.
      const device_t rm = to_device(run_mean), rv = to_device(run_var);
      kernel<ops::batch_norm, ref>::forward_inference(op, cview<3>(x), gh, bh, run_mean.data(), run_var.data(), y.view<3>());
      kernel<ops::batch_norm, dev>::forward_inference(op, cview<3>(xd), gdev, bdev, rm.data(), rv.data(), yd.view<3>());
      CHECK(worst(y, yd) <= tolerance);
      kernel<ops::batch_norm, ref>::backward_inference(op, cview<3>(x), cview<3>(dy), gh, run_mean.data(), run_var.data(),
                                                       dx.view<3>(), dgamma.data(), dbeta.data());
      kernel<ops::batch_norm, dev>::backward_inference(op, cview<3>(xd), cview<3>(dyd), gdev, rm.data(), rv.data(),
                                                       dxd.view<3>(), dgamma_d.data(), dbeta_d.data());
      CHECK(worst(dx, dxd) <= tolerance);
      CHECK(worst(dgamma, dgamma_d) <= tolerance);
      CHECK(worst(dbeta, dbeta_d) <= tolerance);
    }
  }
}

TEST_CASE("cuda ops: group_norm forward and backward, 1 group to one channel per group") {
  rng g(19);
  struct config { shape s; index_t groups; };
  for (const config cfg : {config{{1, 6, 5}, 1}, config{{3, 6, 7}, 3}, config{{2, 4, 1}, 4}, config{{2, 8, 300}, 2}}) {
    const shape& s = cfg.s;
    const index_t c = s[1], stats = s[0] * cfg.groups;
    const ops::group_norm op{cfg.groups, 1e-5};
    ref_t x = random_tensor(s, g, -1, 1);
    for (index_t i = 0; i < x.size(); ++i) x[i] -= 20.f;
    const ref_t dy = random_tensor(s, g), gamma = random_tensor({c}, g, 0.5, 1.5), beta = random_tensor({c}, g);
    const device_t xd = to_device(x), dyd = to_device(dy), gd = to_device(gamma), bd = to_device(beta);
    for (const bool affine : {true, false}) {
      const float* gh = affine ? gamma.data() : nullptr;
      const float* gdev = affine ? gd.data() : nullptr;
      ref_t y(s), mean({stats}), invstd({stats});
      device_t yd(s), mean_d({stats}), invstd_d({stats});
      kernel<ops::group_norm, ref>::forward(op, cview<3>(x), gh, affine ? beta.data() : nullptr, y.view<3>(), mean.data(),
                                            invstd.data());
      kernel<ops::group_norm, dev>::forward(op, cview<3>(xd), gdev, affine ? bd.data() : nullptr, yd.view<3>(),
                                            mean_d.data(), invstd_d.data());
      CHECK(worst(y, yd) <= tolerance);
      CHECK(worst(mean, mean_d) <= tolerance);
      CHECK(worst(invstd, invstd_d) <= tolerance);

      const device_t mean_same = to_device(mean), invstd_same = to_device(invstd);
      ref_t dx(s), dgamma({c}), dbeta({c});
      device_t dxd(s), dgamma_d({c}), dbeta_d({c});
      kernel<ops::group_norm, ref>::backward(op, cview<3>(x), cview<3>(dy), gh, mean.data(), invstd.data(), dx.view<3>(),
                                             dgamma.data(), dbeta.data());
      kernel<ops::group_norm, dev>::backward(op, cview<3>(xd), cview<3>(dyd), gdev, mean_same.data(), invstd_same.data(),
                                             dxd.view<3>(), dgamma_d.data(), dbeta_d.data());
      CHECK(worst(dx, dxd) <= tolerance);
      CHECK(worst(dgamma, dgamma_d) <= tolerance);
      CHECK(worst(dbeta, dbeta_d) <= tolerance);
    }
  }
  device_t x({1, 6, 2}), y({1, 6, 2}), m({4}), v({4});
  const auto indivisible = [&] {  // 6 channels in 4 groups
    kernel<ops::group_norm, dev>::forward({4, 1e-5}, cview<3>(x), nullptr, nullptr, y.view<3>(), m.data(), v.data());
  };
  CHECK_THROWS_AS(indivisible(), microcount::error);
}

namespace {
template <int Dims>
void check_max_pool(const shape& xs, const std::array<int, Dims>& window, const std::array<int, Dims>& stride, rng& g,
                    bool with_ties) {
  constexpr int rank = Dims + 2;
  ops::max_pool<Dims> op;
  op.window = window;
  op.stride = stride;
  ref_t x = random_tensor(xs, g);
  if (with_ties)  // few distinct values: ties must pick the first maximum in scan order
    for (index_t i = 0; i < x.size(); ++i) x[i] = float(int(x[i] * 2));
  if (x.size() > 5) x[5] = std::numeric_limits<float>::quiet_NaN();  // NaN wins its windows
  const shape ys = op.output_shape(xs);
  ref_t y(ys), dx(xs);
  device_t yd(ys), dxd(xs);
  std::vector<std::int32_t> argmax(std::size_t(y.size()), -7), argmax_back(std::size_t(y.size()), -7);
  tensor<std::int32_t, dev> argmax_d(ys);
  const device_t xd = to_device(x);
  kernel<ops::max_pool<Dims>, ref>::forward(op, cview<rank>(x), y.view<rank>(), argmax.data());
  kernel<ops::max_pool<Dims>, dev>::forward(op, cview<rank>(xd), yd.view<rank>(), argmax_d.data());
  CHECK(identical(y, yd));
  argmax_d.download(argmax_back.data());
  CHECK(argmax == argmax_back);
  // Without argmax the values are the same.
  device_t y_plain(ys);
  kernel<ops::max_pool<Dims>, dev>::forward(op, cview<rank>(xd), y_plain.view<rank>(), nullptr);
  CHECK(identical(y, y_plain));
  const ref_t dy = random_tensor(ys, g);
  const device_t dyd = to_device(dy);
  kernel<ops::max_pool<Dims>, ref>::backward(op, cview<rank>(dy), argmax.data(), dx.view<rank>());
  kernel<ops::max_pool<Dims>, dev>::backward(op, cview<rank>(dyd), argmax_d.data(), dxd.view<rank>());
  CHECK(identical(dx, dxd));
}
}  // namespace

TEST_CASE("cuda ops: max_pool 2D and 3D on odd extents, overlapping windows, ties and NaN: exact") {
  rng g(20);
  check_max_pool<2>({2, 3, 7, 9}, {2, 2}, {2, 2}, g, false);
  check_max_pool<2>({1, 2, 5, 5}, {3, 3}, {1, 2}, g, true);  // overlapping windows: backward sums
  check_max_pool<2>({3, 1, 4, 11}, {1, 3}, {1, 3}, g, true);
  check_max_pool<2>({1, 1, 2, 2}, {2, 2}, {2, 2}, g, false);
  check_max_pool<3>({2, 2, 5, 6, 7}, {2, 2, 2}, {2, 2, 2}, g, false);
  check_max_pool<3>({1, 2, 3, 5, 5}, {3, 2, 3}, {1, 1, 2}, g, true);
}

TEST_CASE("cuda ops: global_avg_pool forward and backward") {
  rng g(21);
  for (const shape s : {shape{1, 1, 1}, shape{3, 5, 7}, shape{2, 3, 3001}}) {
    const ref_t x = random_tensor(s, g), dy = random_tensor({s[0], s[1]}, g);
    ref_t y({s[0], s[1]}), dx(s);
    device_t yd({s[0], s[1]}), dxd(s);
    const device_t xd = to_device(x), dyd = to_device(dy);
    kernel<ops::global_avg_pool, ref>::forward({}, cview<3>(x), y.view<2>());
    kernel<ops::global_avg_pool, dev>::forward({}, cview<3>(xd), yd.view<2>());
    CHECK(worst(y, yd) <= 1e-6);
    kernel<ops::global_avg_pool, ref>::backward({}, cview<2>(dy), dx.view<3>());
    kernel<ops::global_avg_pool, dev>::backward({}, cview<2>(dyd), dxd.view<3>());
    CHECK(identical(dx, dxd));
  }
}

namespace {
template <int Dims>
void check_upsample(const shape& xs, const std::array<int, Dims>& scale, ops::upsample_mode mode, rng& g) {
  constexpr int rank = Dims + 2;
  ops::upsample<Dims> op;
  op.scale = scale;
  op.mode = mode;
  const shape ys = op.output_shape(xs);
  const ref_t x = random_tensor(xs, g), dy = random_tensor(ys, g);
  ref_t y(ys), dx(xs);
  device_t yd(ys), dxd(xs);
  const device_t xd = to_device(x), dyd = to_device(dy);
  kernel<ops::upsample<Dims>, ref>::forward(op, cview<rank>(x), y.view<rank>());
  kernel<ops::upsample<Dims>, dev>::forward(op, cview<rank>(xd), yd.view<rank>());
  CHECK(identical(y, yd));
  kernel<ops::upsample<Dims>, ref>::backward(op, cview<rank>(dy), dx.view<rank>());
  kernel<ops::upsample<Dims>, dev>::backward(op, cview<rank>(dyd), dxd.view<rank>());
  CHECK(identical(dx, dxd));
}
}  // namespace

TEST_CASE("cuda ops: upsample 2D and 3D, nearest and linear, forward and backward (gather): exact") {
  rng g(22);
  for (const auto mode : {ops::upsample_mode::nearest, ops::upsample_mode::linear}) {
    CAPTURE(int(mode));
    check_upsample<2>({2, 3, 5, 7}, {2, 2}, mode, g);
    check_upsample<2>({1, 2, 1, 3}, {3, 1}, mode, g);  // an extent of 1 and an axis of scale 1
    check_upsample<2>({1, 1, 4, 3}, {1, 4}, mode, g);
    check_upsample<2>({2, 3, 4, 5}, {3, 2}, mode, g);
    check_upsample<3>({1, 2, 3, 4, 5}, {2, 2, 2}, mode, g);
    check_upsample<3>({2, 1, 1, 3, 2}, {2, 3, 1}, mode, g);
  }
  // Nearest 2× of a known plane: every value copied into its 2×2 block.
  const ref_t x = from_values({1, 1, 2, 2}, {1, 2, 3, 4});
  device_t y({1, 1, 4, 4});
  const device_t xd = to_device(x);
  kernel<ops::upsample<2>, dev>::forward({}, cview<4>(xd), y.view<4>());
  const ref_t yh = to_host(y);
  CHECK(yh[0] == 1.f);
  CHECK(yh[3] == 2.f);
  CHECK(yh[12] == 3.f);
  CHECK(yh[15] == 4.f);
}
