// Heads and hyperparameters, without a network: targets, decoding, JSON round trip and bad input.
#include <doctest/doctest.h>

#include <cmath>
#include <numbers>

#include "microcount/backends/reference.hpp"
#include "microcount/train/heads.hpp"
#include "microcount/train/history.hpp"
#include "microcount/train/hyperparameters.hpp"

using namespace microcount;

namespace {
data::sample blank(std::size_t h, std::size_t w, std::vector<io::point> pts, std::vector<std::string> labels = {"cell"}) {
  data::sample s;
  s.name = "s.tif";
  s.image.pixels = xt::xtensor<float, 4>::from_shape({1, 1, h, w});
  s.image.pixels.fill(0.5f);
  s.points = std::move(pts);
  s.labels = std::move(labels);
  return s;
}
io::point at(double x, double y, int label = 0) {
  io::point p;
  p.x = x;
  p.y = y;
  p.label = label;
  return p;
}
}  // namespace

TEST_CASE("density head: the target sums to scale × points per class; decoding gives the counts and the peaks back") {
  train::hyperparameters hp;
  hp.sigma = 2;
  hp.density_scale = 100;
  hp.min_distance = 3;
  std::vector<data::sample> s{blank(48, 40, {at(10, 12), at(30, 30, 1), at(20, 35, 1)}, {"a", "b"})};
  auto b = train::heads::density::batch<backend::reference>(s, hp, 2);
  REQUIRE(b.density.shape() == shape{1, 2, 48, 40});
  double sums[2] = {0, 0};
  for (index_t c = 0; c < 2; ++c)
    for (index_t i = 0; i < 48 * 40; ++i) sums[c] += b.density[c * 48 * 40 + i];
  CHECK(sums[0] == doctest::Approx(100).epsilon(1e-3));
  CHECK(sums[1] == doctest::Approx(200).epsilon(1e-3));

  xt::xtensor<float, 3> map = xt::xtensor<float, 3>::from_shape({2, 48, 40});
  std::copy(b.density.data(), b.density.data() + b.density.size(), map.begin());
  const auto r = train::heads::density::decode(map, hp);
  REQUIRE(r.counts.size() == 2);
  CHECK(r.counts[0] == doctest::Approx(1).epsilon(1e-3));
  CHECK(r.counts[1] == doctest::Approx(2).epsilon(1e-3));
  REQUIRE(r.points.size() == 3);
  for (const auto& p : r.points) {
    bool near = false;
    for (const auto& q : s[0].points) near |= p.label == q.label && std::hypot(p.x - q.x, p.y - q.y) < 0.5;
    CHECK(near);
  }
  // Half the lone-object peak height: a map scaled by 0.4 has no peaks left at threshold 0.5.
  hp.peak_threshold = 0.5;
  auto faint = map * 0.4f;
  CHECK(train::heads::density::decode(faint, hp).points.empty());
}

TEST_CASE("detection head: peak-1 targets, logits decoded through the sigmoid and the threshold") {
  train::hyperparameters hp;
  hp.sigma = 1.5;
  hp.peak_threshold = 0.5;
  std::vector<data::sample> s{blank(32, 32, {at(8, 8), at(20, 22)})};
  auto b = train::heads::detection::batch<backend::reference>(s, hp, 1);
  CHECK(b.density[8 * 32 + 8] == doctest::Approx(1.0f));
  CHECK(b.density[22 * 32 + 20] == doctest::Approx(1.0f));
  float top = 0;
  for (index_t i = 0; i < b.density.size(); ++i) top = std::max(top, b.density[i]);
  CHECK(top <= 1.0f);
  // Logits: +4 at the peaks' centres, -4 elsewhere.
  xt::xtensor<float, 3> logits = xt::xtensor<float, 3>::from_shape({1, 32, 32});
  for (std::size_t i = 0; i < logits.size(); ++i) logits.data()[i] = b.density[static_cast<index_t>(i)] > 0.9f ? 4.0f : -4.0f;
  const auto r = train::heads::detection::decode(logits, hp);
  CHECK(r.counts.at(0) == 2);
  CHECK(r.points.size() == 2);
  CHECK(r.maps(0, 8, 8) == doctest::Approx(1 / (1 + std::exp(-4.0))));
  // The loss of a perfect confident prediction is far below that of the opposite one.
  tensor<float, backend::reference> good(b.density.shape()), bad(b.density.shape());
  for (index_t i = 0; i < good.size(); ++i) {
    good[i] = b.density[i] > 0.5f ? 6.0f : -6.0f;
    bad[i] = -good[i];
  }
  CHECK(train::heads::detection::loss(good, b.density, hp).value < 0.1 * train::heads::detection::loss(bad, b.density, hp).value);
}

