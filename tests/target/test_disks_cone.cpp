// Disk and class-map targets against a per-pixel brute force; ExoDeepFinder's cone target against its
// published shape and, on the real object list objl_cell6.xml, against a voxel-set reconstruction.
#include <algorithm>
#include <cmath>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include <pugixml.hpp>

#include "microcount/core/error.hpp"
#include "microcount/core/rng.hpp"
#include "microcount/target/cone.hpp"
#include "microcount/target/disks.hpp"
#include "test_support.hpp"

using namespace microcount;

namespace {

// The documented rule pixel by pixel: the nearest point whose disk (or own pixel) covers it, ties to the earlier.
int brute_owner(const std::vector<io::point>& pts, std::int64_t r, std::int64_t c, double radius, std::int64_t h, std::int64_t w) {
  int best = -1;
  double best_d2 = 1e300;
  for (std::size_t i = 0; i < pts.size(); ++i) {
    const double d2 = (c - pts[i].x) * (c - pts[i].x) + (r - pts[i].y) * (r - pts[i].y);
    const bool own = std::clamp<std::int64_t>(std::llround(pts[i].x), 0, w - 1) == c &&
                     std::clamp<std::int64_t>(std::llround(pts[i].y), 0, h - 1) == r;
    if ((d2 <= radius * radius || own) && d2 < best_d2) {
      best_d2 = d2;
      best = static_cast<int>(i);
    }
  }
  return best;
}

}  // namespace

TEST_CASE("class_map, disk_map and disk_channels match a per-pixel brute force") {
  rng r(8);
  const std::int64_t h = 40, w = 47;
  std::vector<io::point> pts;
  for (int i = 0; i < 60; ++i)
    pts.push_back({r.uniform(-0.5, w - 0.5), r.uniform(-0.5, h - 0.5), static_cast<int>(r.below(3)), -1, -1});
  pts.push_back({10.5, 10.5, 1, -1, -1});  // exactly between four pixel centres
  for (double radius : {0.0, 0.3, 2.5, 4.0}) {
    target::disk_options o;
    o.radius = radius;
    const auto cm = target::class_map(pts, h, w, o);
    const auto ones = target::disk_map(pts, h, w, o);
    const auto labels = target::disk_map(pts, h, w, o, target::disk_value::label);
    const auto chans = target::disk_channels(pts, h, w, o, 3);
    for (std::int64_t y = 0; y < h; ++y)
      for (std::int64_t x = 0; x < w; ++x) {
        const int owner = brute_owner(pts, y, x, radius, h, w);
        const int expected = owner < 0 ? 0 : pts[static_cast<std::size_t>(owner)].label + 1;
        CHECK(cm(y, x) == expected);
        CHECK(ones(y, x) == (owner < 0 ? 0.0f : 1.0f));
        CHECK(labels(y, x) == (owner < 0 ? 0.0f : static_cast<float>(expected - 1)));
        for (int c = 0; c < 3; ++c) {
          std::vector<io::point> of_class;
          for (const auto& p : pts)
            if (p.label == c) of_class.push_back(p);
          const bool inside = brute_owner(of_class, y, x, radius, h, w) >= 0;
          CHECK(chans(c, y, x) == (inside ? 1.0f : 0.0f));
        }
      }
  }
}

TEST_CASE("class maps: every point leaves its own pixel, overlap goes to the nearest point, movies per frame") {
  const std::vector<io::point> pts = {{5.2, 5.0, 0, 0, -1}, {8.0, 5.0, 2, 0, -1}, {3.0, 3.0, 1, 2, -1}};
  target::disk_options o;
  o.radius = 3;
  const auto m = target::class_map_movie(pts, 3, 12, 12, o);
  CHECK(m(0, 5, 6) == 1);  // |6 − 5.2| = 0.8 < |6 − 8| = 2
  CHECK(m(0, 5, 7) == 3);  // 1.8 > 1.0
  CHECK(m(0, 5, 11) == 3);
  CHECK(m(1, 5, 6) == 0);
  CHECK(m(2, 3, 3) == 2);
  CHECK(m(2, 6, 3) == 2);
  CHECK(m(2, 7, 3) == 0);
  target::disk_options zero;
  zero.radius = 0;
  const auto tiny = target::class_map(std::vector<io::point>{{4.4, 2.6, 0, -1, -1}}, 6, 6, zero);
  CHECK(tiny(3, 4) == 1);
  CHECK(std::count(tiny.begin(), tiny.end(), 1) == 1);
  CHECK_THROWS_WITH_AS(target::class_map(std::vector<io::point>{{7, 2, 0, -1, -1}}, 6, 6, o),
                       doctest::Contains("outside the 6x6 image"), error);
  target::disk_options negative;
  negative.radius = -1;
  CHECK_THROWS_AS(target::class_map(pts, 6, 6, negative), error);
}

