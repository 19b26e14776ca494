// Noise2Void: the masked loss and its gradient (closed form and finite differences), D4 tiles against
// data::dihedral, learning (PSNR against the clean truth rises above the noisy input's on a tiny set in a
// few dozen steps), exact resume, tiled = whole-image denoising, checkpoints and bad input.
// One network type: train::noise2void_unet (U-Net depth 2), narrow widths to stay fast.
#include <cmath>
#include <filesystem>
#include <vector>

#include <xtensor/xview.hpp>

#include "microcount/backends/cpu.hpp"
#include "microcount/data/augment.hpp"
#include "microcount/data/synth_noisy.hpp"
#include "microcount/eval/image_quality.hpp"
#include "microcount/train/noise2void.hpp"
#include "test_support.hpp"

using namespace microcount;

namespace {
using model_t = train::noise2void<>;

train::noise2void_options tiny_options() {
  train::noise2void_options o;
  o.base_width = 8;
  o.patch = 32;
  o.batch = 4;
  o.epochs = 2;
  o.steps_per_epoch = 3;
  o.lr = 3e-3;
  o.mask.percent = 1.0;  // 10 px boxes: ~10 masked pixels per 32² tile, more signal per step
  o.tile = 64;
  return o;
}

xt::xtensor<float, 3> plane_of(const io::image& im) {  // [1, H, W]
  xt::xtensor<float, 3> p = xt::xtensor<float, 3>::from_shape({1, im.height(), im.width()});
  std::copy(im.pixels.begin(), im.pixels.end(), p.begin());
  return p;
}

data::noisy_pair_set tiny_pairs(std::size_t images, std::size_t side, std::uint64_t seed) {
  data::noisy_synth_options s;
  s.scene.images = images;
  s.scene.height = s.scene.width = side;
  s.scene.min_cells = 4;
  s.scene.max_cells = 8;
  s.scene.seed = seed;
  s.photon_scale = 0.15;
  return data::make_noisy_pairs(s);
}

std::vector<float> weights_of(model_t& m) {
  std::vector<float> w;
  m.network().for_each_parameter([&](const auto& p) {
    const auto v = p.value->to_vector();
    w.insert(w.end(), v.begin(), v.end());
  });
  return w;
}
}  // namespace

TEST_CASE("noise2void: masked MSE and its gradient on blind-spot masks") {
  rng r(1);
  xt::xtensor<float, 3> tile = xt::xtensor<float, 3>::from_shape({1, 10, 10});  // [1, 10, 10]
  for (auto& v : tile) v = static_cast<float>(r.normal());
  data::blind_spot_options o;
  o.percent = 4;  // 5 px boxes: 4 masked pixels
  const auto m = data::mask_blind_spots(tile, o, r);
  const shape s{1, 1, 10, 10};
  tensor<float, backend::cpu> p(s), t(s), k(s);
  std::vector<float> pred(100);
  for (auto& v : pred) v = static_cast<float>(r.normal());
  p.upload(pred.data());
  t.upload(tile.data());
  k.upload(m.mask.data());
  const auto res = nn::mse_loss{}.evaluate(p, t, k);
  // Closed form: L = 1/|K| Σ_K (p − t)², ∂L/∂p = 2/|K| (p − t) on K and 0 elsewhere.
  const double n = static_cast<double>(m.spots.size());
  REQUIRE(n == 4);
  double expected = 0;
  for (const auto& q : m.spots) {
    const double d = pred[q.y * 10 + q.x] - tile(0, q.y, q.x);
    expected += d * d / n;
  }
  CHECK(res.value == doctest::Approx(expected).epsilon(1e-6));
  const auto g = res.gradient.to_vector();
  for (std::size_t i = 0; i < 100; ++i) {
    const double want = m.mask.data()[i] > 0 ? 2.0 / n * (pred[i] - tile.data()[i]) : 0.0;
    CHECK(g[i] == doctest::Approx(want).epsilon(1e-5));
  }
  // Central finite differences of the loss value at a masked and an unmasked pixel.
  for (const std::size_t i : {m.spots[3].y * 10 + m.spots[3].x, std::size_t{0}}) {
    const float h = 1e-2f;
    auto moved = pred;
    moved[i] += h;
    p.upload(moved.data());
    const double up = nn::mse_loss{}.value(p, t, k);
    moved[i] -= 2 * h;
    p.upload(moved.data());
    const double down = nn::mse_loss{}.value(p, t, k);
    CHECK((up - down) / (2 * h) == doctest::Approx(g[i]).epsilon(1e-3).scale(1e-3));
  }
}

TEST_CASE("noise2void: D4 tiles match data::dihedral") {
  xt::xtensor<float, 3> tile = xt::xtensor<float, 3>::from_shape({2, 5, 5});  // [2, 5, 5]
  for (std::size_t i = 0; i < tile.size(); ++i) tile.data()[i] = static_cast<float>(i);
  data::sample s;
  s.image.pixels = xt::xtensor<float, 4>::from_shape({1, 2, 5, 5});
  std::copy(tile.begin(), tile.end(), s.image.pixels.begin());
  for (int k = 0; k < 8; ++k) {
    const auto a = train::dihedral_tile(tile, k);
    const auto b = data::dihedral(s, k);
    CHECK(std::equal(a.begin(), a.end(), b.image.pixels.begin()));
  }
}

