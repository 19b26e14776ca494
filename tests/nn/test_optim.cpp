// Optimizers: PyTorch's own trajectories (torch.optim, 5 steps, float64), an independent scalar
// transcription of the PyTorch update formulas, convergence on a quadratic, checkpoint state round trips,
// global-norm clipping, bad settings, and a convex fit on real annotations.
#include <doctest/doctest.h>

#include <cmath>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "microcount/backends/reference/conv.hpp"
#include "microcount/backends/reference/launch.hpp"
#include "microcount/backends/reference/loss.hpp"
#include "microcount/core/rng.hpp"
#include "microcount/io/cvat_xml.hpp"
#include "microcount/nn/layers/conv.hpp"
#include "microcount/nn/loss.hpp"
#include "microcount/nn/optim.hpp"
#include "microcount/nn/schedule.hpp"
#include "microcount/target/gaussian.hpp"
#include "test_support.hpp"

using namespace microcount;

namespace {

using f64 = backend::reference_f64;
using tensor64 = tensor<double, f64>;

// Two parameters as in torch_reference.py: p0 (3 values, decayed) and p1 (2 values, not decayed).
struct toy_model {
  tensor64 w{3}, w_grad{3}, b{2}, b_grad{2};
  toy_model() {
    const double w0[] = {0.5, -1.0, 2.0}, b0[] = {0.1, -0.2};
    for (int i = 0; i < 3; ++i) w[i] = w0[i];
    for (int i = 0; i < 2; ++i) b[i] = b0[i];
  }
  nn::parameter_list<f64> parameters() {
    return {nn::parameter<f64>{"w", &w, &w_grad, true}, nn::parameter<f64>{"b", &b, &b_grad, false}};
  }
  // The gradient of Σ (p − 0.3)² + 0.1·k·Σ p at step k.
  void set_gradients(int k) {
    for (int i = 0; i < 3; ++i) w_grad[i] = 2 * (w[i] - 0.3) + 0.1 * k;
    for (int i = 0; i < 2; ++i) b_grad[i] = 2 * (b[i] - 0.3) + 0.1 * k;
  }
  [[nodiscard]] std::vector<double> values() const { return {w[0], w[1], w[2], b[0], b[1]}; }
};

template <class Optimizer>
std::vector<double> run_five_steps(toy_model& m, Optimizer& opt) {
  for (int k = 0; k < 5; ++k) {
    m.set_gradients(k);
    opt.step();
  }
  return m.values();
}

struct golden_trajectory {
  const char* name;
  std::vector<double> after_five;  // w then b
};
// From tests/nn/torch_reference.py (PyTorch 1.13, float64; decay on w only, as two parameter groups).
const std::vector<golden_trajectory> torch_trajectories = {
  {"sgd_plain", {0.27700493103593749, -0.19934587270937495, 0.75335573478124995, 0.15254399999999999, 0.054239999999999983}},
  {"sgd_momentum", {0.052931824534942995, 0.85908841369934352, -0.75322476462945742, 0.26930531839999999, 0.42939814400000004}},
  {"sgd_nesterov", {0.0354366629477555, 0.65997677366832064, -0.58910344777280965, 0.20360476415999998, 0.32832003840000001}},
  {"adam", {0.44980017789648541, -0.95025728602242043, 1.9499175463968701, 0.14275456843236439, -0.15108621314506987}},
  {"adamw", {0.44677514028383664, -0.94560526164869252, 1.9399413873181401, 0.14065994850605315, -0.15173193093712234}},
};
std::vector<double> torch_after_five(const std::string& name) {
  for (const auto& g : torch_trajectories)
    if (name == g.name) return g.after_five;
  throw std::runtime_error("no golden trajectory " + name);
}
void check_close(const std::vector<double>& got, const std::vector<double>& want, double eps = 1e-13) {
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < got.size(); ++i) CHECK(got[i] == doctest::Approx(want[i]).epsilon(eps));
}

}  // namespace

