// Every cpu layer kernel against the reference backend, on random data and shapes with odd sizes, SIMD
// tails, block and chunk boundaries; exact where the arithmetic is the same (pooling, copies, masks),
// within float tolerance where SIMD reorders sums. Also: cpu results do not change with the thread count.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "microcount/backends/cpu/activation.hpp"
#include "microcount/backends/cpu/misc.hpp"
#include "microcount/backends/cpu/norm.hpp"
#include "microcount/backends/cpu/pool.hpp"
#include "microcount/backends/cpu/resample.hpp"
#include "microcount/backends/reference.hpp"
#include "microcount/core/rng.hpp"

using namespace microcount;

namespace {
using ref = backend::reference;
using cpu = backend::cpu;
using ref_t = tensor<float, ref>;
using cpu_t = tensor<float, cpu>;

// The same random values in a reference and a cpu tensor.
struct pair_t {
  ref_t r;
  cpu_t c;
};
pair_t random_pair(const shape& s, rng& g, double lo = -1, double hi = 1) {
  pair_t p{ref_t(s), cpu_t(s)};
  for (index_t i = 0; i < p.r.size(); ++i) p.r[i] = p.c[i] = static_cast<float>(g.uniform(lo, hi));
  return p;
}
pair_t empty_pair(const shape& s) { return {ref_t::zeros(s), cpu_t::zeros(s)}; }

// max |a − b| / (1 + |a|) over all elements; 0 means identical.
template <class A, class B>
double worst(const A& a, const B& b) {
  REQUIRE(a.size() == b.size());
  double w = 0;
  for (index_t i = 0; i < a.size(); ++i) {
    if (std::isnan(a[i]) || std::isnan(b[i])) return (std::isnan(a[i]) && std::isnan(b[i])) ? w : INFINITY;
    w = std::max(w, std::abs(double(a[i]) - double(b[i])) / (1.0 + std::abs(double(a[i]))));
  }
  return w;
}
template <class B>
tensor_view<const float, 3> cv(const tensor<float, B>& t) {
  return tensor_view<const float, 3>::contiguous(t.data(), {t.dim(0), t.dim(1), t.shape().size_from(2)});
}
template <class B>
tensor_view<float, 3> mv(tensor<float, B>& t) {
  return tensor_view<float, 3>::contiguous(t.data(), {t.dim(0), t.dim(1), t.shape().size_from(2)});
}

// Runs f() once with one thread and once with the default count; restores the default.
template <class F>
void with_one_thread(F&& f) {
  const int threads = max_threads();
  set_threads(1);
  f();
  set_threads(threads);
}
}  // namespace

