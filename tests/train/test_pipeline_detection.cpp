// The detection pipeline (peak-1 heat map, sigmoid focal loss, points = peaks above a probability) end
// to end on a small synthetic data set: the focal loss falls, a briefly trained model finds the held-out
// objects far better than an untrained one, and the points it finds sit on the annotated centres.
#include <doctest/doctest.h>

#include <cmath>

#include "microcount/backends/cpu.hpp"
#include "microcount/data/synth.hpp"
#include "microcount/eval/matching.hpp"
#include "microcount/eval/metrics.hpp"
#include "microcount/train/trainer.hpp"
#include "pipeline_test_support.hpp"

using namespace microcount;

namespace {

using small_detector = train::pipeline<train::heads::detection, nn::unet2d<nn::norm::batch, nn::up::transposed, 2>, backend::cpu>;

train::hyperparameters detector_hp() {
  train::hyperparameters hp;
  hp.head = "detection";
  hp.base_width = 8;
  hp.depth = 2;
  hp.patch = 32;
  hp.batch = 4;
  hp.patches_per_image = 4;
  hp.epochs = 10;
  hp.lr = 5e-3;
  hp.seed = 11;
  hp.sigma = 2.0;
  hp.match_radius = 3.0;
  return hp;
}

// 12 images 48×64 with 4–10 well-separated cells: 8 to train, 2 to validate, 2 held out.
const std::filesystem::path& synthetic_folder() {
  return test::synthetic_folder("pipeline_detection_data", [](data::synth_options& o) {
    o.images = 12;
    o.height = 48;
    o.width = 64;
    o.min_cells = 4;
    o.max_cells = 10;
    o.touching = 0.0;
    o.seed = 21;
  });
}

const data::split_indices split{{0, 1, 2, 3, 4, 5, 6, 7}, {8, 9}, {10, 11}};

struct held_out_scores {
  eval::detection_counts counts;
  double max_distance = 0;  // of the matched pairs, pixels
};

held_out_scores score_held_out(small_detector& p, const data::dataset& ds) {
  held_out_scores s;
  for (const auto i : split.test) {
    const auto r = p.predict(*ds.image(i));
    const auto m = eval::match_points(ds.points(i), r.points, {.radius = p.hp().match_radius});
    s.counts += eval::detection_counts_of(m);
    for (const auto& pair : m.pairs) s.max_distance = std::max(s.max_distance, pair.distance);
  }
  return s;
}

}  // namespace

TEST_CASE("detection pipeline: the focal loss falls and held-out F1 rises far above an untrained model's") {
  const auto ds = data::open_dataset(synthetic_folder());
  small_detector p(detector_hp(), ds.labels(), 1);
  CHECK(small_detector::architecture() == "detection/unet2d<batch,transposed,2>");
  const auto before = score_held_out(p, ds);

  const auto r = train::fit(p, ds, split);
  REQUIRE(r.epochs.size() == 10);
  CHECK(r.epochs.back().train_loss < 0.5 * r.epochs.front().train_loss);
  for (const auto& e : r.epochs) CHECK(std::isfinite(e.val_f1));

  const auto after = score_held_out(p, ds);
  MESSAGE("held-out F1 untrained " << before.counts.f1() << ", trained " << after.counts.f1() << " (TP " << after.counts.true_positives
                                   << ", FP " << after.counts.false_positives << ", FN " << after.counts.false_negatives
                                   << "), farthest match " << after.max_distance << " px; loss " << r.epochs.front().train_loss
                                   << " -> " << r.epochs.back().train_loss);
  CHECK(before.counts.f1() < 0.3);
  CHECK(after.counts.f1() > 0.8);
  CHECK(after.counts.f1() > before.counts.f1() + 0.5);
  // Every matched point lies within the radius by construction; most truth points are matched, and the
  // matches sit close to the centre (the heat-map peak is the annotated pixel).
  CHECK(after.counts.recall() > 0.75);
  CHECK(after.max_distance <= p.hp().match_radius);
}

TEST_CASE("detection pipeline: points are the heat map's peaks, counts are the number of points, maps are probabilities") {
  const auto ds = data::open_dataset(synthetic_folder());
  auto hp = detector_hp();
  hp.epochs = 3;
  small_detector p(hp, ds.labels(), 1);
  train::fit(p, ds, split);
  const auto r = p.predict(*ds.image(split.test[0]));
  REQUIRE(r.maps.shape()[0] == 1);
  CHECK(r.maps.shape()[1] == 48);
  CHECK(r.maps.shape()[2] == 64);
  REQUIRE(r.counts.size() == 1);
  CHECK(r.counts[0] == static_cast<double>(r.points.size()));
  REQUIRE(r.scores.size() == r.points.size());
  for (const float v : r.maps) {
    CHECK(v >= 0.0f);
    CHECK(v <= 1.0f);
  }
  for (std::size_t k = 0; k < r.points.size(); ++k) {
    // The score is the map at the peak pixel; sub-pixel refinement moves the point by at most half a pixel.
    const auto y = std::lround(r.points[k].y), x = std::lround(r.points[k].x);
    float highest = 0;
    for (long dy = -1; dy <= 1; ++dy)
      for (long dx = -1; dx <= 1; ++dx)
        if (y + dy >= 0 && y + dy < 48 && x + dx >= 0 && x + dx < 64)
          highest = std::max(highest, r.maps(0, static_cast<std::size_t>(y + dy), static_cast<std::size_t>(x + dx)));
    CHECK(r.scores[k] >= hp.peak_threshold);
    CHECK(highest == doctest::Approx(r.scores[k]).epsilon(1e-5));
  }
}
