// Grad-CAM on U-Nets trained for a few seconds (cpu) to output density maps, at the three named targets:
// of synthetic bright blobs (on a new image the head-input and bottleneck maps are brightest at the blobs;
// the decoder level's is empty, reported) and of real cells (vgg-cells: on a held-out image the head-input
// and decoder-level maps peak at the annotated cells; the bottleneck's marks background, reported). The
// head-input target (the default) is the one that marks the objects in both. The cpu backend runs the fused
// conv_bn_relu inspection path; mode restored.
#include <doctest/doctest.h>

#include <cmath>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include <xtensor/xview.hpp>

#include "microcount/backends/cpu.hpp"
#include "microcount/core/parallel.hpp"
#include "microcount/data/dataset.hpp"
#include "microcount/explain/gradcam.hpp"
#include "microcount/nn/loss.hpp"
#include "microcount/nn/models/unet.hpp"
#include "microcount/nn/optim.hpp"
#include "test_support.hpp"

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

std::string name_of(explain::target t) {
  return t == explain::target::decoder ? "decoder" : t == explain::target::bottleneck ? "bottleneck" : "features";
}

// One thread while alive: these tiny networks train ~8x faster without OpenMP hand-offs on a busy 2-core machine.
struct one_thread {
  int saved = max_threads();
  one_thread() { set_threads(1); }
  ~one_thread() { set_threads(saved); }
};

// Trains `net` to output density maps: `steps` Adam steps (lr 3e-3) of MSE, each on the pair
// {x, target} ([N, 1, H, W] both) that next_batch() returns; leaves it in evaluation mode.
template <class Net, class NextBatch>
void train_density(Net& net, int steps, NextBatch&& next_batch) {
  nn::adam<cpu> opt(nn::parameters_of(net), {.lr = 3e-3});
  nn::mse_loss mse;
  net.set_mode(nn::mode::training);
  for (int step = 0; step < steps; ++step) {
    const auto [x, target] = next_batch();
    auto loss = mse.evaluate(net.forward(x), target);
    net.backward(loss.gradient);
    opt.step();
  }
  net.set_mode(nn::mode::evaluation);
}

}  // namespace