TEST_CASE("cpu batch_norm equals reference (training, evaluation, backward; odd sizes, large planes, large mean)") {
  rng g(101);
  struct setup { shape s; double offset; };
  for (const setup& t : {setup{{3, 5, 7, 9}, 0}, setup{{2, 3, 1, 1}, 0}, setup{{1, 4, 33, 17}, 0},
                         setup{{2, 6, 64, 70}, 0}, setup{{4, 3, 21, 23}, 1000}, setup{{2, 2, 3, 4, 5}, -3}}) {
    CAPTURE(t.s.str());
    const index_t c = t.s[1];
    auto x = random_pair(t.s, g, t.offset - 2, t.offset + 2);
    auto dy = random_pair(t.s, g);
    auto gamma = random_pair({c}, g, 0.5, 2), beta = random_pair({c}, g);
    auto rm_r = random_pair({c}, g), rv_r = random_pair({c}, g, 0.5, 2);
    ops::batch_norm op;
    // training forward
    auto y = empty_pair(t.s);
    auto mean = empty_pair({c}), invstd = empty_pair({c});
    kernel<ops::batch_norm, ref>::forward_training(op, cv(x.r), gamma.r.data(), beta.r.data(), mv(y.r), mean.r.data(),
                                                   invstd.r.data(), rm_r.r.data(), rv_r.r.data());
    kernel<ops::batch_norm, cpu>::forward_training(op, cv(x.c), gamma.c.data(), beta.c.data(), mv(y.c), mean.c.data(),
                                                   invstd.c.data(), rm_r.c.data(), rv_r.c.data());
    CHECK(worst(y.r, y.c) < 2e-5);
    CHECK(worst(mean.r, mean.c) < 1e-6);
    CHECK(worst(invstd.r, invstd.c) < 1e-4);
    CHECK(worst(rm_r.r, rm_r.c) < 1e-6);
    CHECK(worst(rv_r.r, rv_r.c) < 1e-4);
    // training backward
    auto dx = empty_pair(t.s), dgamma = empty_pair({c}), dbeta = empty_pair({c});
    kernel<ops::batch_norm, ref>::backward_training(op, cv(x.r), cv(dy.r), gamma.r.data(), mean.r.data(),
                                                    invstd.r.data(), mv(dx.r), dgamma.r.data(), dbeta.r.data());
    kernel<ops::batch_norm, cpu>::backward_training(op, cv(x.c), cv(dy.c), gamma.c.data(), mean.c.data(),
                                                    invstd.c.data(), mv(dx.c), dgamma.c.data(), dbeta.c.data());
    CHECK(worst(dx.r, dx.c) < 1e-4);
    CHECK(worst(dgamma.r, dgamma.c) < 1e-4);
    CHECK(worst(dbeta.r, dbeta.c) < 1e-5);
    // evaluation forward and backward
    kernel<ops::batch_norm, ref>::forward_inference(op, cv(x.r), gamma.r.data(), beta.r.data(), rm_r.r.data(),
                                                    rv_r.r.data(), mv(y.r));
    kernel<ops::batch_norm, cpu>::forward_inference(op, cv(x.c), gamma.c.data(), beta.c.data(), rm_r.c.data(),
                                                    rv_r.c.data(), mv(y.c));
    CHECK(worst(y.r, y.c) < 1e-5);
    kernel<ops::batch_norm, ref>::backward_inference(op, cv(x.r), cv(dy.r), gamma.r.data(), rm_r.r.data(),
                                                     rv_r.r.data(), mv(dx.r), dgamma.r.data(), dbeta.r.data());
    kernel<ops::batch_norm, cpu>::backward_inference(op, cv(x.c), cv(dy.c), gamma.c.data(), rm_r.c.data(),
                                                     rv_r.c.data(), mv(dx.c), dgamma.c.data(), dbeta.c.data());
    CHECK(worst(dx.r, dx.c) < 1e-5);
    CHECK(worst(dgamma.r, dgamma.c) < 1e-4);
    CHECK(worst(dbeta.r, dbeta.c) < 1e-5);
  }
}

TEST_CASE("cpu batch_norm: identical results with one thread and with all") {
  rng g(102);
  const shape s{4, 6, 37, 41};
  auto x = random_pair(s, g), dy = random_pair(s, g);
  auto run = [&](std::vector<float>& out) {
    cpu_t y(s), dx(s), mean({6}), invstd({6}), rm = cpu_t::zeros({6}), rv = cpu_t::zeros({6}), dg({6}), db({6});
    kernel<ops::batch_norm, cpu>::forward_training({}, cv(x.c), nullptr, nullptr, mv(y), mean.data(), invstd.data(),
                                                   rm.data(), rv.data());
    kernel<ops::batch_norm, cpu>::backward_training({}, cv(x.c), cv(dy.c), nullptr, mean.data(), invstd.data(), mv(dx),
                                                    dg.data(), db.data());
    out.assign(y.data(), y.data() + y.size());
    out.insert(out.end(), dx.data(), dx.data() + dx.size());
    out.insert(out.end(), dg.data(), dg.data() + 6);
  };
  std::vector<float> single, all, again;
  with_one_thread([&] { run(single); });
  run(all);
  run(again);
  CHECK(std::memcmp(single.data(), all.data(), sizeof(float) * all.size()) == 0);
  CHECK(std::memcmp(again.data(), all.data(), sizeof(float) * all.size()) == 0);
}