TEST_CASE("cone target: ExoDeepFinder's shape (r = 4, 2, then the centre) after each event, events over spots") {
  io::annotations ann;
  ann.label_index("1");
  ann.label_index("2");
  auto& mv = ann.image("movie.tif");
  mv.points = {{20, 20, 1, 3, -1}, {25, 20, 0, 3, -1}, {5, 5, 1, 8, -1}, {0, 16, 1, 0, -1}};
  const auto labels = target::find_exo_labels(ann);
  CHECK(labels.spot == 0);
  CHECK(labels.event == 1);
  const auto t = target::exo_cone_target(ann, "movie.tif", 10, 32, 40);
  REQUIRE(t.shape() == std::array<std::size_t, 3>{10, 32, 40});
  auto count = [&](std::size_t f, std::uint8_t v, std::int64_t cy, std::int64_t cx, std::int64_t reach) {
    std::size_t n = 0;
    for (std::int64_t y = std::max<std::int64_t>(0, cy - reach); y <= std::min<std::int64_t>(31, cy + reach); ++y)
      for (std::int64_t x = std::max<std::int64_t>(0, cx - reach); x <= std::min<std::int64_t>(39, cx + reach); ++x)
        n += t(f, y, x) == v ? 1 : 0;
    return n;
  };
  // Event at frame 3, (x=20, y=20): 49, 13, 1 pixels on frames 3, 4, 5, nothing before or after.
  CHECK(count(3, target::exo_event, 20, 20, 6) == 49);
  CHECK(count(4, target::exo_event, 20, 20, 6) == 13);
  CHECK(count(5, target::exo_event, 20, 20, 6) == 1);
  CHECK(t(5, 20, 20) == target::exo_event);
  CHECK(count(2, target::exo_event, 20, 20, 6) == 0);
  CHECK(count(6, target::exo_event, 20, 20, 6) == 0);
  CHECK(t(3, 20, 24) == target::exo_event);   // radius 4 reaches dx = 4
  CHECK(t(3, 23, 23) == 0);                   // 3² + 3² = 18 > 16 and outside the spot's disk
  CHECK(t(4, 20, 22) == target::exo_event);   // radius 2 on the next frame
  CHECK(t(4, 20, 25) == 0);                   // a spot is drawn on its own frame only
  // The spot at (x=25, y=20) on frame 3: the event wins where they overlap, the spot keeps the rest.
  CHECK(t(3, 20, 24) == target::exo_event);
  CHECK(t(3, 20, 25) == target::exo_bright_spot);
  CHECK(t(3, 20, 27) == target::exo_bright_spot);
  CHECK(t(3, 20, 28) == 0);
  // Event on the last-but-one frame: the cone is cut at the end of the movie.
  CHECK(count(8, target::exo_event, 5, 5, 6) == 49);
  CHECK(count(9, target::exo_event, 5, 5, 6) == 13);
  // Event on the left edge: the disk is clipped.
  CHECK(count(0, target::exo_event, 16, 0, 6) == 9 + 7 + 7 + 5 + 1);  // columns dx = 0..4 of the r = 4 disk
  CHECK_THROWS_WITH_AS(target::exo_cone_target(ann, "other.tif", 10, 32, 40), doctest::Contains("other.tif"), error);
  mv.points.push_back({1, 1, 1, 12, -1});
  CHECK_THROWS_WITH_AS(target::exo_cone_target(ann, "movie.tif", 10, 32, 40), doctest::Contains("movie.tif"), error);
}

TEST_CASE("cone target of the real ExoDeepFinder object list objl_cell6.xml equals a voxel-set reconstruction") {
  MICROCOUNT_REQUIRE_DATA();
  pugi::xml_document doc;
  REQUIRE(doc.load_file((test::data_dir() / "formats" / "exodeepfinder" / "objl_cell6.xml").c_str()));
  io::annotations ann;
  ann.label_index("1");
  ann.label_index("2");
  auto& mv = ann.image("cell6");
  for (auto o : doc.child("objlist").children("object")) {
    const int cls = o.attribute("class_label").as_int();
    mv.points.push_back({o.attribute("x").as_double(), o.attribute("y").as_double(), cls - 1, o.attribute("z").as_int(), -1});
  }
  REQUIRE(mv.points.size() == 10216);
  // ExoDeepFinder's example movie for this list is [1001, 317, 317] (t, y, x).
  const std::size_t T = 1001, H = 317, W = 317;
  const auto t = target::exo_cone_target(ann, "cell6", T, H, W);

  using voxel = std::tuple<std::int64_t, std::int64_t, std::int64_t>;
  std::set<voxel> events, spots;
  auto disk = [&](std::set<voxel>& into, std::int64_t f, std::int64_t cy, std::int64_t cx, int r) {
    for (std::int64_t dy = -r; dy <= r; ++dy)
      for (std::int64_t dx = -r; dx <= r; ++dx)
        if (dx * dx + dy * dy <= r * r && cy + dy >= 0 && cy + dy < static_cast<std::int64_t>(H) && cx + dx >= 0 &&
            cx + dx < static_cast<std::int64_t>(W) && f < static_cast<std::int64_t>(T))
          into.insert({f, cy + dy, cx + dx});
  };
  std::size_t n_events = 0;
  for (const auto& p : mv.points) {
    const auto cy = std::llround(p.y), cx = std::llround(p.x);
    if (p.label == 1) {
      ++n_events;
      disk(events, p.frame, cy, cx, 4);
      disk(events, p.frame + 1, cy, cx, 2);
      disk(events, p.frame + 2, cy, cx, 0);
    } else {
      disk(spots, p.frame, cy, cx, 2);
    }
  }
  REQUIRE(n_events == 216);
  std::size_t spot_only = 0;
  for (const auto& v : spots) spot_only += events.count(v) ? 0 : 1;
  const auto got_events = static_cast<std::size_t>(std::count(t.data(), t.data() + t.size(), target::exo_event));
  const auto got_spots = static_cast<std::size_t>(std::count(t.data(), t.data() + t.size(), target::exo_bright_spot));
  CHECK(got_events == events.size());
  CHECK(got_spots == spot_only);
  for (const auto& [f, y, x] : events) REQUIRE(t(f, y, x) == target::exo_event);
  // The first object: event at frame 0, x = 106, y = 128.
  CHECK(t(0, 128, 106) == target::exo_event);
  CHECK(t(2, 128, 106) == target::exo_event);
}
