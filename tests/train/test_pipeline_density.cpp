// The density pipeline end to end on a small synthetic data set: it learns, it validates, it writes
// checkpoints, a resumed run ends exactly where an uninterrupted one does, and it predicts any size.
#include <doctest/doctest.h>

#include "microcount/backends/cpu.hpp"
#include "microcount/data/synth.hpp"
#include "microcount/train/any_pipeline.hpp"
#include "microcount/train/trainer.hpp"
#include "pipeline_test_support.hpp"

using namespace microcount;

namespace {

using small_counter = train::pipeline<train::heads::density, nn::unet2d<nn::norm::batch, nn::up::transposed, 2>, backend::cpu>;

train::hyperparameters small_hp() { return test::small_unet_hyperparameters(/*epochs=*/4, /*seed=*/7); }

const std::filesystem::path& synthetic_folder() {
  return test::synthetic_folder("pipeline_density_data", [](data::synth_options& o) {
    o.images = 8;
    o.height = 48;
    o.width = 64;
    o.min_cells = 4;
    o.max_cells = 12;
    o.seed = 3;
  });
}

data::split_indices fixed_split() { return {{0, 1, 2, 3, 4, 5}, {6, 7}, {}}; }

std::vector<float> weights_of(small_counter& p) {
  std::vector<float> w;
  p.network().for_each_parameter([&](const auto& q) { w.insert(w.end(), q.value->data(), q.value->data() + q.value->size()); });
  p.network().for_each_buffer([&](std::string_view, auto& t) { w.insert(w.end(), t.data(), t.data() + t.size()); });
  return w;
}

}  // namespace

TEST_CASE("density pipeline: training lowers the loss, validates every epoch and writes best and latest checkpoints") {
  const auto ds = data::open_dataset(synthetic_folder());
  small_counter p(small_hp(), ds.labels(), 1);
  CHECK(small_counter::architecture() == "density/unet2d<batch,transposed,2>");
  train::training_options o;
  o.checkpoints = test::scratch("pipeline_density_run") / "checkpoints";
  std::vector<std::string> lines;
  o.log = [&](const std::string& l) { lines.push_back(l); };
  auto hp = small_hp();
  hp.epochs = 8;
  small_counter longer(hp, ds.labels(), 1);
  const auto r = train::fit(longer, ds, fixed_split(), o);
  REQUIRE(r.epochs.size() == 8);
  CHECK(r.epochs.back().train_loss < 0.7 * r.epochs.front().train_loss);
  for (const auto& e : r.epochs) {
    CHECK(std::isfinite(e.val_mae));
    CHECK(std::isfinite(e.val_f1));
    CHECK(std::isfinite(e.val_loss));
  }
  CHECK(r.best_epoch >= 1);
  CHECK(std::filesystem::is_regular_file(r.best_checkpoint));
  CHECK(std::filesystem::is_regular_file(r.latest_checkpoint));
  CHECK(lines.size() >= 9);  // a header line and one per epoch
  // The checkpoint carries what rebuilds the pipeline.
  const auto info = train::read_checkpoint_info(r.latest_checkpoint);
  CHECK(info.architecture == small_counter::architecture());
  CHECK(info.labels == ds.labels());
  CHECK(info.hp.epochs == 8);
  CHECK(info.position.epoch == 8);
}

TEST_CASE("density pipeline: a run paused after 2 epochs and resumed ends with the same weights as an uninterrupted one") {
  const auto ds = data::open_dataset(synthetic_folder());
  const auto split = fixed_split();
  small_counter straight(small_hp(), ds.labels(), 1);
  train::training_options a;
  a.checkpoints = test::scratch("pipeline_resume_a");
  const auto ra = train::fit(straight, ds, split, a);

  train::training_options b;
  b.checkpoints = test::scratch("pipeline_resume_b");
  b.max_epochs = 2;
  {
    small_counter first(small_hp(), ds.labels(), 1);
    const auto rb = train::fit(first, ds, split, b);
    CHECK(rb.epochs.size() == 2);
    CHECK(rb.stop_reason.find("paused") != std::string::npos);
  }
  small_counter second(small_hp(), ds.labels(), 1);  // a fresh process would start like this
  b.max_epochs = 0;
  b.resume = b.checkpoints / "latest_model.mcm";
  const auto rb = train::fit(second, ds, split, b);
  REQUIRE(rb.epochs.size() == 4);  // the resumed history includes the first two epochs
  for (std::size_t e = 0; e < 4; ++e) {
    CHECK(rb.epochs[e].train_loss == ra.epochs[e].train_loss);
    CHECK(rb.epochs[e].val_mae == ra.epochs[e].val_mae);
  }
  CHECK(weights_of(second) == weights_of(straight));
  CHECK(rb.best_epoch == ra.best_epoch);
}

TEST_CASE("density pipeline: a network that diverges after its last step of an epoch stops in validation, naming the epoch and the last good checkpoint") {
  const auto ds = data::open_dataset(synthetic_folder());
  auto hp = small_hp();
  hp.ema = 0;  // validation uses the raw weights
  small_counter p(hp, ds.labels(), 1);
  train::training_options o;
  o.checkpoints = test::scratch("pipeline_diverge_in_validation");
  int steps = 0;  // 6 images × 2 crops / batch 4 → 3 steps per epoch; poison after the last step of epoch 2
  o.progress = [&](const std::string&) {
    if (++steps == 6)
      p.network().for_each_parameter([](const auto& q) { q.value->data()[0] = std::numeric_limits<float>::quiet_NaN(); });
  };
  const auto latest = (o.checkpoints / "latest_model.mcm").string();
  try {
    train::fit(p, ds, fixed_split(), o);
    FAIL("a network with NaN weights passed validation");
  } catch (const error& e) {
    const std::string what = e.what();
    CHECK(what.find("epoch 2, validation:") != std::string::npos);
    CHECK(what.find("last good checkpoint: " + latest) != std::string::npos);
  }
  // The checkpoint of epoch 1 is intact and loads.
  CHECK(train::read_checkpoint_info(latest).position.epoch == 1);
}