TEST_CASE("cpu group_norm equals reference (affine or not, odd sizes)") {
  rng g(103);
  struct setup { shape s; index_t groups; bool affine; };
  for (const setup& t : {setup{{3, 6, 7, 9}, 2, true}, setup{{2, 4, 1, 1}, 4, true}, setup{{1, 8, 33, 65}, 1, false},
                         setup{{2, 6, 3, 5, 7}, 3, true}}) {
    CAPTURE(t.s.str());
    const index_t c = t.s[1], ng = t.s[0] * t.groups;
    auto x = random_pair(t.s, g, 3, 5), dy = random_pair(t.s, g);
    auto gamma = random_pair({c}, g, 0.5, 2), beta = random_pair({c}, g);
    const float* gr = t.affine ? gamma.r.data() : nullptr;
    const float* gc = t.affine ? gamma.c.data() : nullptr;
    ops::group_norm op{t.groups, 1e-5};
    auto y = empty_pair(t.s), dx = empty_pair(t.s), mean = empty_pair({ng}), invstd = empty_pair({ng});
    auto dgamma = empty_pair({c}), dbeta = empty_pair({c});
    kernel<ops::group_norm, ref>::forward(op, cv(x.r), gr, t.affine ? beta.r.data() : nullptr, mv(y.r), mean.r.data(),
                                          invstd.r.data());
    kernel<ops::group_norm, cpu>::forward(op, cv(x.c), gc, t.affine ? beta.c.data() : nullptr, mv(y.c), mean.c.data(),
                                          invstd.c.data());
    CHECK(worst(y.r, y.c) < 2e-5);
    CHECK(worst(mean.r, mean.c) < 1e-6);
    kernel<ops::group_norm, ref>::backward(op, cv(x.r), cv(dy.r), gr, mean.r.data(), invstd.r.data(), mv(dx.r),
                                           dgamma.r.data(), dbeta.r.data());
    kernel<ops::group_norm, cpu>::backward(op, cv(x.c), cv(dy.c), gc, mean.c.data(), invstd.c.data(), mv(dx.c),
                                           dgamma.c.data(), dbeta.c.data());
    CHECK(worst(dx.r, dx.c) < 1e-4);
    CHECK(worst(dgamma.r, dgamma.c) < 1e-4);
    CHECK(worst(dbeta.r, dbeta.c) < 1e-5);
  }
}

TEST_CASE("cpu relu, leaky_relu, sigmoid equal reference (SIMD body, scalar tail)") {
  rng g(104);
  for (index_t n : {1, 15, 16, 17, 1000, 70001}) {
    auto x = random_pair({n}, g, -8, 8), dy = random_pair({n}, g);
    auto y = empty_pair({n}), dx = empty_pair({n});
    auto run = [&](auto op) {
      using Op = decltype(op);
      kernel<Op, ref>::forward(op, n, x.r.data(), y.r.data());
      kernel<Op, cpu>::forward(op, n, x.c.data(), y.c.data());
      CHECK(worst(y.r, y.c) < 1e-6);
      const float* saved_r = Op::saves_output ? y.r.data() : x.r.data();
      const float* saved_c = Op::saves_output ? y.c.data() : x.c.data();
      kernel<Op, ref>::backward(op, n, saved_r, dy.r.data(), dx.r.data());
      kernel<Op, cpu>::backward(op, n, saved_c, dy.c.data(), dx.c.data());
      CHECK(worst(dx.r, dx.c) < 1e-6);
    };
    run(ops::relu{});
    run(ops::leaky_relu{0.1});
    run(ops::sigmoid{});
  }
}