TEST_CASE("noise2void: learns — PSNR against the clean truth rises above the noisy input's") {
  const auto set = tiny_pairs(3, 64, 3);
  std::vector<xt::xtensor<float, 3>> noisy;
  for (const auto& im : set.noisy) noisy.push_back(plane_of(im));
  auto o = tiny_options();
  o.epochs = 1;
  o.steps_per_epoch = 50;
  o.validation_share = 0;
  o.mask.percent = 3;  // 6 px boxes: ~28 masked pixels per 32² tile, more signal per step
  model_t m(o, 1);
  const auto clean = plane_of(set.clean[0]);
  const double range = eval::data_range_of(clean);
  const double before = eval::psnr(clean, noisy[0], range);
  const auto result = train::fit_noise2void(m, std::span<const xt::xtensor<float, 3>>(noisy));
  CHECK(result.epochs.size() == 1);
  const double after = eval::psnr(clean, m.denoise(noisy[0]), range);
  MESSAGE("PSNR noisy " << before << " dB, denoised " << after << " dB");
  CHECK(after > before + 1.0);
  CHECK(eval::ssim(clean, m.denoise(noisy[0]), range) > eval::ssim(clean, noisy[0], range));
}

TEST_CASE("noise2void: resume replays the uninterrupted run exactly; checkpoints rebuild the model") {
  const auto set = tiny_pairs(2, 64, 5);
  std::vector<xt::xtensor<float, 3>> noisy;
  for (const auto& im : set.noisy) noisy.push_back(plane_of(im));
  const std::span<const xt::xtensor<float, 3>> images(noisy);
  const auto o = tiny_options();
  const auto dir_a = test::scratch("n2v_straight"), dir_b = test::scratch("n2v_resumed");

  model_t a(o, 1);
  train::noise2void_fit_options straight, first_half, second_half;
  straight.checkpoints = first_half.checkpoints = second_half.checkpoints = dir_a;
  first_half.checkpoints = second_half.checkpoints = dir_b;
  first_half.max_epochs = 1;
  second_half.resume = dir_b / "latest_model.mcm";
  const auto ra = train::fit_noise2void(a, images, straight);
  CHECK(ra.epochs.size() == 2);
  CHECK(std::isfinite(ra.epochs[1].val_loss));  // 8 tiles: 1 held out

  model_t b(o, 1);
  const auto rb1 = train::fit_noise2void(b, images, first_half);
  CHECK(rb1.stop_reason.rfind("paused", 0) == 0);
  model_t c(o, 1);
  const auto rb2 = train::fit_noise2void(c, images, second_half);
  REQUIRE(rb2.epochs.size() == 2);
  CHECK(weights_of(a) == weights_of(c));
  CHECK(rb2.epochs[1].train_loss == ra.epochs[1].train_loss);
  CHECK(rb2.epochs[1].val_loss == ra.epochs[1].val_loss);

  // best_model.mcm alone rebuilds the model (options, normalisation, weights).
  auto d = model_t::from_checkpoint(ra.best_checkpoint);
  CHECK(d.mean() == a.mean());
  CHECK(d.options().base_width == 8);
  auto e = model_t::from_checkpoint(ra.latest_checkpoint);
  CHECK(weights_of(e) == weights_of(a));
  const auto x = e.denoise(noisy[0]), y = a.denoise(noisy[0]);
  CHECK(x == y);
}

TEST_CASE("noise2void: tiled denoising equals the whole-image result, any size") {
  const auto set = tiny_pairs(1, 160, 7);
  xt::xtensor<float, 3> im = xt::view(plane_of(set.noisy[0]), xt::all(), xt::range(0, 151), xt::range(3, 121));  // [1, 151, 118]
  auto o = tiny_options();
  o.tile = 64;  // several tiles (the margins are the receptive radius, 23 px)
  model_t small(o, 1);
  o.tile = 256;  // one tile
  model_t whole(o, 1);
  const std::vector<xt::xtensor<float, 3>> one{im};
  small.fit_normalization(one);
  whole.fit_normalization(one);
  const auto a = small.denoise(im), b = whole.denoise(im);
  REQUIRE(a.shape() == b.shape());
  CHECK(a.shape()[1] == 151);
  CHECK(a.shape()[2] == 118);
  double worst = 0;
  for (std::size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(double(a.data()[i]) - b.data()[i]));
  CHECK(worst < 1e-3);
}

TEST_CASE("noise2void: bad input is an error naming the problem") {
  auto o = tiny_options();
  o.patch = 30;  // not a multiple of 4
  CHECK_THROWS_WITH_AS(model_t(o, 1), doctest::Contains("patch"), error);
  o = tiny_options();
  model_t m(o, 1);
  const std::vector<xt::xtensor<float, 3>> small{xt::zeros<float>({1ul, 16ul, 16ul})};
  CHECK_THROWS_WITH_AS(train::fit_noise2void(m, std::span<const xt::xtensor<float, 3>>(small)), doctest::Contains("tile"), error);
  const xt::xtensor<float, 3> two = xt::zeros<float>({2ul, 32ul, 32ul});
  CHECK_THROWS_WITH_AS(m.denoise(two), doctest::Contains("channel"), error);
  const auto dir = test::scratch("n2v_bad");
  io::write_text_atomically(dir / "junk.mcm", "not a checkpoint");
  CHECK_THROWS_WITH_AS(model_t::from_checkpoint(dir / "junk.mcm"), doctest::Contains("junk.mcm"), error);
}