TEST_CASE("sgd / adam / adamw follow PyTorch's trajectories") {
  {
    toy_model m;
    nn::sgd<f64> opt(m.parameters(), {.lr = 0.1, .weight_decay = 0.05});
    check_close(run_five_steps(m, opt), torch_after_five("sgd_plain"));
  }
  {
    toy_model m;
    nn::sgd<f64> opt(m.parameters(), {.lr = 0.1, .momentum = 0.9, .dampening = 0.1, .weight_decay = 0.01});
    check_close(run_five_steps(m, opt), torch_after_five("sgd_momentum"));
  }
  {
    toy_model m;
    nn::sgd<f64> opt(m.parameters(), {.lr = 0.1, .momentum = 0.9, .weight_decay = 0.01, .nesterov = true});
    check_close(run_five_steps(m, opt), torch_after_five("sgd_nesterov"));
  }
  {
    toy_model m;
    nn::adam<f64> opt(m.parameters(), {.lr = 0.01, .weight_decay = 0.1});
    check_close(run_five_steps(m, opt), torch_after_five("adam"));
    CHECK(opt.steps() == 5);
  }
  {
    toy_model m;
    nn::adamw<f64> opt(m.parameters(), {.lr = 0.01, .beta1 = 0.8, .beta2 = 0.99, .eps = 1e-6, .weight_decay = 0.1});
    check_close(run_five_steps(m, opt), torch_after_five("adamw"));
  }
}

TEST_CASE("adam / adamw: the documented update, transcribed per element, for 4 steps") {
  // Independent scalar transcription of torch.optim.Adam / AdamW's documented algorithm.
  auto simulate = [](double p, bool decoupled, double lr, double b1, double b2, double eps, double wd, int steps) {
    double m = 0, v = 0;
    for (int t = 1; t <= steps; ++t) {
      double g = 2 * (p - 0.3) + 0.1 * (t - 1);
      if (decoupled) p -= lr * wd * p;
      else g += wd * p;
      m = b1 * m + (1 - b1) * g;
      v = b2 * v + (1 - b2) * g * g;
      const double m_hat = m / (1 - std::pow(b1, t)), v_hat = v / (1 - std::pow(b2, t));
      p -= lr * m_hat / (std::sqrt(v_hat) + eps);
    }
    return p;
  };
  for (bool decoupled : {false, true}) {
    toy_model m;
    const double start[] = {0.5, -1.0, 2.0, 0.1, -0.2};
    auto step_all = [&](auto& opt) {
      for (int k = 0; k < 4; ++k) {
        m.set_gradients(k);
        opt.step();
      }
    };
    if (decoupled) {
      nn::adamw<f64> opt(m.parameters(), {.lr = 0.05, .beta1 = 0.7, .beta2 = 0.9, .eps = 1e-3, .weight_decay = 0.2});
      step_all(opt);
    } else {
      nn::adam<f64> opt(m.parameters(), {.lr = 0.05, .beta1 = 0.7, .beta2 = 0.9, .eps = 1e-3, .weight_decay = 0.2});
      step_all(opt);
    }
    const auto got = m.values();
    for (int i = 0; i < 5; ++i)
      CHECK(got[i] == doctest::Approx(simulate(start[i], decoupled, 0.05, 0.7, 0.9, 1e-3, i < 3 ? 0.2 : 0.0, 4)).epsilon(1e-13));
  }
}

TEST_CASE("adam: the first step moves every weight by lr·g / (|g| + eps)") {
  tensor64 w({4}), g({4});
  const double gv[] = {2.0, -1e-3, 0.0, 5e-9};
  for (int i = 0; i < 4; ++i) w[i] = 1.0, g[i] = gv[i];
  nn::adam<f64> opt({nn::parameter<f64>{"w", &w, &g, true}}, {.lr = 0.1});
  opt.step();
  for (int i = 0; i < 4; ++i) CHECK(w[i] == doctest::Approx(1.0 - 0.1 * gv[i] / (std::abs(gv[i]) + 1e-8)).epsilon(1e-14));
}