TEST_CASE("cpu softmax equals reference (one channel, chunk boundaries, big logits)") {
  rng g(105);
  for (const shape& s : {shape{2, 3, 5, 7}, shape{1, 1, 17, 3}, shape{3, 4, 4100}, shape{2, 5, 3, 9, 11}}) {
    CAPTURE(s.str());
    auto x = random_pair(s, g, -30, 30), dy = random_pair(s, g);
    auto y = empty_pair(s), dx = empty_pair(s);
    kernel<ops::softmax, ref>::forward({}, cv(x.r), mv(y.r));
    kernel<ops::softmax, cpu>::forward({}, cv(x.c), mv(y.c));
    CHECK(worst(y.r, y.c) < 1e-6);
    kernel<ops::softmax, ref>::backward({}, cv(y.r), cv(dy.r), mv(dx.r));
    kernel<ops::softmax, cpu>::backward({}, cv(y.c), cv(dy.c), mv(dx.c));
    CHECK(worst(dx.r, dx.c) < 1e-6);
  }
}

TEST_CASE("cpu max_pool equals reference exactly (values, argmax, gradients; 2D and 3D windows)") {
  rng g(106);
  auto check = [&](auto op, const shape& s) {
    using Op = decltype(op);
    constexpr int rank = Op::dims + 2;
    CAPTURE(s.str());
    const shape out = op.output_shape(s);
    auto x = random_pair(s, g), dy = random_pair(out, g);
    auto y = empty_pair(out), dx = empty_pair(s);
    std::vector<std::int32_t> arg_r(out.size()), arg_c(out.size());
    kernel<Op, ref>::forward(op, x.r.template view<rank>(), y.r.template view<rank>(), arg_r.data());
    kernel<Op, cpu>::forward(op, x.c.template view<rank>(), y.c.template view<rank>(), arg_c.data());
    CHECK(worst(y.r, y.c) == 0);
    CHECK(arg_r == arg_c);
    kernel<Op, cpu>::forward(op, x.c.template view<rank>(), y.c.template view<rank>(), nullptr);  // inference path
    CHECK(worst(y.r, y.c) == 0);
    kernel<Op, ref>::backward(op, dy.r.template view<rank>(), arg_r.data(), dx.r.template view<rank>());
    kernel<Op, cpu>::backward(op, dy.c.template view<rank>(), arg_c.data(), dx.c.template view<rank>());
    CHECK(worst(dx.r, dx.c) == 0);
  };
  check(ops::max_pool<2>{}, {3, 5, 33, 47});
  check(ops::max_pool<2>{{3, 3}, {2, 1}}, {2, 3, 9, 8});
  check(ops::max_pool<2>{{2, 2}, {1, 1}}, {1, 2, 7, 6});
  check(ops::max_pool<3>{{1, 2, 2}, {1, 2, 2}}, {2, 3, 5, 9, 11});
  check(ops::max_pool<3>{{2, 2, 2}, {2, 2, 2}}, {1, 4, 7, 6, 9});
  check(ops::max_pool<3>{{2, 3, 2}, {1, 2, 2}}, {2, 2, 4, 8, 5});
  // Ties and NaN follow the same rules.
  auto x = random_pair({1, 2, 4, 6}, g);
  for (index_t i = 0; i < 24; ++i) x.r[i] = x.c[i] = float(i % 3);
  x.r[7] = x.c[7] = NAN;
  auto y = empty_pair({1, 2, 2, 3});
  std::vector<std::int32_t> arg_r(12), arg_c(12);
  kernel<ops::max_pool<2>, ref>::forward({}, x.r.view<4>(), y.r.view<4>(), arg_r.data());
  kernel<ops::max_pool<2>, cpu>::forward({}, x.c.view<4>(), y.c.view<4>(), arg_c.data());
  CHECK(arg_r == arg_c);
  CHECK(std::isnan(y.c[0]));
}

