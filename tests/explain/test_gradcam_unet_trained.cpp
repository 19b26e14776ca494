// Grad-CAM on a U-Net trained (for a few seconds, cpu) to output a density map of bright blobs: on a new
// image the map is brightest at the blobs and dark on the background, at both targets; the cpu backend's
// fused inspection path gives the same maps as training-mode-free evaluation wants (mode restored).
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "microcount/backends/cpu.hpp"
#include "microcount/core/parallel.hpp"
#include "microcount/explain/gradcam.hpp"
#include "microcount/nn/loss.hpp"
#include "microcount/nn/models/unet.hpp"
#include "microcount/nn/optim.hpp"

using namespace microcount;
using cpu = backend::cpu;
using spec = nn::unet2d<nn::norm::batch, nn::up::transposed, 2>;

namespace {

struct blob {
  double y, x;
};

// Noisy background with Gaussian spots (σ ≈ 1.4 px); the target density is a unit-peak Gaussian per spot.
tensor<float, cpu> picture(const std::vector<std::vector<blob>>& images, index_t size, rng& r, tensor<float, cpu>* density) {
  const index_t n = static_cast<index_t>(images.size());
  tensor<float, cpu> x({n, 1, size, size});
  if (density) *density = tensor<float, cpu>::zeros({n, 1, size, size});
  for (index_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(0.1 * r.normal());
  for (index_t b = 0; b < n; ++b)
    for (const blob& o : images[b])
      for (index_t y = 0; y < size; ++y)
        for (index_t xx = 0; xx < size; ++xx) {
          const double d2 = (y - o.y) * (y - o.y) + (xx - o.x) * (xx - o.x);
          x[(b * size + y) * size + xx] += static_cast<float>(std::exp(-d2 / 4.0));
          if (density) (*density)[(b * size + y) * size + xx] += static_cast<float>(std::exp(-d2 / 2.0));
        }
  return x;
}

std::vector<std::vector<blob>> random_blobs(index_t n, index_t size, rng& r) {
  std::vector<std::vector<blob>> out(static_cast<std::size_t>(n));
  for (auto& image : out) {
    const int count = static_cast<int>(r.uniform(1, 4));
    for (int k = 0; k < count; ++k) image.push_back({r.uniform(4, size - 4), r.uniform(4, size - 4)});
  }
  return out;
}

// Mean of the map within `radius` of any blob, and elsewhere.
std::pair<double, double> inside_outside(const xt::xtensor<float, 2>& map, const std::vector<blob>& blobs, double radius) {
  double in = 0, out = 0;
  int n_in = 0, n_out = 0;
  for (std::size_t y = 0; y < map.shape(0); ++y)
    for (std::size_t x = 0; x < map.shape(1); ++x) {
      bool near = false;
      for (const blob& o : blobs) near |= (y - o.y) * (y - o.y) + (x - o.x) * (x - o.x) <= radius * radius;
      (near ? in : out) += map(y, x);
      (near ? n_in : n_out) += 1;
    }
  return {in / n_in, out / n_out};
}

double distance_of_argmax(const xt::xtensor<float, 2>& map, const std::vector<blob>& blobs) {
  std::size_t at = 0;
  for (std::size_t i = 1; i < map.size(); ++i)
    if (map.data()[i] > map.data()[at]) at = i;
  const double y = double(at / map.shape(1)), x = double(at % map.shape(1));
  double best = 1e9;
  for (const blob& o : blobs) best = std::min(best, std::hypot(y - o.y, x - o.x));
  return best;
}

}  // namespace

TEST_CASE("gradcam of a trained density U-Net lights up where the blobs are (bottleneck and head-input targets)") {
  rng r(601);
  constexpr index_t size = 32;
  auto net = spec::make<cpu>({.base_width = 8});
  net.build({4, 1, size, size}, r);
  nn::adam<cpu> opt(nn::parameters_of(net), {.lr = 3e-3});
  nn::mse_loss mse;
  net.set_mode(nn::mode::training);
  // One thread: this tiny network trains ~8x faster without OpenMP hand-offs on a busy 2-core machine.
  struct one_thread {
    int saved = max_threads();
    one_thread() { set_threads(1); }
    ~one_thread() { set_threads(saved); }
  } single;
  for (int step = 0; step < 250; ++step) {
    tensor<float, cpu> target;
    auto x = picture(random_blobs(4, size, r), size, r, &target);
    auto loss = mse.evaluate(net.forward(x), target);
    net.backward(loss.gradient);
    opt.step();
  }
  net.set_mode(nn::mode::evaluation);
  // New images, one and two blobs, away from the corners.
  const std::vector<std::vector<blob>> tests = {{{9, 22}}, {{20, 7}}, {{8, 8}, {23, 24}}};
  for (const auto& blobs : tests) {
    auto x = picture({blobs}, size, r, nullptr);
    for (auto layer : {explain::target::bottleneck, explain::target::features}) {
      CAPTURE(layer == explain::target::bottleneck ? "bottleneck" : "features");
      CAPTURE(blobs.size());
      auto map = explain::gradcam_for_class(net, x, explain::head_kind::density, 0, {.layer = layer});
      CHECK(net.get_mode() == nn::mode::evaluation);
      const auto [in, out] = inside_outside(map, blobs, 4.0);
      const double d = distance_of_argmax(map, blobs);
      const std::string where = layer == explain::target::bottleneck ? "bottleneck" : "features";
      MESSAGE(where << ", " << blobs.size() << " blob(s): mean inside " << in << ", outside " << out << ", argmax "
                    << d << " px from a blob");
      // The bottleneck map has 1/4 of the input's resolution (cells of 4 × 4 px): its maximum may sit up to
      // two cells away; the head-input map is at full resolution.
      CHECK(d <= (layer == explain::target::bottleneck ? 8.0 : 2.0));
      CHECK(in > 3 * out);
    }
    // The head-input map is the predicted density itself (up to the head's bias and the scaling): it shows
    // the prediction, not what it depends on. Correlation with ReLU(density) over the image:
    auto features = explain::gradcam_for_class(net, x, explain::head_kind::density, 0, {.layer = explain::target::features});
    auto density = net.forward(x);
    double sa = 0, sb = 0, saa = 0, sbb = 0, sab = 0;
    const double n = double(features.size());
    for (std::size_t i = 0; i < features.size(); ++i) {
      const double a = features.data()[i], b = std::max(0.0f, density[static_cast<index_t>(i)]);
      sa += a, sb += b, saa += a * a, sbb += b * b, sab += a * b;
    }
    const double correlation = (sab - sa * sb / n) / std::sqrt((saa - sa * sa / n) * (sbb - sb * sb / n));
    MESSAGE("correlation of the head-input map with the density: " << correlation);
    CHECK(correlation > 0.9);
  }
}
