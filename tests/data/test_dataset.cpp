// Datasets, splits, patches, normalisation and batches: real data (vgg-cells, mbm) and synthetic
// samples checked against brute force.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>
#include <thread>
#include <vector>

#include "microcount/data/batch.hpp"
#include "microcount/data/dataset.hpp"
#include "microcount/data/normalize.hpp"
#include "microcount/data/patches.hpp"
#include "microcount/data/split.hpp"
#include "microcount/data/synth.hpp"
#include "microcount/io/png.hpp"
#include "test_support.hpp"

using namespace microcount;
using data::sample;

namespace {

// A grey sample [1, 1, h, w] of zeros with a pixel of value 100 + i under point i (integer positions).
sample dotted(std::size_t h, std::size_t w, std::size_t n, std::uint64_t seed, std::size_t channels = 1) {
  rng r(seed);
  sample s{"dots.tif", {}, {}, {"cell"}};
  s.image.pixels = xt::zeros<float>({std::size_t{1}, channels, h, w});
  std::set<std::pair<std::size_t, std::size_t>> taken;
  while (s.points.size() < n) {
    const std::size_t y = r.below(h), x = r.below(w);
    if (!taken.insert({y, x}).second) continue;
    for (std::size_t c = 0; c < channels; ++c) s.image.pixels(0, c, y, x) = static_cast<float>(100 + s.points.size() + 1000 * c);
    s.points.push_back({static_cast<double>(x), static_cast<double>(y), 0, -1, -1});
  }
  return s;
}

// numpy.percentile(values, q) by a full sort.
double numpy_percentile(std::vector<float> v, double q) {
  std::sort(v.begin(), v.end());
  const double at = q / 100.0 * static_cast<double>(v.size() - 1);
  const auto k = static_cast<std::size_t>(std::floor(at));
  if (k + 1 >= v.size()) return v.back();
  return v[k] + (at - static_cast<double>(k)) * (static_cast<double>(v[k + 1]) - v[k]);
}

}  // namespace

TEST_CASE("dataset: vgg-cells opens as 200 grey samples with 35,192 points, images cached") {
  MICROCOUNT_REQUIRE_DATA();
  const auto ds = data::open_dataset(test::data_dir() / "vgg-cells");
  CHECK(ds.size() == 200);
  CHECK(ds.total_points() == 35192);
  CHECK(ds.warnings().empty());
  REQUIRE(ds.labels() == std::vector<std::string>{"cell"});
  CHECK(ds.name(0) == "image_001.tif");
  CHECK(ds.name(199) == "image_200.tif");
  std::size_t fewest = 1u << 30, most = 0;
  for (std::size_t i = 0; i < ds.size(); ++i) fewest = std::min(fewest, ds.points(i).size()), most = std::max(most, ds.points(i).size());
  CHECK(fewest == 74);
  CHECK(most == 317);
  const auto a = ds.image(3);
  CHECK(a == ds.image(3));  // the same cached image
  CHECK(a->pixels.shape() == std::array<std::size_t, 4>{1, 1, 256, 256});
  CHECK(a->source_dtype == io::dtype::uint8);
  rng r;
  const sample s = ds.get(3, r);
  CHECK(s.name == "image_004.tif");
  CHECK(s.points.size() == ds.points(3).size());
  CHECK(s.image.pixels == a->pixels);
  // Points sit on the cells: the mean pixel under the points is well above the image mean.
  double under = 0;
  for (const auto& p : s.points) under += s.image.pixels(0, 0, static_cast<std::size_t>(std::lround(p.y)), static_cast<std::size_t>(std::lround(p.x)));
  CHECK(under / static_cast<double>(s.points.size()) > 1.5 * xt::mean(s.image.pixels)());
}

TEST_CASE("dataset: lazy loading from two threads gives each image once and the same pixels") {
  MICROCOUNT_REQUIRE_DATA();
  const auto ds = data::open_dataset(test::data_dir() / "vgg-cells");
  std::vector<std::shared_ptr<const io::image>> seen_a(20), seen_b(20);
  std::thread t1([&] { for (std::size_t i = 0; i < 20; ++i) seen_a[i] = ds.image(i); });
  std::thread t2([&] { for (std::size_t i = 20; i-- > 0;) seen_b[i] = ds.image(i); });
  t1.join();
  t2.join();
  for (std::size_t i = 0; i < 20; ++i) CHECK(seen_a[i] == seen_b[i]);
  const auto copy = ds;  // copies share the cache
  CHECK(copy.image(5) == seen_a[5]);
}

