// train/events.hpp: the event pipeline (one 3D U-Net type: train::event_unet) learns on a tiny synthetic
// movie, resumes exactly, and its chunked/tiled inference equals one whole forward (synthetic and real
// deep-events movies); hyperparameters round-trip; bad checkpoints are errors naming the file.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <vector>

#include "microcount/backends/cpu.hpp"
#include "microcount/data/synth_movie.hpp"
#include "microcount/io/movie.hpp"
#include "microcount/train/events.hpp"
#include "test_support.hpp"

using namespace microcount;

namespace {

// Tiny everything: width 4, crops 8×32², 2 per batch.
train::event_hyperparameters tiny() {
  train::event_hyperparameters hp;
  hp.base_width = 4;
  hp.patch_frames = 8;
  hp.patch_size = 32;
  hp.batch = 2;
  hp.steps_per_epoch = 2;
  hp.epochs = 2;
  hp.lr = 3e-3;
  hp.tile_frames = 6;
  hp.tile_size = 64;
  hp.jitter = 4;
  hp.jitter_frames = 1;
  return hp;
}

train::annotated_movie synthetic(std::uint64_t seed, const train::event_hyperparameters& hp) {
  data::movie_synth_options o;
  o.frames = 20;
  o.height = 48;
  o.width = 48;
  o.events = 4;
  o.bright_spots = 3;
  o.seed = seed;
  auto m = data::make_synthetic_movie(o);
  return train::make_annotated_movie("synthetic_" + std::to_string(seed), std::move(m.frames), std::move(m.objects), hp);
}

// The network's whole-movie forward (one tile, evaluation mode): [3, T, H, W].
template <class P>
xt::xtensor<float, 4> whole_forward(P& p, const xt::xtensor<float, 3>& frames) {
  const auto& s = frames.shape();
  tensor<float, backend::cpu> x({1, 1, static_cast<index_t>(s[0]), static_cast<index_t>(s[1]), static_cast<index_t>(s[2])});
  x.upload(frames.data());
  p.network().set_mode(nn::mode::evaluation);
  const auto y = p.network().forward(x);  // [1, 3, T, H, W]
  xt::xtensor<float, 4> out = xt::xtensor<float, 4>::from_shape({3, s[0], s[1], s[2]});
  y.download(out.data());
  return out;
}

template <class P>
std::vector<float> weights(P& p) {
  std::vector<float> w;
  p.network().for_each_parameter([&](const auto& q) {
    std::vector<float> v(static_cast<std::size_t>(q.value->size()));
    q.value->download(v.data());
    w.insert(w.end(), v.begin(), v.end());
  });
  return w;
}

}  // namespace

TEST_CASE("event crops: class-balanced around events, flips keep image and labels together") {
  auto hp = tiny();
  hp.event_share = 1;
  hp.spot_share = 0;
  const std::vector<train::annotated_movie> movies{synthetic(3, hp)};
  const train::event_crop_sampler sampler(movies, hp);
  std::vector<float> img(2 * 8 * 32 * 32), lab(img.size());
  rng r(5);
  int with_event = 0;
  for (int i = 0; i < 10; ++i) {
    sampler.draw(r, img.data(), lab.data());
    for (int n = 0; n < 2; ++n)
      with_event += std::count(lab.begin() + n * 8 * 32 * 32, lab.begin() + (n + 1) * 8 * 32 * 32, 2.0f) > 0;
  }
  CHECK(with_event == 20);  // every crop centred (with jitter ≤ 4) on an event holds part of its cone
  // Labels are the movie's classes: each label value is 0, 1 or 2 (movie larger than the crop: none ignored).
  CHECK(std::all_of(lab.begin(), lab.end(), [](float v) { return v == 0 || v == 1 || v == 2; }));
}

TEST_CASE("event pipeline learns on a tiny synthetic movie (the loss falls)") {
  auto hp = tiny();
  const std::vector<train::annotated_movie> movies{synthetic(11, hp)};
  train::event_pipeline<> p(hp);
  const train::event_crop_sampler sampler(movies, hp);
  const shape s{hp.batch, 1, hp.patch_frames, hp.patch_size, hp.patch_size};
  std::vector<float> img(static_cast<std::size_t>(s.size())), lab(img.size());
  tensor<float, backend::cpu> x(s), y(s);
  rng r(1);
  sampler.draw(r, img.data(), lab.data());  // one fixed batch: the loss on it must fall when fitting it
  x.upload(img.data());
  y.upload(lab.data());
  const double first = p.train_step(x, y);
  double last = first;
  for (int i = 0; i < 15; ++i) last = p.train_step(x, y);
  MESSAGE("tversky loss " << first << " -> " << last);
  CHECK(last < first - 0.02);
  auto focal = hp;
  focal.loss = "focal";
  train::event_pipeline<> q(focal);
  const double f0 = q.train_step(x, y);
  double f1 = f0;
  for (int i = 0; i < 10; ++i) f1 = q.train_step(x, y);
  CHECK(f1 < f0);
}

