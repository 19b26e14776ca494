// cpu backend vs the reference backend for the losses, the sum kernel and the optimizers: odd sizes,
// sizes that span several parallel chunks, NCHW and NCDHW; and the same bits for 1 and 2 threads.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <vector>

#include "microcount/backends/cpu/launch.hpp"
#include "microcount/backends/cpu/loss.hpp"
#include "microcount/backends/reference/launch.hpp"
#include "microcount/backends/reference/loss.hpp"
#include "microcount/core/rng.hpp"
#include "microcount/nn/loss.hpp"
#include "microcount/nn/optim.hpp"

using namespace microcount;

namespace {

using ref = backend::reference;
using cpu = backend::cpu;

template <class B>
tensor<float, B> copy_to(const tensor<float, ref>& t) {
  tensor<float, B> out(t.shape());
  for (index_t i = 0; i < t.size(); ++i) out[i] = t[i];
  return out;
}
tensor<float, ref> uniform(const shape& s, rng& r, double lo, double hi) {
  tensor<float, ref> t(s);
  for (index_t i = 0; i < t.size(); ++i) t[i] = static_cast<float>(r.uniform(lo, hi));
  return t;
}

// Element-wise agreement relative to the element and to the largest reference value.
template <class A, class B>
void check_tensors_close(const A& got, const B& want, double relative, const char* what) {
  INFO(what);
  REQUIRE(got.shape() == want.shape());
  double largest = 0;
  for (index_t i = 0; i < want.size(); ++i) largest = std::max(largest, std::abs(static_cast<double>(want[i])));
  index_t bad = 0;
  for (index_t i = 0; i < want.size(); ++i) {
    const double g = got[i], w = want[i];
    if (!(std::abs(g - w) <= relative * (std::abs(w) + 1e-2 * largest))) {
      if (bad++ < 5) FAIL_CHECK("element " << i << ": cpu " << g << " vs reference " << w);
    }
  }
  CHECK(bad == 0);
}

// RAII thread count for one test.
struct thread_count {
  int saved = max_threads();
  explicit thread_count(int n) { set_threads(n); }
  ~thread_count() { set_threads(saved); }
};

}  // namespace

TEST_CASE("channel_sum: cpu equals reference, is exact on integers, and ignores the thread count") {
  rng r(31);
  struct layout { index_t outer, channels, inner; };
  for (const layout& l : {layout{1, 1, 1}, layout{1, 1, 7}, layout{1, 1, 16385}, layout{1, 1, 100003},
                          layout{3, 5, 40001}, layout{8, 3, 5}, layout{2, 7, 1}}) {
    CAPTURE(l.inner);
    const auto x = uniform(shape{l.outer, l.channels, l.inner}, r, -3, 5);
    for (bool squares : {false, true}) {
      std::vector<double> want(l.channels), one(l.channels), two(l.channels);
      kernel<ops::channel_sum, ref>::run(ops::channel_sum{squares}, x.data(), l.outer, l.channels, l.inner, want.data());
      {
        thread_count t(1);
        kernel<ops::channel_sum, cpu>::run(ops::channel_sum{squares}, x.data(), l.outer, l.channels, l.inner, one.data());
      }
      {
        thread_count t(2);
        kernel<ops::channel_sum, cpu>::run(ops::channel_sum{squares}, x.data(), l.outer, l.channels, l.inner, two.data());
      }
      for (index_t c = 0; c < l.channels; ++c) {
        CHECK(one[c] == doctest::Approx(want[c]).epsilon(1e-12));
        CHECK(one[c] == two[c]);  // bit for bit
      }
    }
  }
  // Small integers are summed exactly in double.
  tensor<float, ref> ints({1, 1, 70001});
  double exact = 0;
  for (index_t i = 0; i < ints.size(); ++i) exact += (ints[i] = static_cast<float>(i % 13) - 6.0f);
  double got = 0;
  kernel<ops::channel_sum, cpu>::run(ops::channel_sum{}, ints.data(), 1, 1, ints.size(), &got);
  CHECK(got == exact);
}