TEST_CASE("dataset: mbm opens as 44 RGB samples with 5,553 points from napari CSVs") {
  MICROCOUNT_REQUIRE_DATA();
  const auto ds = data::open_dataset(test::data_dir() / "mbm");
  CHECK(ds.size() == 44);
  CHECK(ds.total_points() == 5553);
  CHECK(ds.warnings().empty());
  rng r;
  const sample s = ds.get(0, r);
  CHECK(s.name == "BM_GRAZ_HE_0001_01_000.tif");
  CHECK(s.image.pixels.shape() == std::array<std::size_t, 4>{1, 3, 600, 600});
  for (const auto& p : s.points) {
    CHECK(p.x >= -0.5);
    CHECK(p.x <= 599.5);
    CHECK(p.y >= -0.5);
    CHECK(p.y <= 599.5);
  }
  // Standard protocol: 15 / 7 / 22 in name order.
  const auto sp = data::split_in_order(ds.size(), {15, 7, 22});
  CHECK(sp.train.size() == 15);
  CHECK(sp.validation.front() == 15);
  CHECK(sp.test.back() == 43);
}

TEST_CASE("dataset: missing images are an error naming them, unannotated images a warning") {
  const auto dir = test::scratch("dataviews_missing");
  io::image im;
  im.pixels = xt::ones<float>({std::size_t{1}, std::size_t{1}, std::size_t{8}, std::size_t{8}});
  io::write_tiff(dir / "a.tif", im, io::dtype::uint8);
  io::write_tiff(dir / "extra.tif", im, io::dtype::uint8);
  io::annotations ann;
  ann.format = "cvat_images";
  ann.label_index("cell");
  ann.image("a.tif") = {"a.tif", 8, 8, 0, {{1, 2, 0, -1, -1}}};
  io::write_annotations(dir / "annotations.xml", ann, "cvat_images");
  const auto ds = data::open_dataset(dir);
  CHECK(ds.size() == 1);
  REQUIRE(ds.warnings().size() == 1);
  CHECK(ds.warnings()[0].find("extra.tif") != std::string::npos);

  ann.image("gone.tif") = {"gone.tif", 8, 8, 0, {}};
  io::write_annotations(dir / "annotations.xml", ann, "cvat_images");
  CHECK_THROWS_WITH_AS(data::open_dataset(dir), doctest::Contains("gone.tif"), error);

  // The annotation's size must match the image's.
  ann.images.pop_back();
  ann.images[0].width = 9;
  io::write_annotations(dir / "annotations.xml", ann, "cvat_images");
  const auto bad = data::open_dataset(dir);
  CHECK_THROWS_WITH_AS((void)bad.image(0), doctest::Contains("a.tif"), error);
  CHECK_THROWS_AS(data::open_dataset(dir / "nothing"), error);
}

TEST_CASE("dataset: 16-bit, two-class synthetic folder; normalised and batched per class") {
  const auto dir = test::scratch("dataviews_synth16");
  data::synth_options o;
  o.images = 4;
  o.height = 48;
  o.width = 64;
  o.classes = 2;
  o.min_cells = 5;
  o.max_cells = 12;
  o.dtype = io::dtype::uint16;
  const auto made = data::write_synthetic_dataset(dir, o);
  const auto ds = data::open_dataset(dir);
  REQUIRE(ds.size() == 4);
  CHECK(ds.total_points() == made.annotations.total_points());
  CHECK(ds.labels() == made.annotations.labels);
  rng r;
  sample s = ds.get(1, r);
  CHECK(s.image.source_dtype == io::dtype::uint16);
  CHECK(s.image.pixels == made.images[1].pixels);
  CHECK(xt::amax(s.image.pixels)() > 255);  // really 16-bit values
  data::normalize_percentile(s);
  std::vector<float> v(s.image.pixels.begin(), s.image.pixels.end());
  CHECK(numpy_percentile(v, 1) == doctest::Approx(0).epsilon(1e-5));
  CHECK(numpy_percentile(v, 99.8) == doctest::Approx(1).epsilon(1e-5));
  const std::vector<std::size_t> all{0, 1, 2, 3};
  const auto b = data::make_batch<backend::cpu>(ds, all, r);
  REQUIRE(b.density.dim(1) == 2);
  for (std::size_t i = 0; i < 4; ++i)
    for (int cls = 0; cls < 2; ++cls) {
      double mass = 0;
      for (std::size_t j = 0; j < 48 * 64; ++j) mass += b.density[static_cast<index_t>((i * 2 + cls) * 48 * 64 + j)];
      const auto n = std::count_if(ds.points(i).begin(), ds.points(i).end(), [&](const io::point& p) { return p.label == cls; });
      CHECK(mass == doctest::Approx(static_cast<double>(n)).epsilon(1e-5));
    }
}

