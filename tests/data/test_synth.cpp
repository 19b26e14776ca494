// The synthetic data set generator: determinism, object counts and positions, classes and their looks.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <set>
#include <vector>

#include "microcount/data/synth.hpp"
#include "microcount/io/atomic_file.hpp"
#include "microcount/io/cvat_xml.hpp"
#include "microcount/io/tiff.hpp"
#include "test_support.hpp"

using namespace microcount;

namespace {

bool same_bytes(const io::image& a, const io::image& b) {
  return a.pixels.shape() == b.pixels.shape() &&
         std::memcmp(a.pixels.data(), b.pixels.data(), a.pixels.size() * sizeof(float)) == 0;
}

// Mean pixel value over a disk (inner ≤ ρ < outer) around (x, y).
double mean_in_annulus(const io::image& im, double x, double y, double inner, double outer) {
  double sum = 0;
  int n = 0;
  for (std::size_t r = 0; r < im.height(); ++r)
    for (std::size_t c = 0; c < im.width(); ++c) {
      const double d = std::hypot(static_cast<double>(c) - x, static_cast<double>(r) - y);
      if (d >= inner && d < outer) sum += im.pixels(0, 0, r, c), ++n;
    }
  return n ? sum / n : 0.0;
}

}  // namespace

TEST_CASE("synth: same seed gives identical bytes and points; another seed differs") {
  data::synth_options o;
  o.images = 3;
  o.height = 96;
  o.width = 128;
  o.classes = 3;
  o.seed = 17;
  const auto a = data::make_synthetic_dataset(o);
  const auto b = data::make_synthetic_dataset(o);
  REQUIRE(a.images.size() == 3);
  for (std::size_t i = 0; i < 3; ++i) {
    CHECK(same_bytes(a.images[i], b.images[i]));
    REQUIRE(a.annotations.images[i].points.size() == b.annotations.images[i].points.size());
    for (std::size_t k = 0; k < a.annotations.images[i].points.size(); ++k) {
      CHECK(a.annotations.images[i].points[k].x == b.annotations.images[i].points[k].x);
      CHECK(a.annotations.images[i].points[k].y == b.annotations.images[i].points[k].y);
      CHECK(a.annotations.images[i].points[k].label == b.annotations.images[i].points[k].label);
    }
  }
  // The thread count does not change the result.
  const int threads = max_threads();
  set_threads(1);
  const auto serial = data::make_synthetic_dataset(o);
  set_threads(threads);
  for (std::size_t i = 0; i < 3; ++i) CHECK(same_bytes(a.images[i], serial.images[i]));
  o.seed = 18;
  CHECK_FALSE(same_bytes(a.images[0], data::make_synthetic_dataset(o).images[0]));
}

TEST_CASE("synth: counts in range, points inside, names, labels, value range per dtype") {
  data::synth_options o;
  o.images = 12;
  o.height = 80;
  o.width = 100;
  o.classes = 2;
  o.min_cells = 5;
  o.max_cells = 9;
  o.dtype = io::dtype::uint16;
  const auto d = data::make_synthetic_dataset(o);
  CHECK(d.annotations.format == "cvat_images");
  CHECK(d.annotations.labels == std::vector<std::string>{"naked", "enveloped"});
  std::set<std::size_t> counts;
  std::set<int> labels;
  for (std::size_t i = 0; i < d.images.size(); ++i) {
    const auto& im = d.annotations.images[i];
    CHECK(im.width == 100);
    CHECK(im.height == 80);
    CHECK(d.images[i].pixels.shape() == std::array<std::size_t, 4>{1, 1, 80, 100});
    CHECK(d.images[i].source_dtype == io::dtype::uint16);
    CHECK(im.points.size() >= 5);
    CHECK(im.points.size() <= 9);
    counts.insert(im.points.size());
    for (const auto& p : im.points) {
      CHECK(p.x >= 0);
      CHECK(p.x <= 99);
      CHECK(p.y >= 0);
      CHECK(p.y <= 79);
      CHECK(p.frame == -1);
      labels.insert(p.label);
    }
    const auto [lo, hi] = std::minmax_element(d.images[i].pixels.begin(), d.images[i].pixels.end());
    CHECK(*lo >= 0);
    CHECK(*hi <= 65535);
    CHECK(*hi > 255);  // 16 photons per ADU: bright objects go well past 8 bits
    for (float v : d.images[i].pixels) REQUIRE(v == std::round(v));
  }
  CHECK(counts.size() >= 3);  // the count varies over the range
  CHECK(labels == std::set<int>{0, 1});
  CHECK(d.annotations.images[0].name == "image_001.tif");
  CHECK(d.annotations.images[11].name == "image_012.tif");

  o.images = 1000;
  o.height = o.width = 16;
  o.min_cells = o.max_cells = 1;
  o.dtype = io::dtype::uint8;
  CHECK(data::make_synthetic_dataset(o).annotations.images[999].name == "image_1000.tif");
}