TEST_CASE("losses: cpu equals reference (values and gradients), NCHW and NCDHW") {
  rng r(32);
  using fact = nn::focal_loss::activation;
  using tact = nn::tversky_loss::activation;
  for (const shape& s : {shape{3, 4, 37, 41}, shape{2, 3, 5, 7, 9}}) {
    CAPTURE(s.str());
    shape label_shape = s;
    label_shape[1] = 1;
    const auto x = uniform(s, r, -4, 4), soft = uniform(s, r, 0, 1), mask = uniform(s, r, -1, 1);
    auto labels = uniform(label_shape, r, 0, static_cast<double>(s[1]));
    for (index_t i = 0; i < labels.size(); ++i) labels[i] = i % 11 == 3 ? -1.0f : std::floor(labels[i]);

    auto compare = [&](const char* what, const auto& loss, const tensor<float, ref>& target) {
      INFO(what);
      const auto want = loss.evaluate(x, target);
      const auto xc = copy_to<cpu>(x), tc = copy_to<cpu>(target);
      const auto got = loss.evaluate(xc, tc);
      CHECK(got.value == doctest::Approx(want.value).epsilon(1e-5));
      check_tensors_close(got.gradient, want.gradient, 1e-4, what);
      // Same bits with one and two threads.
      nn::loss_result<float, cpu> one, two;
      {
        thread_count t(1);
        one = loss.evaluate(xc, tc);
      }
      {
        thread_count t(2);
        two = loss.evaluate(xc, tc);
      }
      CHECK(one.value == two.value);
      CHECK(std::equal(one.gradient.data(), one.gradient.data() + one.gradient.size(), two.gradient.data()));
    };
    compare("mse", nn::mse_loss{}, soft);
    {
      INFO("masked mse");
      const auto want = nn::mse_loss{}.evaluate(x, soft, mask);
      const auto got = nn::mse_loss{}.evaluate(copy_to<cpu>(x), copy_to<cpu>(soft), copy_to<cpu>(mask));
      CHECK(got.value == doctest::Approx(want.value).epsilon(1e-5));
      check_tensors_close(got.gradient, want.gradient, 1e-4, "masked mse");
    }
    compare("bce", nn::bce_with_logits_loss{}, soft);
    std::vector<double> per_channel(static_cast<std::size_t>(s[1]));
    for (auto& w : per_channel) w = r.uniform(0.5, 3);
    compare("bce per channel", nn::bce_with_logits_loss{per_channel}, soft);
    for (double gamma : {0.0, 0.5, 2.0}) {
      CAPTURE(gamma);
      compare("focal sigmoid", nn::focal_loss{fact::sigmoid, 0.25, gamma, {}}, soft);
      compare("focal softmax labels", nn::focal_loss{fact::softmax, 0.25, gamma, per_channel}, labels);
      compare("focal softmax soft", nn::focal_loss{fact::softmax, 0.25, gamma, {}}, soft);
    }
    compare("tversky softmax labels", nn::tversky_loss{tact::softmax, 0.3, 0.7, 1.0}, labels);
    compare("tversky sigmoid", nn::tversky_loss{tact::sigmoid, 0.5, 0.5, 1.0}, soft);
    const auto probabilities = uniform(s, r, 0.01, 0.99);
    {
      INFO("tversky none");
      const auto want = nn::tversky_loss{tact::none, 0.7, 0.3, 1.0}.evaluate(probabilities, soft);
      const auto got = nn::tversky_loss{tact::none, 0.7, 0.3, 1.0}.evaluate(copy_to<cpu>(probabilities), copy_to<cpu>(soft));
      CHECK(got.value == doctest::Approx(want.value).epsilon(1e-5));
      check_tensors_close(got.gradient, want.gradient, 1e-4, "tversky none");
    }
  }
}

TEST_CASE("optimizers and clip_grad_norm: cpu equals reference over several steps") {
  rng r(33);
  const shape big{16, 8, 11, 13}, small{7};  // 18304 (over one parallel chunk) and a tail-only size
  const auto w0 = uniform(big, r, -1, 1), b0 = uniform(small, r, -1, 1);
  std::vector<tensor<float, ref>> grads_w, grads_b;
  for (int k = 0; k < 4; ++k) grads_w.push_back(uniform(big, r, -2, 2)), grads_b.push_back(uniform(small, r, -2, 2));

  auto run = [&](auto backend_tag, auto make) {
    using B = decltype(backend_tag);
    auto w = copy_to<B>(w0), b = copy_to<B>(b0);
    tensor<float, B> gw(big), gb(small);
    nn::parameter_list<B> ps{{"w", &w, &gw, true}, {"b", &b, &gb, false}};
    auto opt = make(ps);
    std::vector<double> norms;
    for (int k = 0; k < 4; ++k) {
      for (index_t i = 0; i < gw.size(); ++i) gw[i] = grads_w[k][i];
      for (index_t i = 0; i < gb.size(); ++i) gb[i] = grads_b[k][i];
      norms.push_back(nn::clip_grad_norm(ps, 60.0));
      opt.step();
    }
    return std::make_tuple(std::move(w), std::move(b), norms);
  };
  auto compare = [&](const char* what, auto make_ref, auto make_cpu) {
    INFO(what);
    auto [wr, br, nr] = run(ref{}, make_ref);
    auto [wc, bc, nc] = run(cpu{}, make_cpu);
    check_tensors_close(wc, wr, 1e-5, what);
    check_tensors_close(bc, br, 1e-5, what);
    for (std::size_t k = 0; k < nr.size(); ++k) CHECK(nc[k] == doctest::Approx(nr[k]).epsilon(1e-12));
  };
  compare("sgd nesterov", [](auto ps) { return nn::sgd<ref>(ps, {.lr = 0.05, .momentum = 0.9, .weight_decay = 0.01, .nesterov = true}); },
          [](auto ps) { return nn::sgd<cpu>(ps, {.lr = 0.05, .momentum = 0.9, .weight_decay = 0.01, .nesterov = true}); });
  compare("sgd plain", [](auto ps) { return nn::sgd<ref>(ps, {.lr = 0.05, .weight_decay = 0.01}); },
          [](auto ps) { return nn::sgd<cpu>(ps, {.lr = 0.05, .weight_decay = 0.01}); });
  compare("adam", [](auto ps) { return nn::adam<ref>(ps, {.lr = 0.01, .weight_decay = 0.01}); },
          [](auto ps) { return nn::adam<cpu>(ps, {.lr = 0.01, .weight_decay = 0.01}); });
  compare("adamw", [](auto ps) { return nn::adamw<ref>(ps, {.lr = 0.01}); }, [](auto ps) { return nn::adamw<cpu>(ps, {.lr = 0.01}); });
}