TEST_CASE("dataset: RGB PNG images with napari CSVs beside them") {
  const auto dir = test::scratch("dataviews_png");
  xt::xtensor<std::uint8_t, 3> rgb = xt::xtensor<std::uint8_t, 3>::from_shape({6, 8, 3});  // [H, W, C]
  for (std::size_t i = 0; i < rgb.size(); ++i) rgb.data()[i] = static_cast<std::uint8_t>(i);
  io::write_png(dir / "a.png", rgb);
  io::write_text_atomically(dir / "a.csv", "index,axis-0,axis-1\n0,2,3\n1,5,7\n");
  const auto ds = data::open_dataset(dir);
  REQUIRE(ds.size() == 1);
  rng r;
  const sample s = ds.get(0, r);
  CHECK(s.name == "a.png");
  REQUIRE(s.image.pixels.shape() == std::array<std::size_t, 4>{1, 3, 6, 8});
  CHECK(s.image.pixels(0, 2, 4, 5) == rgb(4, 5, 2));
  REQUIRE(s.points.size() == 2);
  CHECK(s.points[1].x == 7);
  CHECK(s.points[1].y == 5);
}

TEST_CASE("split: seeded fractions partition the indices, deterministically") {
  const auto a = data::split(200, {}, 7), b = data::split(200, {}, 7), c = data::split(200, {}, 8);
  CHECK(a.train.size() == 120);
  CHECK(a.validation.size() == 40);
  CHECK(a.test.size() == 40);
  CHECK(a.train == b.train);
  CHECK(a.test == b.test);
  CHECK(a.train != c.train);
  std::vector<std::size_t> all;
  for (const auto* l : {&a.train, &a.validation, &a.test}) {
    CHECK(std::is_sorted(l->begin(), l->end()));
    all.insert(all.end(), l->begin(), l->end());
  }
  std::sort(all.begin(), all.end());
  std::vector<std::size_t> expect(200);
  std::iota(expect.begin(), expect.end(), std::size_t{0});
  CHECK(all == expect);
  const auto odd = data::split(7, {0.5, 0.25, 0.25}, 1);
  CHECK(odd.train.size() + odd.validation.size() + odd.test.size() == 7);
  CHECK_THROWS_AS(data::split(10, {0.5, 0.5, 0.5}), error);
  CHECK_THROWS_AS(data::split(10, {-0.2, 0.6, 0.6}), error);
}

TEST_CASE("split: explicit name lists") {
  std::vector<sample> samples;
  for (const char* n : {"a.tif", "b.tif", "c.tif", "d.tif"}) samples.push_back(sample{n, {}, {}, {"cell"}});
  for (auto& s : samples) s.image.pixels = xt::zeros<float>({std::size_t{1}, std::size_t{1}, std::size_t{2}, std::size_t{2}});
  const auto ds = data::dataset::from_samples(samples);
  const auto sp = data::split(ds, {"d.tif", "a.tif"}, {"c.tif"}, {});
  CHECK(sp.train == std::vector<std::size_t>{0, 3});
  CHECK(sp.validation == std::vector<std::size_t>{2});
  CHECK(sp.test.empty());
  CHECK_THROWS_WITH_AS(data::split(ds, {"z.tif"}, {}, {}), doctest::Contains("z.tif"), error);
  CHECK_THROWS_WITH_AS(data::split(ds, {"a.tif"}, {"a.tif"}, {}), doctest::Contains("a.tif"), error);
  const auto sub = data::subset(ds, sp.train);
  rng r;
  CHECK(sub.size() == 2);
  CHECK(sub.get(1, r).name == "d.tif");
  CHECK_THROWS_AS(data::subset(ds, {4}), error);
}

