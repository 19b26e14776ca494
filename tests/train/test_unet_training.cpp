// Whole-network behaviour on the cpu backend: it matches the reference backend, it learns (a tiny U-Net
// overfits a synthetic batch), it is deterministic, and a checkpoint reproduces it exactly.
#include <doctest/doctest.h>

#include <cmath>

#include "microcount/backends/cpu.hpp"
#include "microcount/io/checkpoint.hpp"
#include "microcount/nn/loss.hpp"
#include "microcount/nn/models/unet.hpp"
#include "microcount/nn/optim.hpp"
#include "test_support.hpp"

using namespace microcount;

namespace {

using small_unet = nn::unet2d<nn::norm::batch, nn::up::transposed, 2>;

template <class B>
tensor<float, B> blobs(index_t n, index_t size, rng& r, tensor<float, B>* density) {
  // Bright Gaussian spots on a noisy background; the target is a sum of small Gaussians at the spots.
  tensor<float, B> x({n, 1, size, size});
  if (density) *density = tensor<float, B>::zeros({n, 1, size, size});
  for (index_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(0.1 * r.normal());
  for (index_t b = 0; b < n; ++b)
    for (int k = 0; k < 3; ++k) {
      const double cy = r.uniform(3, size - 3), cx = r.uniform(3, size - 3);
      for (index_t y = 0; y < size; ++y)
        for (index_t xx = 0; xx < size; ++xx) {
          const double d2 = (y - cy) * (y - cy) + (xx - cx) * (xx - cx);
          x[(b * size + y) * size + xx] += static_cast<float>(std::exp(-d2 / 4.0));
          if (density) (*density)[(b * size + y) * size + xx] += static_cast<float>(std::exp(-d2 / 2.0));
        }
    }
  return x;
}

template <class From, class To>
void copy_weights(From& from, To& to) {
  std::vector<const float*> src;
  std::vector<index_t> sizes;
  from.for_each_parameter([&](const auto& p) { src.push_back(p.value->data()); sizes.push_back(p.value->size()); });
  from.for_each_buffer([&](std::string_view, auto& t) { src.push_back(t.data()); sizes.push_back(t.size()); });
  std::size_t k = 0;
  auto put = [&](float* dst, index_t n) {
    REQUIRE(n == sizes[k]);
    std::copy(src[k], src[k] + n, dst);
    ++k;
  };
  to.for_each_parameter([&](const auto& p) { put(p.value->data(), p.value->size()); });
  to.for_each_buffer([&](std::string_view, auto& t) { put(t.data(), t.size()); });
}

// How far `got` is from `expected` element by element: the largest |got - expected| and the largest
// |expected|, the scale a relative tolerance is taken of.
struct difference {
  double worst = 0, scale = 0;
};

template <class Got, class Expected>
difference difference_of(const Got& got, const Expected& expected) {
  difference d;
  for (index_t i = 0; i < got.size(); ++i) {
    d.worst = std::max(d.worst, double(std::abs(got[i] - expected[i])));
    d.scale = std::max(d.scale, double(std::abs(expected[i])));
  }
  return d;
}

}  // namespace

TEST_CASE("the reference U-Net on cpu equals the reference backend: outputs, input and weight gradients") {
  rng r(31);
  auto on_cpu = nn::unet2d<>::make<backend::cpu>({.base_width = 8});
  auto on_ref = nn::unet2d<>::make<backend::reference>({.base_width = 8});
  const shape in{2, 1, 24, 40};
  on_cpu.build(in, r);
  on_ref.build(in, r);
  copy_weights(on_cpu, on_ref);
  auto x_cpu = blobs<backend::cpu>(2, 24, r, nullptr);
  tensor<float, backend::cpu> x_wide({2, 1, 24, 40});
  for (index_t i = 0; i < x_wide.size(); ++i) x_wide[i] = static_cast<float>(r.normal());
  tensor<float, backend::reference> x_ref({2, 1, 24, 40});
  std::copy(x_wide.data(), x_wide.data() + x_wide.size(), x_ref.data());
  for (auto m : {nn::mode::evaluation, nn::mode::training}) {
    on_cpu.set_mode(m);
    on_ref.set_mode(m);
    auto a = on_cpu.forward(x_wide);
    auto b = on_ref.forward(x_ref);
    const difference out = difference_of(a, b);
    CHECK(out.worst <= 1e-4 * std::max(1.0, out.scale));
    if (m == nn::mode::training) {
      tensor<float, backend::cpu> g_cpu(a.shape());
      tensor<float, backend::reference> g_ref(a.shape());
      for (index_t i = 0; i < a.size(); ++i) g_cpu[i] = g_ref[i] = static_cast<float>(r.normal());
      auto dx_cpu = on_cpu.backward(g_cpu);
      auto dx_ref = on_ref.backward(g_ref);
      const difference dx = difference_of(dx_cpu, dx_ref);
      CHECK(dx.worst <= 1e-3 * std::max(1.0, dx.scale));
      std::vector<const tensor<float, backend::cpu>*> gc;
      std::vector<const tensor<float, backend::reference>*> gr;
      on_cpu.for_each_parameter([&](const auto& p) { gc.push_back(p.grad); });
      on_ref.for_each_parameter([&](const auto& p) { gr.push_back(p.grad); });
      for (std::size_t k = 0; k < gc.size(); ++k) {
        const difference dw = difference_of(*gc[k], *gr[k]);
        CHECK_MESSAGE(dw.worst <= 1e-3 * std::max(1.0, dw.scale), "parameter " << k);
      }
    }
  }
}

TEST_CASE("a tiny U-Net overfits a synthetic batch: MSE falls by more than 100x; runs are deterministic") {
  auto train = [](std::vector<double>* losses) {
    rng r(41);
    auto net = small_unet::make<backend::cpu>({.base_width = 8});
    net.build({4, 1, 32, 32}, r);
    tensor<float, backend::cpu> target;
    auto x = blobs<backend::cpu>(4, 32, r, &target);
    nn::adam<backend::cpu> opt(nn::parameters_of(net), {.lr = 3e-3});
    nn::mse_loss mse;
    for (int step = 0; step < 300; ++step) {
      auto y = net.forward(x);
      auto loss = mse.evaluate(y, target);
      losses->push_back(loss.value);
      net.backward(loss.gradient);
      opt.step();
    }
    return net;
  };
  std::vector<double> first, second;
  auto a = train(&first);
  auto b = train(&second);
  CHECK(first.back() < first.front() / 100);
  MESSAGE("MSE " << first.front() << " -> " << first.back());
  CHECK(first == second);  // bit-identical for a given seed and thread count
}

TEST_CASE("a U-Net checkpoint reproduces outputs exactly and resumes Adam") {
  auto dir = test::scratch("unet_checkpoint");
  rng r(51);
  auto net = small_unet::make<backend::cpu>({.base_width = 4});
  net.build({2, 1, 16, 16}, r);
  auto x = blobs<backend::cpu>(2, 16, r, nullptr);
  nn::adam<backend::cpu> opt(nn::parameters_of(net));
  nn::mse_loss mse;
  tensor<float, backend::cpu> target = tensor<float, backend::cpu>::zeros({2, 1, 16, 16});
  auto step = [&](auto& model, auto& optimizer) {
    model.set_mode(nn::mode::training);
    auto loss = mse.evaluate(model.forward(x), target);
    model.backward(loss.gradient);
    optimizer.step();
  };
  step(net, opt);
  io::checkpoint_state<backend::cpu> state;
  state.add_model(net);
  state.add_optimizer(opt);
  io::checkpoint_header head;
  head.architecture = small_unet::name();
  io::save_checkpoint(dir / "latest.mcm", state, head);

  rng r2(52);
  auto restored = small_unet::make<backend::cpu>({.base_width = 4});
  restored.build({2, 1, 16, 16}, r2);
  nn::adam<backend::cpu> opt2(nn::parameters_of(restored));
  io::checkpoint_state<backend::cpu> state2;
  state2.add_model(restored);
  state2.add_optimizer(opt2);
  io::checkpoint_file(dir / "latest.mcm").load_into(state2, small_unet::name());
  CHECK(opt2.steps() == 1);
  step(net, opt);
  step(restored, opt2);  // the same next step from the same state
  net.set_mode(nn::mode::evaluation);
  restored.set_mode(nn::mode::evaluation);
  auto ya = net.forward(x);
  auto yb = restored.forward(x);
  for (index_t i = 0; i < ya.size(); ++i) REQUIRE(ya[i] == yb[i]);
}