TEST_CASE("gradcam of a trained density U-Net lights up where the blobs are (decoder, bottleneck and head-input targets)") {
  rng r(601);
  constexpr index_t size = 32;
  auto net = spec::make<cpu>({.base_width = 8});
  net.build({4, 1, size, size}, r);
  const one_thread single;  // for the whole test case, Grad-CAM included
  train_density(net, 250, [&] {
    tensor<float, cpu> target;
    auto x = picture(random_blobs(4, size, r), size, r, &target);
    return std::pair{std::move(x), std::move(target)};
  });
  // New images, one and two blobs, away from the corners.
  const std::vector<std::vector<blob>> tests = {{{9, 22}}, {{20, 7}}, {{8, 8}, {23, 24}}};
  for (const auto& blobs : tests) {
    auto x = picture({blobs}, size, r, nullptr);
    for (auto layer : {explain::target::decoder, explain::target::bottleneck, explain::target::features}) {
      const std::string where = name_of(layer);
      CAPTURE(where);
      CAPTURE(blobs.size());
      auto map = explain::gradcam_for_class(net, x, explain::head_kind::density, 0, {.layer = layer});
      CHECK(net.get_mode() == nn::mode::evaluation);
      const auto [in, out] = inside_outside(map, blobs, 4.0);
      const double d = distance_of_argmax(map, blobs);
      MESSAGE(where << ", " << blobs.size() << " blob(s): mean inside " << in << ", outside " << out << ", argmax "
                    << d << " px from a blob");
      // The bottleneck map has 1/4 of the input's resolution: its maximum may sit up to two cells (of 4 px)
      // away. The decoder level is not checked here: its α are nearly all negative on these blobs and the
      // map is empty (reported above; docs/explain.md).
      if (layer == explain::target::decoder) continue;
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

TEST_CASE("gradcam on real cells (vgg-cells): a density U-Net trained on crops of 8 images explains a held-out crop where the cells are") {
  MICROCOUNT_REQUIRE_DATA();
  auto ds = data::open_dataset(test::data_dir() / "vgg-cells");
  rng r(611);
  constexpr index_t crop = 48;
  struct image_t {
    xt::xtensor<float, 2> pixels;  // [256, 256] scaled to [0, 1]
    std::vector<io::point> points;
  };
  auto load = [&](std::size_t i) {
    const auto s = ds.get(i, r);
    image_t im;
    im.pixels = xt::view(s.image.pixels, 0, 0, xt::all(), xt::all());
    const float top = *std::max_element(im.pixels.begin(), im.pixels.end());
    im.pixels /= top;
    im.points = s.points;
    return im;
  };
  std::vector<image_t> train;
  for (std::size_t i = 0; i < 8; ++i) train.push_back(load(i));   // image_001 … image_008
  const image_t held_out = load(100);                              // image_101
  // A crop [crop, crop] at (y0, x0) and its peak-1 Gaussian density (σ 2 px) of the cells inside.
  auto cut = [&](const image_t& im, index_t y0, index_t x0, float* x, float* density, std::vector<blob>* cells) {
    for (index_t y = 0; y < crop; ++y)
      for (index_t xx = 0; xx < crop; ++xx) x[y * crop + xx] = im.pixels(y0 + y, x0 + xx);
    if (density) std::fill(density, density + crop * crop, 0.0f);
    for (const io::point& p : im.points) {
      const double py = p.y - y0, px = p.x - x0;
      if (py < -6 || px < -6 || py > crop + 6 || px > crop + 6) continue;
      if (cells && py >= 0 && px >= 0 && py < crop && px < crop) cells->push_back({py, px});
      if (density)
        for (index_t y = 0; y < crop; ++y)
          for (index_t xx = 0; xx < crop; ++xx)
            density[y * crop + xx] += static_cast<float>(std::exp(-((y - py) * (y - py) + (xx - px) * (xx - px)) / 8.0));
    }
  };
  auto net = spec::make<cpu>({.base_width = 8});
  net.build({4, 1, crop, crop}, r);
  {
    const one_thread single;  // for the training only
    train_density(net, 200, [&] {
      tensor<float, cpu> x({4, 1, crop, crop}), target({4, 1, crop, crop});
      for (index_t b = 0; b < 4; ++b) {
        const auto& im = train[static_cast<std::size_t>(r.uniform(0, 8)) % 8];
        cut(im, static_cast<index_t>(r.uniform(0, 256 - crop)), static_cast<index_t>(r.uniform(0, 256 - crop)),
            x.data() + b * crop * crop, target.data() + b * crop * crop, nullptr);
      }
      return std::pair{std::move(x), std::move(target)};
    });
  }
  // Held-out crops: the map is higher at the annotated cells than on average, for both targets.
  for (const auto& [y0, x0] : std::vector<std::pair<index_t, index_t>>{{40, 40}, {150, 100}, {200, 200}}) {
    tensor<float, cpu> x({1, 1, crop, crop});
    std::vector<blob> cells;
    cut(held_out, y0, x0, x.data(), nullptr, &cells);
    REQUIRE(!cells.empty());
    for (auto layer : {explain::target::decoder, explain::target::bottleneck, explain::target::features}) {
      auto map = explain::gradcam_for_class(net, x, explain::head_kind::density, 0, {.layer = layer});
      double at_cells = 0;
      for (const blob& c : cells) at_cells += map(static_cast<std::size_t>(c.y), static_cast<std::size_t>(c.x)) / double(cells.size());
      const double mean = std::accumulate(map.begin(), map.end(), 0.0) / double(map.size());
      MESSAGE("image_101 crop at (" << y0 << ", " << x0 << "), " << cells.size() << " cells, " << name_of(layer)
                                    << ": mean map at the cells " << at_cells << ", over the crop " << mean);
      // The bottleneck is not checked: on these small objects its map highlights background (the reason it is
      // not the default; the numbers above are the evidence quoted in docs/explain.md).
      if (layer != explain::target::bottleneck) CHECK(at_cells > 3 * mean);
    }
  }
}