TEST_CASE("cpu global_avg_pool equals reference") {
  rng g(107);
  for (const shape& s : {shape{3, 5, 7, 9}, shape{2, 3, 1, 1}, shape{1, 2, 3, 100, 70}}) {
    auto x = random_pair(s, g), dy = random_pair({s[0], s[1]}, g);
    auto y = empty_pair({s[0], s[1]}), dx = empty_pair(s);
    kernel<ops::global_avg_pool, ref>::forward({}, cv(x.r), y.r.view<2>());
    kernel<ops::global_avg_pool, cpu>::forward({}, cv(x.c), y.c.view<2>());
    CHECK(worst(y.r, y.c) < 1e-6);
    kernel<ops::global_avg_pool, ref>::backward({}, dy.r.view<2>(), mv(dx.r));
    kernel<ops::global_avg_pool, cpu>::backward({}, dy.c.view<2>(), mv(dx.c));
    CHECK(worst(dx.r, dx.c) < 1e-7);
  }
}

TEST_CASE("cpu upsample equals reference (nearest and linear; 2D, per-frame and full 3D; odd sizes)") {
  rng g(108);
  auto check = [&](auto op, const shape& s) {
    using Op = decltype(op);
    constexpr int rank = Op::dims + 2;
    CAPTURE(s.str());
    CAPTURE(int(op.mode));
    const shape out = op.output_shape(s);
    auto x = random_pair(s, g), dy = random_pair(out, g);
    auto y = empty_pair(out), dx = empty_pair(s);
    kernel<Op, ref>::forward(op, x.r.template view<rank>(), y.r.template view<rank>());
    kernel<Op, cpu>::forward(op, x.c.template view<rank>(), y.c.template view<rank>());
    CHECK(worst(y.r, y.c) < 1e-6);
    kernel<Op, ref>::backward(op, dy.r.template view<rank>(), dx.r.template view<rank>());
    kernel<Op, cpu>::backward(op, dy.c.template view<rank>(), dx.c.template view<rank>());
    CHECK(worst(dx.r, dx.c) < 1e-5);
  };
  for (auto mode : {ops::upsample_mode::nearest, ops::upsample_mode::linear}) {
    check(ops::upsample<2>{{2, 2}, mode}, {2, 3, 13, 17});
    check(ops::upsample<2>{{3, 2}, mode}, {1, 2, 5, 9});
    check(ops::upsample<2>{{1, 3}, mode}, {2, 2, 4, 7});
    check(ops::upsample<2>{{2, 2}, mode}, {1, 1, 1, 1});
    check(ops::upsample<3>{{1, 2, 2}, mode}, {2, 2, 3, 7, 9});
    check(ops::upsample<3>{{2, 2, 2}, mode}, {1, 3, 3, 5, 6});
    check(ops::upsample<3>{{2, 1, 3}, mode}, {1, 2, 4, 3, 5});
  }
}

TEST_CASE("cpu concat and split equal reference exactly (ranks 4 and 5, blocks larger than one copy piece)") {
  rng g(109);
  auto check = [&](const shape& sa, const shape& sb) {
    CAPTURE(sa.str());
    shape sy = sa;
    sy[1] = sa[1] + sb[1];
    auto a = random_pair(sa, g), b = random_pair(sb, g), y = empty_pair(sy);
    auto da = empty_pair(sa), db = empty_pair(sb);
    if (sa.rank == 4) {
      kernel<ops::concat, ref>::forward({}, a.r.view<4>(), b.r.view<4>(), y.r.view<4>());
      kernel<ops::concat, cpu>::forward({}, a.c.view<4>(), b.c.view<4>(), y.c.view<4>());
      kernel<ops::concat, cpu>::backward({}, y.c.view<4>(), da.c.view<4>(), db.c.view<4>());
    } else {
      kernel<ops::concat, ref>::forward({}, a.r.view<5>(), b.r.view<5>(), y.r.view<5>());
      kernel<ops::concat, cpu>::forward({}, a.c.view<5>(), b.c.view<5>(), y.c.view<5>());
      kernel<ops::concat, cpu>::backward({}, y.c.view<5>(), da.c.view<5>(), db.c.view<5>());
    }
    CHECK(worst(y.r, y.c) == 0);
    CHECK(worst(a.r, da.c) == 0);  // split(concat(a, b)) = (a, b)
    CHECK(worst(b.r, db.c) == 0);
  };
  check({2, 3, 5, 7}, {2, 2, 5, 7});
  check({3, 16, 64, 65}, {3, 5, 64, 65});
  check({1, 1, 3, 4, 5}, {1, 7, 3, 4, 5});
}