TEST_CASE("patches: every kept point lies on its bright pixel, and only those") {
  const sample s = dotted(50, 70, 120, 3, 2);
  const auto ds = data::dataset::from_samples({s});
  const auto view = data::random_patches(ds, 16, 24, 30);
  CHECK(view.size() == 30);
  rng r(11);
  std::size_t kept = 0;
  for (std::size_t i = 0; i < view.size(); ++i) {
    const sample p = view.get(i, r);
    REQUIRE(p.image.pixels.shape() == std::array<std::size_t, 4>{1, 2, 16, 24});
    std::size_t bright = 0;
    for (std::size_t y = 0; y < 16; ++y)
      for (std::size_t x = 0; x < 24; ++x) bright += p.image.pixels(0, 0, y, x) > 0;
    CHECK(bright == p.points.size());
    for (const auto& q : p.points) {
      REQUIRE(q.x >= 0);
      REQUIRE(q.y >= 0);
      const auto x = static_cast<std::size_t>(q.x), y = static_cast<std::size_t>(q.y);
      REQUIRE(x < 24);
      REQUIRE(y < 16);
      CHECK(p.image.pixels(0, 0, y, x) > 0);
      CHECK(p.image.pixels(0, 1, y, x) == p.image.pixels(0, 0, y, x) + 1000);
    }
    kept += p.points.size();
  }
  CHECK(kept > 0);
}

TEST_CASE("patches: tiling crops keep every point once; crops past the border are filled") {
  sample s = dotted(40, 40, 90, 5);
  // Sub-pixel points on the tile seams must go to exactly one tile.
  s.points.push_back({9.5, 3.0, 0, -1, -1});
  s.points.push_back({19.49, 19.5, 0, -1, -1});
  s.points.push_back({-0.5, -0.5, 0, -1, -1});
  std::size_t total = 0;
  for (std::int64_t top = 0; top < 40; top += 10)
    for (std::int64_t left = 0; left < 40; left += 10) total += data::crop(s, top, left, 10, 10).points.size();
  CHECK(total == s.points.size());
  const sample out = data::crop(s, -5, 35, 12, 12, -1.0f);
  CHECK(out.image.pixels(0, 0, 0, 0) == -1.0f);  // above the image
  CHECK(out.image.pixels(0, 0, 6, 6) == -1.0f);  // right of it
  CHECK(out.image.pixels(0, 0, 6, 4) == s.image.pixels(0, 0, 1, 39));
  CHECK_THROWS_WITH_AS(data::crop(s, 0, 0, 0, 4), doctest::Contains("dots.tif"), error);
  CHECK_THROWS_AS(data::crop(s, 0, 0, 1u << 17, 1u << 17), error);  // ~64 GB: refused before allocating
  // A patch larger than the image holds all of it.
  const auto big = data::random_patches(data::dataset::from_samples({s}), 64, 48, 2);
  rng r(1);
  CHECK(big.get(1, r).points.size() == s.points.size());
}

TEST_CASE("normalize: percentiles equal numpy's (full sort, linear interpolation)") {
  rng r(9);
  for (std::size_t n : {1u, 2u, 7u, 1000u, 4099u}) {
    std::vector<float> v(n);
    for (auto& x : v) x = static_cast<float>(std::floor(r.uniform(0, 50)));  // many ties
    for (double q : {0.0, 1.0, 25.0, 50.0, 99.8, 100.0}) {
      std::vector<float> work = v;
      CHECK(data::percentile(work, q) == doctest::Approx(numpy_percentile(v, q)).epsilon(1e-12));
    }
  }
  // Per channel: after normalisation the 1st percentile is 0 and the 99.8th is 1 in every channel.
  sample s{"rgb", {}, {}, {}};
  s.image.pixels = xt::xtensor<float, 4>::from_shape({1, 3, 31, 17});
  for (std::size_t c = 0; c < 3; ++c)
    for (std::size_t i = 0; i < 31 * 17; ++i) (&s.image.pixels(0, c, 0, 0))[i] = static_cast<float>(r.uniform(0, 100) * (c + 1) + 1000 * c);
  data::normalize_percentile(s);
  for (std::size_t c = 0; c < 3; ++c) {
    std::vector<float> ch(&s.image.pixels(0, c, 0, 0), &s.image.pixels(0, c, 0, 0) + 31 * 17);
    CHECK(numpy_percentile(ch, 1) == doctest::Approx(0).epsilon(1e-5));
    CHECK(numpy_percentile(ch, 99.8) == doctest::Approx(1).epsilon(1e-5));
  }
  // NaN and infinities are skipped, as numpy.nanpercentile does.
  std::vector<float> holes{3, NAN, 1, INFINITY, 2, -INFINITY, 4};
  CHECK(data::percentile(holes, 50) == doctest::Approx(2.5));
  std::vector<float> none{NAN};
  CHECK_THROWS_AS(data::percentile(none, 50), error);
  sample f = s;
  data::normalize_fixed(f, 1, 2);
  CHECK(f.image.pixels(0, 2, 3, 4) == doctest::Approx((s.image.pixels(0, 2, 3, 4) - 1) / 2));
}