TEST_CASE("optimizers converge on an ill-conditioned quadratic") {
  // f(p) = ½ Σ a_i (p_i − c_i)², a spanning two orders of magnitude.
  const std::vector<double> a = {0.05, 0.3, 1, 2.5, 5}, c = {1, -2, 0.5, 3, -1};
  auto solve = [&](auto make, int steps) {
    tensor64 p = tensor64::zeros({5}), g({5});
    auto opt = make(nn::parameter_list<f64>{{"p", &p, &g, false}});
    for (int s = 0; s < steps; ++s) {
      for (int i = 0; i < 5; ++i) g[i] = a[i] * (p[i] - c[i]);
      opt.step();
    }
    double worst = 0;
    for (int i = 0; i < 5; ++i) worst = std::max(worst, std::abs(p[i] - c[i]));
    return worst;
  };
  CHECK(solve([](auto ps) { return nn::sgd<f64>(ps, {.lr = 0.3}); }, 2000) < 1e-6);
  CHECK(solve([](auto ps) { return nn::sgd<f64>(ps, {.lr = 0.1, .momentum = 0.9}); }, 2000) < 1e-6);
  CHECK(solve([](auto ps) { return nn::sgd<f64>(ps, {.lr = 0.1, .momentum = 0.9, .nesterov = true}); }, 2000) < 1e-6);
  nn::adam_options decaying;
  decaying.lr = 0.05;
  CHECK(solve([&](auto ps) { return nn::adam<f64>(ps, decaying); }, 3000) < 1e-3);
  CHECK(solve([](auto ps) { return nn::adamw<f64>(ps, {.lr = 0.05}); }, 3000) < 1e-3);  // decay flag off
}

TEST_CASE("adamw: decoupled decay shrinks only decayed parameters, independent of the gradient") {
  tensor64 w({2}), wg = tensor64::zeros({2}), b({2}), bg = tensor64::zeros({2});
  w[0] = 2, w[1] = -4, b[0] = 2, b[1] = -4;
  nn::adamw<f64> opt({{"w", &w, &wg, true}, {"b", &b, &bg, false}}, {.lr = 0.1, .weight_decay = 0.5});
  opt.step();  // zero gradient: the Adam part is 0 / (0 + eps) = 0
  CHECK(w[0] == doctest::Approx(2 * (1 - 0.1 * 0.5)));
  CHECK(w[1] == doctest::Approx(-4 * (1 - 0.1 * 0.5)));
  CHECK(b[0] == 2);
  CHECK(b[1] == -4);
}

namespace {
// A checkpoint stand-in: copies every state entry out and back in.
struct saved_state {
  std::map<std::string, std::vector<double>> tensors;
  std::map<std::string, std::int64_t> integers;
};
template <class Optimizer>
saved_state save(Optimizer& opt) {
  saved_state s;
  opt.for_each_state([&](std::string_view name, auto& value) {
    if constexpr (std::is_same_v<std::decay_t<decltype(value)>, std::int64_t>) {
      s.integers[std::string(name)] = value;
    } else {
      s.tensors[std::string(name)].assign(value.data(), value.data() + value.size());
    }
  });
  return s;
}
template <class Optimizer>
void load(Optimizer& opt, const saved_state& s) {
  opt.for_each_state([&](std::string_view name, auto& value) {
    if constexpr (std::is_same_v<std::decay_t<decltype(value)>, std::int64_t>) {
      value = s.integers.at(std::string(name));
    } else {
      const auto& v = s.tensors.at(std::string(name));
      REQUIRE(static_cast<index_t>(v.size()) == value.size());
      for (index_t i = 0; i < value.size(); ++i) value[i] = v[static_cast<std::size_t>(i)];
    }
  });
}
}  // namespace