TEST_CASE("event training resumes exactly; best/latest checkpoints; from_checkpoint rebuilds the model") {
  const auto dir = test::scratch("events_resume");
  auto hp = tiny();
  const std::vector<train::annotated_movie> movies{synthetic(21, hp), synthetic(22, hp)};
  const std::span<const train::annotated_movie> all(movies);
  train::event_pipeline<> straight(hp);
  const auto a = train::fit_events(straight, all.first(1), all.last(1), {.checkpoints = dir / "a"});
  REQUIRE(a.epochs.size() == 2);
  CHECK(std::isfinite(a.epochs[0].val_f1));
  CHECK(std::filesystem::exists(dir / "a" / "best_model.mcm"));

  train::event_pipeline<> first(hp);
  const auto b1 = train::fit_events(first, all.first(1), all.last(1), {.checkpoints = dir / "b", .max_epochs = 1});
  CHECK(b1.stop_reason.find("paused") == 0);
  train::event_pipeline<> second(hp);
  const auto b2 = train::fit_events(second, all.first(1), all.last(1), {.checkpoints = dir / "b", .resume = dir / "b" / "latest_model.mcm"});
  REQUIRE(b2.epochs.size() == 2);
  CHECK(b2.epochs[1].train_loss == a.epochs[1].train_loss);
  CHECK(weights(second) == weights(straight));  // bit for bit

  auto loaded = train::event_pipeline<>::from_checkpoint(dir / "a" / "latest_model.mcm");
  CHECK(weights(loaded) == weights(straight));
  CHECK(loaded.hp().base_width == 4);
  const auto s1 = straight.scores(movies[1].frames), s2 = loaded.scores(movies[1].frames);
  CHECK(std::equal(s1.begin(), s1.end(), s2.begin()));

  CHECK_THROWS_WITH_AS(train::event_pipeline<>::from_checkpoint(dir / "missing.mcm"), doctest::Contains("missing.mcm"), error);
  io::write_text_atomically(dir / "junk.mcm", "not a checkpoint at all, just text padding to 24+ bytes");
  CHECK_THROWS_WITH_AS(train::event_pipeline<>::from_checkpoint(dir / "junk.mcm"), doctest::Contains("junk.mcm"), error);
}

TEST_CASE("event inference of any movie size: time chunks and spatial tiles equal one whole forward") {
  auto hp = tiny();
  train::event_pipeline<> p(hp);
  const auto radius = infer::receptive_radius<train::event_unet>(p.config());
  MESSAGE("receptive radius (t, y, x) = " << radius[0] << ", " << radius[1] << ", " << radius[2]);
  // Tiles of 2·radius + 16 pixels on a movie wider than one tile; chunks of 4 frames.
  const index_t side = (2 * radius[1] + 16 + 3) / 4 * 4;
  p.detection_settings().tile_size = side;
  p.detection_settings().tile_frames = 4;
  rng r(9);
  xt::xtensor<float, 3> frames = xt::xtensor<float, 3>::from_shape({13, static_cast<std::size_t>(side + 20), static_cast<std::size_t>(side + 36)});
  for (auto& v : frames) v = static_cast<float>(r.uniform());
  // Trained a little, so BatchNorm's running statistics are not the identity.
  const std::vector<train::annotated_movie> movies{synthetic(4, hp)};
  train::fit_events(p, movies, {}, {});
  const auto whole = whole_forward(p, frames);  // [3, T, H, W]
  const auto tiled = p.scores(frames);
  REQUIRE(tiled.shape() == whole.shape());
  double worst = 0;
  for (std::size_t i = 0; i < whole.size(); ++i) worst = std::max(worst, static_cast<double>(std::abs(whole.data()[i] - tiled.data()[i])));
  CHECK(worst < 1e-4);
  CHECK(p.segment(frames) == post::argmax_labels(whole));
}

TEST_CASE("event detection on a real deep-events movie (5 float16 frames of 256×256): tiled = whole") {
  MICROCOUNT_REQUIRE_DATA();
  const auto movie = io::read_movie(test::data_dir() / "formats" / "deep-events" / "event1_images.tif");
  REQUIRE(movie.frames.shape()[0] == 5);
  auto hp = tiny();
  hp.tile_size = 128;  // 256² in 3×3 tiles; 5 frames in chunks of 2
  hp.tile_frames = 2;
  train::event_pipeline<> p(hp);
  xt::xtensor<float, 3> frames = movie.frames;
  data::normalize_frames(frames, hp.normalize_low, hp.normalize_high);
  const auto whole = whole_forward(p, frames);
  const auto tiled = p.scores(frames);
  double worst = 0;
  for (std::size_t i = 0; i < whole.size(); ++i) worst = std::max(worst, static_cast<double>(std::abs(whole.data()[i] - tiled.data()[i])));
  CHECK(worst < 1e-4);
  const auto events = p.detect(movie.frames);  // untrained: whatever it finds lies inside the movie
  for (const auto& e : events) {
    CHECK(e.frame >= 0);
    CHECK(e.frame <= 4);
    CHECK(e.x <= 255);
  }
}

TEST_CASE("event hyperparameters: JSON round trip, --set, and errors naming the key") {
  auto hp = train::with_settings({}, "base_width=6,loss=focal,event_radii=5:3:1,flips=false,min_size=7");
  CHECK(hp.base_width == 6);
  CHECK(hp.loss == "focal");
  CHECK(hp.event_radii == std::vector<double>{5, 3, 1});
  CHECK_FALSE(hp.flips);
  const auto back = train::event_hyperparameters_from_json(train::to_json(hp));
  CHECK(train::to_json(back) == train::to_json(hp));
  CHECK_THROWS_WITH_AS(train::with_settings({}, "nosuch=1"), doctest::Contains("nosuch"), error);
  CHECK_THROWS_WITH_AS(train::with_settings({}, "patch_size=30"), doctest::Contains("patch_size"), error);
  CHECK_THROWS_WITH_AS(train::with_settings({}, "loss=l2"), doctest::Contains("loss"), error);
  CHECK_THROWS_WITH_AS(train::with_settings({}, "base_width=wide"), doctest::Contains("base_width"), error);
}