TEST_CASE("batch: stacked images, densities summing to scale x counts, same draws for any thread count") {
  std::vector<sample> samples;
  for (std::uint64_t k = 0; k < 5; ++k) samples.push_back(dotted(32, 40, 10 + k, k));
  samples[2].points[0].label = 1;
  samples[0].labels = samples[1].labels = samples[2].labels = samples[3].labels = samples[4].labels = {"a", "b"};
  const auto b = data::make_batch<backend::cpu>(std::span<const sample>(samples), {.sigma = 2, .scale = 100});
  CHECK(b.images.shape().str() == microcount::shape({5, 1, 32, 40}).str());
  CHECK(b.density.shape().str() == microcount::shape({5, 2, 32, 40}).str());
  for (std::size_t i = 0; i < 5; ++i) {
    double sum = 0;
    for (std::size_t j = 0; j < 2 * 32 * 40; ++j) sum += b.density[static_cast<index_t>(i * 2 * 32 * 40 + j)];
    CHECK(sum == doctest::Approx(100.0 * samples[i].points.size()).epsilon(1e-5));
    CHECK(b.counts[i] == samples[i].points.size());
    CHECK(b.images[static_cast<index_t>(i * 32 * 40 + 40 * 5 + 7)] == samples[i].image.pixels(0, 0, 5, 7));
  }
  samples[1].image.pixels = xt::zeros<float>({std::size_t{1}, std::size_t{1}, std::size_t{32}, std::size_t{41}});
  CHECK_THROWS_WITH_AS(data::make_batch<backend::cpu>(std::span<const sample>(samples)), doctest::Contains("dots.tif"), error);

  const auto view = data::random_patches(data::dataset::from_samples({dotted(64, 64, 200, 1)}), 24, 24, 8);
  const std::vector<std::size_t> idx{0, 3, 5, 7, 1};
  const int threads = max_threads();
  set_threads(1);
  rng r1(5);
  const auto one = data::make_batch<backend::cpu>(view, idx, r1);
  set_threads(2);
  rng r2(5);
  const auto two = data::make_batch<backend::cpu>(view, idx, r2);
  set_threads(threads);
  REQUIRE(one.images.size() == two.images.size());
  CHECK(std::equal(one.images.data(), one.images.data() + one.images.size(), two.images.data()));
  CHECK(one.counts == two.counts);
}

TEST_CASE("batch: epoch_batches cover every index once per epoch, in a seeded order") {
  rng r1(3), r2(3);
  const auto a = data::epoch_batches(23, 5, r1), b = data::epoch_batches(23, 5, r2);
  CHECK(a == b);
  REQUIRE(a.size() == 5);
  CHECK(a.back().size() == 3);
  std::vector<std::size_t> all;
  for (const auto& run : a) all.insert(all.end(), run.begin(), run.end());
  CHECK(!std::is_sorted(all.begin(), all.end()));
  std::sort(all.begin(), all.end());
  for (std::size_t i = 0; i < 23; ++i) CHECK(all[i] == i);
  CHECK(data::epoch_batches(23, 5, r1, true).size() == 4);
  CHECK(data::epoch_batches(23, 5, r1) != a);  // the next epoch is shuffled differently
  CHECK_THROWS_AS(data::epoch_batches(3, 0, r1), error);
}

TEST_CASE("batch: vgg-cells train patches, density mass equals the points in each patch") {
  MICROCOUNT_REQUIRE_DATA();
  const auto ds = data::open_dataset(test::data_dir() / "vgg-cells");
  const auto sp = data::split(ds, {}, 42);
  const auto train = data::normalize_percentile(data::random_patches(data::subset(ds, sp.train), 64, 64, 4));
  CHECK(train.size() == 480);
  rng r(3);
  const std::vector<std::size_t> idx{0, 1, 100, 479};
  const auto b = data::make_batch<backend::cpu>(train, idx, r, {.sigma = 2, .scale = 100});
  for (std::size_t i = 0; i < idx.size(); ++i) {
    double sum = 0;
    for (std::size_t j = 0; j < 64 * 64; ++j) sum += b.density[static_cast<index_t>(i * 64 * 64 + j)];
    CHECK(b.counts[i] > 0);
    CHECK(sum == doctest::Approx(100.0 * b.counts[i]).epsilon(1e-4));
  }
}