TEST_CASE("optimizer state: names, and a restored optimizer continues exactly") {
  auto round_trip = [](auto make) {
    toy_model straight, first_half;
    auto a = make(straight.parameters());
    auto b = make(first_half.parameters());
    for (int k = 0; k < 3; ++k) {
      straight.set_gradients(k), a.step();
      first_half.set_gradients(k), b.step();
    }
    const saved_state s = save(b);
    // A fresh model with the saved weights and a fresh optimizer, loaded from the state.
    toy_model resumed;
    resumed.w = first_half.w.clone();
    resumed.b = first_half.b.clone();
    auto c = make(resumed.parameters());
    load(c, s);
    CHECK(c.steps() == 3);
    for (int k = 3; k < 6; ++k) {
      straight.set_gradients(k), a.step();
      resumed.set_gradients(k), c.step();
    }
    CHECK(straight.values() == resumed.values());  // bit for bit
    return s;
  };
  const saved_state adam_state = round_trip([](auto ps) { return nn::adam<f64>(ps, {.lr = 0.01}); });
  CHECK(adam_state.integers.count("step") == 1);
  CHECK(adam_state.tensors.count("0.w.exp_avg") == 1);
  CHECK(adam_state.tensors.count("1.b.exp_avg_sq") == 1);
  CHECK(adam_state.tensors.size() == 4);
  const saved_state sgd_state = round_trip([](auto ps) { return nn::sgd<f64>(ps, {.lr = 0.1, .momentum = 0.9, .dampening = 0.3}); });
  CHECK(sgd_state.tensors.count("1.b.momentum_buffer") == 1);
  round_trip([](auto ps) { return nn::adamw<f64>(ps, {.lr = 0.01}); });
  round_trip([](auto ps) { return nn::sgd<f64>(ps, {.lr = 0.1}); });  // only "step"
}

TEST_CASE("clip_grad_norm: global L2 norm, scaled like torch.nn.utils.clip_grad_norm_") {
  tensor64 a({2}), ag({2}), b({1}), bg({1});
  auto reset = [&] { ag[0] = 3, ag[1] = 4, bg[0] = 12; };  // norm 13
  nn::parameter_list<f64> ps{{"a", &a, &ag, true}, {"b", &b, &bg, false}};
  reset();
  CHECK(nn::gradient_norm(ps) == doctest::Approx(13));
  CHECK(nn::clip_grad_norm(ps, 20.0) == doctest::Approx(13));
  CHECK(ag[0] == 3);  // under the limit: untouched
  const double factor = 6.5 / (13 + 1e-6);
  CHECK(nn::clip_grad_norm(ps, 6.5) == doctest::Approx(13));
  CHECK(ag[0] == doctest::Approx(3 * factor).epsilon(1e-15));
  CHECK(ag[1] == doctest::Approx(4 * factor).epsilon(1e-15));
  CHECK(bg[0] == doctest::Approx(12 * factor).epsilon(1e-15));
  CHECK(nn::gradient_norm(ps) == doctest::Approx(6.5).epsilon(1e-6));
  bg[0] = std::nan("");
  CHECK_THROWS_WITH_AS(nn::clip_grad_norm(ps, 1.0), doctest::Contains("not finite"), error);
  CHECK_THROWS_AS(nn::clip_grad_norm(ps, 0.0), error);
}