TEST_CASE("cpu add and dropout equal reference exactly; dropout masks agree for any thread count") {
  rng g(110);
  const index_t n = 100003;
  auto a = random_pair({n}, g), b = random_pair({n}, g), y = empty_pair({n});
  kernel<ops::add, ref>::forward({}, n, a.r.data(), b.r.data(), y.r.data());
  kernel<ops::add, cpu>::forward({}, n, a.c.data(), b.c.data(), y.c.data());
  CHECK(worst(y.r, y.c) == 0);
  kernel<ops::add, ref>::accumulate({}, n, a.r.data(), y.r.data());
  kernel<ops::add, cpu>::accumulate({}, n, a.c.data(), y.c.data());
  CHECK(worst(y.r, y.c) == 0);
  const ops::dropout op{0.3};
  auto mask = empty_pair({n});
  kernel<ops::dropout, ref>::make_mask(op, 42, n, mask.r.data());
  kernel<ops::dropout, cpu>::make_mask(op, 42, n, mask.c.data());
  CHECK(worst(mask.r, mask.c) == 0);
  cpu_t single({n});
  with_one_thread([&] { kernel<ops::dropout, cpu>::make_mask(op, 42, n, single.data()); });
  CHECK(worst(mask.c, single) == 0);
  kernel<ops::dropout, ref>::apply(op, n, a.r.data(), mask.r.data(), y.r.data());
  kernel<ops::dropout, cpu>::apply(op, n, a.c.data(), mask.c.data(), y.c.data());
  CHECK(worst(y.r, y.c) == 0);
}

TEST_CASE("cpu linear (Eigen GEMM) equals reference") {
  rng g(111);
  struct setup { index_t n, in, out; };
  for (const setup& t : {setup{1, 1, 1}, setup{3, 7, 5}, setup{8, 128, 33}}) {
    auto x = random_pair({t.n, t.in}, g), w = random_pair({t.out, t.in}, g), bias = random_pair({t.out}, g);
    auto dy = random_pair({t.n, t.out}, g);
    auto y = empty_pair({t.n, t.out}), dx = empty_pair({t.n, t.in}), dw = empty_pair({t.out, t.in});
    auto db = empty_pair({t.out});
    kernel<ops::linear, ref>::forward({}, x.r.view<2>(), w.r.view<2>(), bias.r.data(), y.r.view<2>());
    kernel<ops::linear, cpu>::forward({}, x.c.view<2>(), w.c.view<2>(), bias.c.data(), y.c.view<2>());
    CHECK(worst(y.r, y.c) < 1e-5);
    kernel<ops::linear, ref>::backward_data({}, dy.r.view<2>(), w.r.view<2>(), dx.r.view<2>());
    kernel<ops::linear, cpu>::backward_data({}, dy.c.view<2>(), w.c.view<2>(), dx.c.view<2>());
    CHECK(worst(dx.r, dx.c) < 1e-5);
    kernel<ops::linear, ref>::backward_weights({}, x.r.view<2>(), dy.r.view<2>(), dw.r.view<2>(), db.r.data());
    kernel<ops::linear, cpu>::backward_weights({}, x.c.view<2>(), dy.c.view<2>(), dw.c.view<2>(), db.c.data());
    CHECK(worst(dw.r, dw.c) < 1e-5);
    CHECK(worst(db.r, db.c) < 1e-5);
  }
}