TEST_CASE("density pipeline: predicts images of any size; checkpoints of another architecture are refused by name") {
  const auto ds = data::open_dataset(synthetic_folder());
  small_counter p(small_hp(), ds.labels(), 1);
  io::image im;
  im.pixels = xt::xtensor<float, 4>::from_shape({1, 1, 50, 70});
  for (std::size_t i = 0; i < im.pixels.size(); ++i) im.pixels.data()[i] = static_cast<float>(i % 17);
  const auto r = p.predict(im);
  CHECK(r.maps.shape()[0] == 1);
  CHECK(r.maps.shape()[1] == 50);
  CHECK(r.maps.shape()[2] == 70);
  CHECK(r.counts.size() == 1);
  CHECK(r.counts[0] >= 0);
  io::image rgb;
  rgb.pixels = xt::xtensor<float, 4>::from_shape({1, 3, 32, 32});
  CHECK_THROWS_WITH_AS(p.predict(rgb), doctest::Contains("3 channel(s), the model was trained on 1"), error);

  const auto dir = test::scratch("pipeline_wrong_arch");
  p.save(dir / "m.mcm", {}, false);
  using other = train::pipeline<train::heads::detection, nn::unet2d<nn::norm::batch, nn::up::transposed, 2>, backend::cpu>;
  other q(small_hp(), ds.labels(), 1);
  CHECK_THROWS_WITH_AS(q.load(dir / "m.mcm"), doctest::Contains("m.mcm: checkpoint is of architecture 'density/"), error);
  auto hp = small_hp();
  hp.base_width = 8;
  small_counter wider(hp, ds.labels(), 1);
  CHECK_THROWS_WITH_AS(wider.load(dir / "m.mcm"), doctest::Contains("does not fit this model"), error);
}

TEST_CASE("density pipeline: the weight average is what best_model holds and what a loaded latest_model predicts with") {
  const auto ds = data::open_dataset(synthetic_folder());
  auto hp = small_hp();
  hp.epochs = 2;
  hp.ema = 0.9;
  small_counter p(hp, ds.labels(), 1);
  train::training_options o;
  o.checkpoints = test::scratch("pipeline_ema");
  const auto r = train::fit(p, ds, fixed_split(), o);
  io::image im = *ds.image(7);
  const auto trained = p.predict(im);  // the average, swapped in for inference
  small_counter best(hp, ds.labels(), 1), latest(hp, ds.labels(), 1);
  latest.load(r.latest_checkpoint);
  const auto from_latest = latest.predict(im);
  CHECK(from_latest.maps == trained.maps);
  if (r.best_epoch == 2) {
    best.load(r.best_checkpoint);
    CHECK(best.predict(im).maps == trained.maps);
  }
  // The raw weights differ from the average (so the average is really used).
  hp.ema = 0;
  small_counter raw(hp, ds.labels(), 1);
  raw.load(r.latest_checkpoint);
  CHECK(raw.predict(im).maps != trained.maps);
  // A checkpoint saved without an average, loaded where ema > 0, predicts with its own weights.
  raw.save(o.checkpoints / "no_average.mcm", {}, true);
  small_counter again(small_hp(), ds.labels(), 1);
  again.load(o.checkpoints / "no_average.mcm");
  CHECK(again.predict(im).maps == raw.predict(im).maps);
}

TEST_CASE("density pipeline: count calibration multiplies the counts per class and travels with the checkpoint") {
  const auto ds = data::open_dataset(synthetic_folder());
  small_counter p(small_hp(), ds.labels(), 1);
  const io::image im = *ds.image(0);
  const auto plain = p.predict(im);
  p.set_count_scale({1.1});
  const auto scaled = p.predict(im);
  CHECK(scaled.counts[0] == doctest::Approx(1.1 * plain.counts[0]));
  CHECK(scaled.points.size() == plain.points.size());  // points are not touched
  const auto dir = test::scratch("pipeline_calibration");
  p.save(dir / "m.mcm", {}, false);
  small_counter q(small_hp(), ds.labels(), 1);
  q.load(dir / "m.mcm");
  CHECK(q.count_scale() == std::vector<double>{1.1});
  CHECK(q.predict(im).counts[0] == doctest::Approx(scaled.counts[0]));
  // The fitted factor is truth / predicted over the validation samples, within [0.8, 1.25], when a class
  // has at least 50 validation points; here each sample's points are repeated to reach that.
  std::vector<data::sample> val;
  double truth = 0, predicted = 0;
  q.set_count_scale({});
  for (std::size_t i = 0; i < 8; ++i) {
    data::sample s = q.normalized(*ds.image(i), ds.name(i));
    for (int rep = 0; rep < 4; ++rep) s.points.insert(s.points.end(), ds.points(i).begin(), ds.points(i).end());
    truth += static_cast<double>(s.points.size());
    predicted += q.predict_normalized(s).counts[0];
    val.push_back(std::move(s));
  }
  REQUIRE(truth >= 50);
  const auto scale = train::fit_count_scale(q, val);
  CHECK(scale[0] == doctest::Approx(predicted > 0 ? std::clamp(truth / predicted, 0.8, 1.25) : 1.0));
  val.resize(1);
  val[0].points.resize(10);
  CHECK(train::fit_count_scale(q, val)[0] == 1.0);  // too few points: no factor
}
