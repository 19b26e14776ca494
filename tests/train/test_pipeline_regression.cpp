// The regression pipeline (DeepEM style: a count regressor trained on the count vectors of random crops)
// on a small synthetic three-class set (naked / budding / enveloped): the loss falls, per-class counts
// of held-out crops get far better than an untrained model's and than always answering the mean count,
// a larger image gets counts scaled by its area, and Grad-CAM gives a map in [0, 1].
#include <doctest/doctest.h>

#include <cmath>
#include <numeric>

#include <xtensor/xview.hpp>

#include "microcount/backends/cpu.hpp"
#include "microcount/data/synth.hpp"
#include "microcount/train/explain.hpp"
#include "microcount/train/trainer.hpp"
#include "test_support.hpp"

using namespace microcount;

namespace {

using small_regressor = train::pipeline<train::heads::regression, nn::count_regressor<2, nn::norm::batch, 3>, backend::cpu>;

constexpr std::size_t patch = 48, side = 96;

train::hyperparameters regressor_hp() {
  train::hyperparameters hp;
  hp.head = "regression";
  hp.base_width = 8;
  hp.depth = 3;
  hp.patch = patch;
  hp.batch = 8;
  hp.patches_per_image = 40;  // one number per crop is little signal: many crops per epoch
  hp.epochs = 12;
  hp.lr = 5e-3;
  hp.seed = 5;
  return hp;
}

// 16 images 96×96 with 10–24 objects of three classes: 12 to train, 4 held out (cut into 48×48 crops).
const std::filesystem::path& synthetic_folder() {
  static const std::filesystem::path dir = [] {
    auto d = test::scratch("pipeline_regression_data");
    data::synth_options o;
    o.images = 16;
    o.height = side;
    o.width = side;
    o.classes = 3;
    o.min_cells = 10;
    o.max_cells = 24;
    o.seed = 9;
    data::write_synthetic_dataset(d, o);
    return d;
  }();
  return dir;
}

const data::split_indices split{{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, {}, {12, 13, 14, 15}};

struct crop {
  io::image image;             // [1, 1, patch, patch]
  std::vector<double> counts;  // [3]
};

// The four quadrants of every held-out image with their per-class counts.
std::vector<crop> held_out_crops(const data::dataset& ds) {
  std::vector<crop> out;
  for (const auto i : split.test) {
    const auto im = ds.image(i);
    for (std::size_t top = 0; top < side; top += patch)
      for (std::size_t left = 0; left < side; left += patch) {
        crop c;
        c.image.pixels = xt::view(im->pixels, xt::all(), xt::all(), xt::range(top, top + patch), xt::range(left, left + patch));
        c.counts.assign(3, 0.0);
        for (const auto& q : ds.points(i))  // the point marks pixel (round(y), round(x))
          if (std::lround(q.y) >= static_cast<long>(top) && std::lround(q.y) < static_cast<long>(top + patch) &&
              std::lround(q.x) >= static_cast<long>(left) && std::lround(q.x) < static_cast<long>(left + patch))
            c.counts[static_cast<std::size_t>(q.label)] += 1;
        out.push_back(std::move(c));
      }
  }
  return out;
}

// Per-class MAE over the crops.
std::vector<double> per_class_mae(small_regressor& p, const std::vector<crop>& crops) {
  std::vector<double> mae(3, 0.0);
  for (const auto& c : crops) {
    const auto r = p.predict(c.image);
    REQUIRE(r.counts.size() == 3);
    CHECK(r.points.empty());  // a regressor counts; it does not locate
    for (std::size_t k = 0; k < 3; ++k) mae[k] += std::abs(r.counts[k] - c.counts[k]) / static_cast<double>(crops.size());
  }
  return mae;
}

// Always answering the held-out crops' own mean count: the bar a counting model must clear.
std::vector<double> mean_count_mae(const std::vector<crop>& crops) {
  std::vector<double> mean(3, 0.0), mae(3, 0.0);
  for (const auto& c : crops)
    for (std::size_t k = 0; k < 3; ++k) mean[k] += c.counts[k] / static_cast<double>(crops.size());
  for (const auto& c : crops)
    for (std::size_t k = 0; k < 3; ++k) mae[k] += std::abs(mean[k] - c.counts[k]) / static_cast<double>(crops.size());
  return mae;
}

}  // namespace

TEST_CASE("regression pipeline: the loss falls and per-class MAE on held-out crops beats the untrained model and the mean count") {
  const auto ds = data::open_dataset(synthetic_folder());
  REQUIRE(ds.labels() == std::vector<std::string>{"naked", "budding", "enveloped"});
  small_regressor p(regressor_hp(), ds.labels(), 1);
  CHECK(small_regressor::architecture() == "regression/count_regressor2d<batch,3>");
  const auto crops = held_out_crops(ds);
  REQUIRE(crops.size() == 16);
  const auto untrained = per_class_mae(p, crops);
  const auto baseline = mean_count_mae(crops);

  const auto r = train::fit(p, ds, split);
  REQUIRE(r.epochs.size() == 12);
  CHECK(r.epochs.back().train_loss < 0.5 * r.epochs.front().train_loss);

  const auto trained = per_class_mae(p, crops);
  // Measured (seed 5): trained / untrained 0.60, 0.33, 0.28; trained / mean-count baseline 0.73, 0.59, 0.36
  // (naked, budding, enveloped); over the classes 0.41 and 0.57.
  for (std::size_t k = 0; k < 3; ++k) {
    MESSAGE(ds.labels()[k] << ": MAE untrained " << untrained[k] << ", mean-count baseline " << baseline[k] << ", trained "
                           << trained[k]);
    CHECK(trained[k] < 0.75 * untrained[k]);
    CHECK(trained[k] < 0.9 * baseline[k]);
  }
  const auto mean = [](const std::vector<double>& v) { return std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size()); };
  CHECK(mean(trained) < 0.55 * mean(untrained));
  CHECK(mean(trained) < 0.7 * mean(baseline));
  MESSAGE("loss " << r.epochs.front().train_loss << " -> " << r.epochs.back().train_loss);
}

