// Grad-CAM on a count regressor (DeepEM style: trunk, global average pooling, linear, area scaling),
// trained for a few seconds (cpu) to count two classes of spots — bright and dark: each class's map lights
// up at that class's spot and not at the other's. Also: the default target (the trunk's output, the last
// conv block before pooling), the area factor set from the explained image, shapes, mode restoration.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "microcount/backends/cpu.hpp"
#include "microcount/core/parallel.hpp"
#include "microcount/explain/gradcam.hpp"
#include "microcount/nn/loss.hpp"
#include "microcount/nn/models/regressor.hpp"
#include "microcount/nn/optim.hpp"

using namespace microcount;
using cpu = backend::cpu;
using spec = nn::count_regressor<2, nn::norm::batch, 2>;
using net_t = spec::network<cpu>;

namespace {

struct spot {
  double y, x;
  int label;  // 0 bright, 1 dark
};

// Noisy mid-grey background with bright (+) and dark (−) Gaussian spots.
tensor<float, cpu> picture(const std::vector<std::vector<spot>>& images, index_t size, rng& r) {
  const index_t n = static_cast<index_t>(images.size());
  tensor<float, cpu> x({n, 1, size, size});
  for (index_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(0.1 * r.normal());
  for (index_t b = 0; b < n; ++b)
    for (const spot& s : images[static_cast<std::size_t>(b)])
      for (index_t y = 0; y < size; ++y)
        for (index_t xx = 0; xx < size; ++xx) {
          const double d2 = (y - s.y) * (y - s.y) + (xx - s.x) * (xx - s.x);
          x[(b * size + y) * size + xx] += static_cast<float>((s.label == 0 ? 1.0 : -1.0) * std::exp(-d2 / 4.0));
        }
  return x;
}

std::vector<std::vector<spot>> random_spots(index_t n, index_t size, rng& r, tensor<float, cpu>& counts) {
  std::vector<std::vector<spot>> out(static_cast<std::size_t>(n));
  counts = tensor<float, cpu>::zeros({n, 2});
  for (index_t b = 0; b < n; ++b) {
    const int k = static_cast<int>(r.uniform(0, 4));
    for (int i = 0; i < k; ++i) {
      const int label = r.uniform(0, 1) < 0.5 ? 0 : 1;
      out[static_cast<std::size_t>(b)].push_back({r.uniform(3, size - 3), r.uniform(3, size - 3), label});
      counts[b * 2 + label] += 1;
    }
  }
  return out;
}

double distance_of_argmax(const xt::xtensor<float, 2>& map, const spot& s) {
  std::size_t at = 0;
  for (std::size_t i = 1; i < map.size(); ++i)
    if (map.data()[i] > map.data()[at]) at = i;
  return std::hypot(double(at / map.shape(1)) - s.y, double(at % map.shape(1)) - s.x);
}

double mean_near(const xt::xtensor<float, 2>& map, const spot& s, double radius) {
  double sum = 0;
  int n = 0;
  for (std::size_t y = 0; y < map.shape(0); ++y)
    for (std::size_t x = 0; x < map.shape(1); ++x)
      if ((y - s.y) * (y - s.y) + (x - s.x) * (x - s.x) <= radius * radius) sum += map(y, x), ++n;
  return sum / n;
}

struct one_thread {  // this tiny network trains much faster without OpenMP hand-offs on a busy machine
  int saved = max_threads();
  one_thread() { set_threads(1); }
  ~one_thread() { set_threads(saved); }
};

}  // namespace

TEST_CASE("gradcam targets of the count regressor: the trunk output (last conv block before pooling)") {
  CHECK(std::is_same_v<explain::targets<net_t>::bottleneck, explain::path<0>>);
  CHECK(std::is_same_v<explain::targets<net_t>::features, explain::path<0>>);
  CHECK(std::is_same_v<explain::targets<net_t>::decoder, explain::path<0>>);
  rng r(701);
  auto net = spec::make<cpu>({.in_channels = 1, .classes = 2, .base_width = 4, .reference_pixels = 32 * 32});
  net.build({1, 1, 32, 32}, r);
  tensor<float, cpu> x({1, 1, 64, 64});
  for (index_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(r.normal());
  tensor<float, cpu> small({1, 1, 32, 32});
  for (index_t i = 0; i < small.size(); ++i) small[i] = static_cast<float>(r.normal());
  net.set_mode(nn::mode::evaluation);
  net.forward(small);  // leaves the area factor at 1: gradcam must set it from its own input (4)
  auto ag = explain::activation_and_gradient<explain::path<0>>(net, x, explain::score::count{1});
  CHECK(ag.activation.shape() == shape{1, 16, 16, 16});  // width 4·2², 64 / 2²
  auto expected = net.forward(x);
  REQUIRE(ag.output.shape() == shape{1, 2});
  CHECK(ag.output[0] == expected[0]);
  CHECK(ag.output[1] == expected[1]);
  // ∂count/∂A through global average pooling: the gradient is constant over positions, so every α_k is it.
  const index_t plane = 16 * 16;
  for (index_t k = 0; k < 16; ++k)
    for (index_t i = 1; i < plane; ++i) REQUIRE(ag.gradient[k * plane + i] == ag.gradient[k * plane]);
  // The regression score needs a count output; a dense score on [1, K] is a readable error.
  CHECK_THROWS_WITH_AS(explain::gradcam(net, x, explain::score::channel_sum{0}), doctest::Contains("dense head needs a map output"), error);
  CHECK(net.get_mode() == nn::mode::evaluation);
}

TEST_CASE("gradcam of a trained two-class count regressor points at the spots of the asked class") {
  rng r(702);
  constexpr index_t size = 32;
  auto net = spec::make<cpu>({.in_channels = 1, .classes = 2, .base_width = 8, .reference_pixels = size * size});
  net.build({8, 1, size, size}, r);
  nn::adam<cpu> opt(nn::parameters_of(net), {.lr = 3e-3});
  nn::mse_loss mse;
  net.set_mode(nn::mode::training);
  double first = 0, last = 0;
  {
    one_thread single;
    for (int step = 0; step < 300; ++step) {
      tensor<float, cpu> counts;
      auto x = picture(random_spots(8, size, r, counts), size, r);
      auto loss = mse.evaluate(net.forward(x), counts);
      if (step < 20) first += loss.value / 20;
      if (step >= 280) last += loss.value / 20;
      net.backward(loss.gradient);
      opt.step();
    }
  }
  MESSAGE("count MSE, first 20 steps " << first << ", last 20 steps " << last);
  CHECK(last < first / 4);
  net.set_mode(nn::mode::training);  // gradcam must leave it so
  const std::vector<std::vector<spot>> tests = {{{8, 9, 0}, {22, 23, 1}}, {{24, 8, 0}, {9, 24, 1}}};
  for (const auto& spots : tests) {
    auto x = picture({spots}, size, r);
    for (int c = 0; c < 2; ++c) {
      const spot& own = spots[c == 0 ? 0 : 1];
      const spot& other = spots[c == 0 ? 1 : 0];
      auto map = explain::gradcam_for_class(net, x, explain::head_kind::regression, c);
      CHECK(net.get_mode() == nn::mode::training);
      REQUIRE(map.shape(0) == size);
      REQUIRE(map.shape(1) == size);
      const double d = distance_of_argmax(map, own), at_own = mean_near(map, own, 4), at_other = mean_near(map, other, 4);
      MESSAGE("class " << c << ": argmax " << d << " px from its spot; mean near it " << at_own << ", near the other class's " << at_other);
      CHECK(d <= 6.0);  // the trunk output has 1/4 resolution: cells of 4 × 4 px
      CHECK(at_own > 2 * at_other);
    }
  }
}