TEST_CASE("regression head: the target is the count vector of each crop") {
  train::hyperparameters hp;
  std::vector<data::sample> s{blank(16, 16, {at(1, 1), at(2, 2, 2), at(3, 3, 2)}, {"naked", "budding", "enveloped"}),
                              blank(16, 16, {}, {"naked", "budding", "enveloped"})};
  auto b = train::heads::regression::batch<backend::reference>(s, hp, 3);
  REQUIRE(b.density.shape() == shape{2, 3});
  CHECK(b.density[0] == 1);
  CHECK(b.density[1] == 0);
  CHECK(b.density[2] == 2);
  for (index_t i = 3; i < 6; ++i) CHECK(b.density[i] == 0);
  CHECK(b.images.shape() == shape{2, 1, 16, 16});
  xt::xtensor<float, 3> out = {{{1.5f}}, {{-0.2f}}, {{2.0f}}};
  const auto r = train::heads::regression::decode(out, hp);
  CHECK(r.counts == std::vector<double>{1.5, 0.0, 2.0});  // negative counts clip to 0
  CHECK(r.points.empty());
}

TEST_CASE("hyperparameters: JSON round trip, partial updates, unknown keys and wrong types are errors naming the key") {
  train::hyperparameters hp;
  hp.lr = 3e-4;
  hp.head = "detection";
  hp.flips = false;
  hp.seed = 12345678901ull;
  const auto back = train::from_json(train::to_json(hp));
  CHECK(train::to_json(back) == train::to_json(hp));
  const auto part = train::from_json(nlohmann::json{{"sigma", 3}, {"epochs", 5}});
  CHECK(part.sigma == 3.0);
  CHECK(part.epochs == 5);
  CHECK(part.lr == train::hyperparameters{}.lr);
  CHECK_THROWS_WITH_AS(train::from_json(nlohmann::json{{"sigmaa", 3}}, {}, "cfg.json"),
                       doctest::Contains("cfg.json: unknown hyperparameter 'sigmaa'"), error);
  CHECK_THROWS_WITH_AS(train::from_json(nlohmann::json{{"epochs", 2.5}}), doctest::Contains("epochs must be an integer"), error);
  CHECK_THROWS_WITH_AS(train::from_json(nlohmann::json{{"lr", "fast"}}), doctest::Contains("lr must be a number"), error);
  CHECK_THROWS_WITH_AS(train::from_json(nlohmann::json{{"head", "magic"}}), doctest::Contains("head must be"), error);
  CHECK_THROWS_WITH_AS(train::from_json(nlohmann::json{{"seed", -1}}), doctest::Contains("seed must be >= 0"), error);
  CHECK_THROWS_AS(train::from_json(nlohmann::json::array()), error);
  // Sane ranges, insane product: 1024 crops of 4096² at width 16 would need 1 TiB for one feature map.
  CHECK_THROWS_WITH_AS(train::from_json(nlohmann::json{{"patch", 4096}, {"batch", 1024}}), doctest::Contains("batch × patch² × base_width is too large"), error);
  CHECK_NOTHROW(train::from_json(nlohmann::json{{"patch", 4096}, {"batch", 4}}));
}

TEST_CASE("history: epoch records round-trip through JSON, NaN as null") {
  train::history h(2);
  h[0] = {1, 0.5, 0.4, 3.0, 0.9, 1e-3, 10};
  h[1] = {2, 0.25, train::not_measured, train::not_measured, train::not_measured, 5e-4, 9};
  const auto j = train::to_json(h);
  CHECK(j[1]["val_mae"].is_null());
  const auto back = train::history_from_json(j);
  REQUIRE(back.size() == 2);
  CHECK(back[0].val_f1 == 0.9);
  CHECK(std::isnan(back[1].val_loss));
  CHECK(back[1].learning_rate == 5e-4);
}