TEST_CASE("optimizers: bad settings and mismatched parameters are readable errors") {
  tensor64 w({3}), g({2});
  CHECK_THROWS_WITH_AS(nn::adam<f64>({{"w", &w, &g, true}}), doctest::Contains("parameter 0 (w)"), error);
  tensor64 g3({3});
  nn::parameter_list<f64> ps{{"w", &w, &g3, true}};
  CHECK_THROWS_WITH_AS(nn::adam<f64>(ps, {.beta1 = 1.0}), doctest::Contains("beta1"), error);
  CHECK_THROWS_WITH_AS(nn::adamw<f64>(ps, {.lr = -1}), doctest::Contains("lr"), error);
  CHECK_THROWS_WITH_AS(nn::sgd<f64>(ps, {.nesterov = true}), doctest::Contains("Nesterov"), error);
  CHECK_THROWS_WITH_AS(nn::sgd<f64>(ps, {.momentum = 0.9, .dampening = 0.1, .nesterov = true}), doctest::Contains("Nesterov"), error);
  nn::sgd<f64> plain(ps, {.lr = 0.1});
  CHECK_THROWS_WITH_AS(plain.set_momentum(0.9), doctest::Contains("momentum"), error);
  CHECK_THROWS_AS(plain.set_learning_rate(std::nan("")), error);
  nn::parameter_list<f64> missing{{"w", &w, nullptr, true}};
  CHECK_THROWS_WITH_AS(nn::sgd<f64>(missing, {}), doctest::Contains("no gradient"), error);
  static_assert(nn::optimizer<nn::sgd<f64>> && nn::optimizer<nn::adam<f64>> && nn::optimizer<nn::adamw<f64>>);
}

// ---- real data ----------------------------------------------------------------------------------------

TEST_CASE("real annotations: Adam + MSE + cosine schedule learn the density kernel of vgg-cells image_001") {
  MICROCOUNT_REQUIRE_DATA();
  // The cells of a 64×64 crop, on whole pixels. Their peak-one, summed Gaussian map (σ = 1, cut at 2σ) is
  // exactly a 5×5 convolution of the dot image with the kernel exp(−(dx² + dy²)/2): a convex least-squares
  // problem whose solution the optimizer must find from the real, overlapping point layout.
  const auto ann = io::read_cvat_xml(test::data_dir() / "vgg-cells" / "annotations.xml");
  const io::image_points* image = ann.find("image_001.tif");
  REQUIRE(image != nullptr);
  constexpr index_t side = 64, top = 96, left = 96;
  std::vector<io::point> cells;
  tensor64 dots = tensor64::zeros({1, 1, side, side});  // [N, C, H, W]
  for (const auto& p : image->points) {
    const double r = std::round(p.y) - top, c = std::round(p.x) - left;
    if (r < 0 || c < 0 || r >= side || c >= side) continue;
    cells.push_back(io::point{c, r, 0, -1, -1});
    dots[static_cast<index_t>(r) * side + static_cast<index_t>(c)] += 1;
  }
  REQUIRE(cells.size() >= 8);
  target::gaussian_options g;
  g.sigma = 1.0, g.truncate = 2.0, g.norm = target::normalization::peak_one, g.combine = target::overlap::sum;
  const auto density = target::gaussian_density(cells, side, side, g);  // [1, H, W]
  tensor64 wanted({1, 1, side, side});
  for (index_t i = 0; i < wanted.size(); ++i) wanted[i] = density.data()[i];

  rng r(5);
  ops::conv<2> same;
  same.pad = {2, 2};
  nn::conv2d<f64> layer(1, {5, 5}, same, true);
  layer.build(dots.shape(), r);
  nn::adam<f64> opt(nn::parameters_of(layer), {.lr = 0.05});
  const nn::cosine_annealing_lr schedule{0.05, 150, 1e-4};
  double first = 0, last = 0;
  for (std::int64_t step = 0; step < 150; ++step) {
    opt.set_learning_rate(schedule(step));
    const auto loss = nn::mse_loss{}.evaluate(layer.forward(dots), wanted);
    layer.backward(loss.gradient);
    opt.step();
    (step == 0 ? first : last) = loss.value;
  }
  CHECK(last < first * 1e-4);
  for (index_t dy = 0; dy < 5; ++dy)
    for (index_t dx = 0; dx < 5; ++dx) {
      CAPTURE(dy);
      CAPTURE(dx);
      const double kernel = std::exp(-static_cast<double>((dy - 2) * (dy - 2) + (dx - 2) * (dx - 2)) / 2);
      CHECK(layer.weight[dy * 5 + dx] == doctest::Approx(kernel).epsilon(1e-2).scale(0));
    }
  CHECK(std::abs(layer.bias[0]) < 1e-3);
}