TEST_CASE("regression pipeline: a larger image gets counts scaled by its area; Grad-CAM is [H, W] in [0, 1]") {
  const auto ds = data::open_dataset(synthetic_folder());
  auto hp = regressor_hp();
  hp.epochs = 3;
  small_regressor p(hp, ds.labels(), 1);
  train::fit(p, ds, split);
  const auto crops = held_out_crops(ds);

  // The same crop repeated 2 × 2: the pooled features barely change (only at the seams), so every
  // class count is about four times the crop's.
  const crop& c = crops[1];
  io::image tiled;
  tiled.pixels = xt::xtensor<float, 4>::from_shape({1, 1, 2 * patch, 2 * patch});  // [1, 1, 2p, 2p]
  for (std::size_t y = 0; y < 2 * patch; ++y)
    for (std::size_t x = 0; x < 2 * patch; ++x) tiled.pixels(0, 0, y, x) = c.image.pixels(0, 0, y % patch, x % patch);
  const auto one = p.predict(c.image), four = p.predict(tiled);
  double total_one = 0, total_four = 0;
  for (std::size_t k = 0; k < 3; ++k) {
    total_one += one.counts[k];
    total_four += four.counts[k];
  }
  MESSAGE("crop total " << total_one << ", tiled 2x2 total " << total_four);
  REQUIRE(total_one > 0.5);
  CHECK(total_four / total_one == doctest::Approx(4.0).epsilon(0.25));

  // Grad-CAM of each class on a held-out image (not a multiple of anything in particular).
  io::image odd;
  odd.pixels = xt::view(ds.image(split.test[0])->pixels, xt::all(), xt::all(), xt::range(0, 50), xt::range(0, 61));
  for (int k = 0; k < 3; ++k) {
    const auto cam = train::pipeline_gradcam(p, odd, k);
    REQUIRE(cam.shape()[0] == 50);
    REQUIRE(cam.shape()[1] == 61);
    float lo = 1, hi = 0;
    for (const float v : cam) {
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
    CHECK(lo >= 0.0f);
    CHECK(hi <= 1.0f);
    CHECK(hi > 0.0f);  // not all zero: the class's count has a gradient somewhere
  }
  CHECK_THROWS_AS(train::pipeline_gradcam(p, odd, 3), error);
}