TEST_CASE("synth: the classes look different (rings dark inside, spots bright inside, sizes)") {
  data::synth_options o;
  o.images = 6;
  o.classes = 2;  // naked (small bright spot), enveloped (large ring)
  o.min_cells = o.max_cells = 25;
  o.touching = 0;
  const auto d = data::make_synthetic_dataset(o);
  double centre_minus_rim[2] = {0, 0};
  int seen[2] = {0, 0};
  for (std::size_t i = 0; i < d.images.size(); ++i) {
    const auto& points = d.annotations.images[i].points;
    for (const auto& p : points) {
      // Isolated objects away from the border only.
      const bool isolated = std::all_of(points.begin(), points.end(), [&](const io::point& q) {
        return &q == &p || std::hypot(q.x - p.x, q.y - p.y) > 22;
      });
      if (!isolated || p.x < 12 || p.y < 12 || p.x > 243 || p.y > 243) continue;
      const double centre = mean_in_annulus(d.images[i], p.x, p.y, 0, 1.5);
      const double rim = mean_in_annulus(d.images[i], p.x, p.y, 5, 7);
      centre_minus_rim[p.label] += centre - rim;
      ++seen[p.label];
    }
  }
  REQUIRE(seen[0] > 10);
  REQUIRE(seen[1] > 10);
  CHECK(centre_minus_rim[0] / seen[0] > 50);  // a spot: bright centre, background at 5–7 px
  CHECK(centre_minus_rim[1] / seen[1] < -5);  // a ring: the rim outshines the core
}

TEST_CASE("synth: bad options are errors naming the problem") {
  data::synth_options o;
  o.min_cells = 10;
  o.max_cells = 5;
  CHECK_THROWS_WITH_AS(data::make_synthetic_dataset(o), doctest::Contains("min_cells"), microcount::error);
  o = {};
  o.classes = 9;
  CHECK_THROWS_WITH_AS(data::make_synthetic_dataset(o), doctest::Contains("classes"), microcount::error);
  o = {};
  o.dtype = io::dtype::float32;
  CHECK_THROWS_WITH_AS(data::make_synthetic_dataset(o), doctest::Contains("dtype"), microcount::error);
  o = {};
  o.height = 4;
  CHECK_THROWS_WITH_AS(data::make_synthetic_dataset(o), doctest::Contains("size"), microcount::error);
  o = {};
  o.images = 100000;
  o.height = o.width = 100000;
  CHECK_THROWS_WITH_AS(data::make_synthetic_dataset(o), doctest::Contains("memory"), microcount::error);
}

TEST_CASE("synth: written to disk, read back identical; same seed, same file bytes") {
  data::synth_options o;
  o.images = 3;
  o.height = 64;
  o.width = 72;
  o.classes = 3;
  o.min_cells = 4;
  o.max_cells = 12;
  o.dtype = io::dtype::uint16;
  const auto first = test::scratch("synth_a"), second = test::scratch("synth_b");
  const auto d = data::write_synthetic_dataset(first, o);
  data::write_synthetic_dataset(second, o);
  for (const std::string name : {"image_001.tif", "image_002.tif", "image_003.tif", "annotations.xml"})
    CHECK(io::read_text(first / name) == io::read_text(second / name));

  const auto back = io::read_cvat_xml(first / "annotations.xml");
  CHECK(back.format == "cvat_images");
  CHECK(back.labels == d.annotations.labels);
  REQUIRE(back.images.size() == 3);
  for (std::size_t i = 0; i < 3; ++i) {
    const auto& want = d.annotations.images[i];
    const auto& got = back.images[i];
    CHECK(got.name == want.name);
    CHECK(got.width == 72);
    CHECK(got.height == 64);
    REQUIRE(got.points.size() == want.points.size());
    for (std::size_t k = 0; k < want.points.size(); ++k) {
      CHECK(got.points[k].x == want.points[k].x);  // shortest round-trip text: exact
      CHECK(got.points[k].y == want.points[k].y);
      CHECK(got.points[k].label == want.points[k].label);
    }
    const auto image = io::read_tiff(first / want.name);
    CHECK(image.source_dtype == io::dtype::uint16);
    CHECK(same_bytes(image, d.images[i]));
  }
}
