// Sample panels on a real VGG cell image, and a small multi-class RGB case.
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "microcount/io/annotation_files.hpp"
#include "microcount/io/tiff.hpp"
#include "microcount/train/samples.hpp"
#include "test_support.hpp"

using namespace microcount;

namespace {

using picture = xt::xtensor<std::uint8_t, 3>;

bool is(const picture& p, long x, long y, io::colour c) {
  return p(y, x, 0) == c.r && p(y, x, 1) == c.g && p(y, x, 2) == c.b;
}

std::size_t count_colour(const picture& p, long x0, long y0, long x1, long y1, io::colour c) {
  std::size_t n = 0;
  for (long y = std::max(0L, y0); y <= std::min<long>(y1, static_cast<long>(p.shape()[0]) - 1); ++y)
    for (long x = std::max(0L, x0); x <= std::min<long>(x1, static_cast<long>(p.shape()[1]) - 1); ++x) n += is(p, x, y, c);
  return n;
}

double luminance(io::colour c) { return 0.2126 * c.r + 0.7152 * c.g + 0.0722 * c.b; }

// Unit-mass Gaussians (sigma 2) at the points: a density map whose sum is the count.
xt::xtensor<float, 3> density_of(const std::vector<io::point>& points, std::size_t K, std::size_t H, std::size_t W) {
  xt::xtensor<float, 3> maps = xt::zeros<float>({K, H, W});  // [K, H, W]
  const double s2 = 2.0 * 2.0;
  for (const auto& p : points)
    for (std::size_t y = 0; y < H; ++y)
      for (std::size_t x = 0; x < W; ++x) {
        const double dx = static_cast<double>(x) - p.x, dy = static_cast<double>(y) - p.y;
        maps(static_cast<std::size_t>(p.label), y, x) += static_cast<float>(std::exp(-(dx * dx + dy * dy) / (2 * s2)) / (2 * M_PI * s2));
      }
  return maps;
}

}  // namespace

TEST_CASE("samples: the colour maps rise steadily in brightness") {
  double previous = -1, previous_heat = -1;
  for (int i = 0; i <= 100; ++i) {
    const double l = luminance(train::viridis(i / 100.0)), h = luminance(train::heat(i / 100.0));
    CHECK(l > previous);
    CHECK(h >= previous_heat);
    previous = l;
    previous_heat = h;
  }
  CHECK(luminance(train::viridis(1.0)) - luminance(train::viridis(0.0)) > 150);
  CHECK(luminance(train::viridis(std::nan(""))) == luminance(train::viridis(0)));
}

TEST_CASE("samples: a real VGG cell image with truth, density prediction, points and Grad-CAM") {
  MICROCOUNT_REQUIRE_DATA();
  const auto dir = test::data_dir() / "vgg-cells";
  const auto tif = io::read_tiff(dir / "image_101.tif");
  const auto ann = io::read_annotations(dir / "annotations.xml");
  const auto* truth = ann.find("image_101.tif");
  REQUIRE(truth != nullptr);
  const std::size_t H = tif.height(), W = tif.width();
  REQUIRE(H == 256);

  train::sample_panel s;
  s.title = "image_101.tif";
  s.image = xt::view(tif.pixels, 0, xt::all(), xt::all(), xt::all());  // [1, H, W]
  s.labels = ann.labels;
  s.truth_points = truth->points;
  s.predicted_maps = density_of(truth->points, 1, H, W);  // [1, H, W]
  double map_sum = 0;
  for (const float v : s.predicted_maps) map_sum += v;
  s.predicted_counts = {map_sum};
  for (std::size_t i = 5; i < truth->points.size(); ++i) {  // five misses, the rest 2 px off diagonally
    auto p = truth->points[i];
    p.x = std::min(p.x + 2, static_cast<double>(W - 1));
    p.y = std::min(p.y + 2, static_cast<double>(H - 1));
    s.predicted_points.push_back(p);
  }
  xt::xtensor<float, 2> cam = xt::zeros<float>({H, W});  // [H, W]: 0 at the left edge, 1 at the right
  for (std::size_t y = 0; y < H; ++y)
    for (std::size_t x = 0; x < W; ++x) cam(y, x) = static_cast<float>(x) / static_cast<float>(W - 1);
  s.grad_cam = cam;

  const auto out = train::render_sample_panel(s);
  const auto& L = out.layout;
  REQUIRE(L.panels.size() == 4);
  CHECK(L.zoom == 1.0);
  CHECK(L.panels[0].caption == "input");
  CHECK(L.panels[1].caption == "ground truth " + std::to_string(truth->points.size()));
  char expected[32];
  std::snprintf(expected, sizeof expected, "prediction %.1f", map_sum);
  CHECK(L.panels[2].caption == expected);
  CHECK(L.panels[3].caption == "Grad-CAM");
  const auto& px = out.pixels;

  // input: exactly the percentile stretch of io::grey_to_rgb.
  const xt::xtensor<float, 2> grey = xt::view(tif.pixels, 0, 0, xt::all(), xt::all());
  const auto stretched = io::grey_to_rgb(grey, 0.5, 99.5);  // [H, W, 3]
  std::size_t differ = 0;
  for (std::size_t y = 0; y < H; ++y)
    for (std::size_t x = 0; x < W; ++x)
      differ += px(L.panels[0].top + y, L.panels[0].left + x, 0) != stretched(y, x, 0);
  CHECK(differ == 0);

  // ground truth: a ring of the class colour around every truth point.
  std::size_t ringed = 0;
  for (const auto& p : truth->points) {
    const auto a = L.to_display(1, p.x, p.y);
    ringed += count_colour(px, std::lround(a[0]) - 5, std::lround(a[1]) - 5, std::lround(a[0]) + 5, std::lround(a[1]) + 5,
                           train::class_colour(0)) > 0;
  }
  CHECK(ringed == truth->points.size());

  // prediction: brighter than average at the truth points (density peaks), crosses at predictions.
  double at_points = 0, overall = 0;
  for (const auto& p : truth->points) {
    const auto a = L.to_display(2, p.x, p.y);
    at_points += luminance({px(std::lround(a[1]), std::lround(a[0]), 0), px(std::lround(a[1]), std::lround(a[0]), 1),
                            px(std::lround(a[1]), std::lround(a[0]), 2)});
  }
  at_points /= static_cast<double>(truth->points.size());
  for (std::size_t y = 0; y < H; ++y)
    for (std::size_t x = 0; x < W; ++x)
      overall += luminance({px(L.panels[2].top + y, L.panels[2].left + x, 0), px(L.panels[2].top + y, L.panels[2].left + x, 1),
                            px(L.panels[2].top + y, L.panels[2].left + x, 2)});
  overall /= static_cast<double>(H * W);
  CHECK(at_points > overall + 40);
  const auto& q = s.predicted_points.front();
  const auto c = L.to_display(2, q.x, q.y);
  CHECK(is(px, std::lround(c[0]), std::lround(c[1]), train::class_colour(0)));
  CHECK(is(px, std::lround(c[0]) + 2, std::lround(c[1]), train::class_colour(0)));  // the cross's arm

  // Grad-CAM: the plain image where the map is 0, 70 % white heat where it is 1.
  for (std::size_t y = 0; y < H; y += 17) {
    const auto g = static_cast<double>(stretched(y, 0, 0));
    CHECK(px(L.panels[3].top + y, L.panels[3].left, 0) == static_cast<std::uint8_t>(std::lround(g)));
    const auto g_right = static_cast<double>(stretched(y, W - 1, 0));
    CHECK(px(L.panels[3].top + y, L.panels[3].left + W - 1, 1) == static_cast<std::uint8_t>(std::lround(0.3 * g_right + 0.7 * 255)));
  }

  // Captions are drawn in the band above each panel.
  const io::colour ink{30, 30, 30};
  for (std::size_t p = 0; p < 4; ++p)
    CHECK(count_colour(px, L.panels[p].left, L.panels[p].top - 30, L.panels[p].left + 255, L.panels[p].top - 1, ink) > 20);

  // The file is that picture.
  const auto scratch = test::scratch("samples_vgg");
  train::write_sample_panel(scratch / "samples" / "image_101.png", s);
  const auto back = io::read_png(scratch / "samples" / "image_101.png");
  CHECK(back == px);
}

TEST_CASE("samples: multi-class RGB, half-resolution maps, small images enlarged") {
  const std::size_t H = 40, W = 50;
  train::sample_panel s;
  s.image = xt::zeros<float>({std::size_t{3}, H, W});  // [3, H, W]
  for (std::size_t y = 0; y < H; ++y)
    for (std::size_t x = 0; x < W; ++x) {
      s.image(0, y, x) = static_cast<float>(x);
      s.image(2, y, x) = static_cast<float>(y * 1000);  // 16-bit-like range in one channel
    }
  s.labels = {"naked", "budding"};
  s.truth_points = {{10, 10, 0, -1, -1}, {30, 25, 1, -1, -1}};
  s.predicted_points = {{11, 10, 0, -1, -1}, {30, 26, 1, -1, -1}};
  s.predicted_maps = density_of({{5, 5, 0, -1, -1}, {15, 12, 1, -1, -1}}, 2, H / 2, W / 2);  // [2, 20, 25]
  s.predicted_counts = {1.25, 0.5};

  const auto out = train::render_sample_panel(s);
  const auto& L = out.layout;
  REQUIRE(L.panels.size() == 5);  // input, truth, prediction, naked, budding
  CHECK(L.zoom == 5.0);           // floor(256 / 50)
  CHECK(L.panel_width == 250);
  CHECK(L.panels[2].caption == "prediction 1.8");
  CHECK(L.panels[3].caption == "naked 1.2");  // %.1f of 1.25 rounds to even
  CHECK(L.panels[4].caption == "budding 0.5");
  const auto& px = out.pixels;
  const auto budding = L.to_display(1, 30, 25);
  CHECK(count_colour(px, std::lround(budding[0]) - 16, std::lround(budding[1]) - 16, std::lround(budding[0]) + 16,
                     std::lround(budding[1]) + 16, train::class_colour(1)) > 20);
  // A class panel shows only its own class's predictions.
  const auto& naked_panel = L.panels[3];
  CHECK(count_colour(px, naked_panel.left, naked_panel.top, naked_panel.left + L.panel_width - 1,
                     naked_panel.top + L.panel_height - 1, train::class_colour(1)) == 0);
  CHECK(count_colour(px, naked_panel.left, naked_panel.top, naked_panel.left + L.panel_width - 1,
                     naked_panel.top + L.panel_height - 1, train::class_colour(0)) > 0);
  // RGB stays colour: red rises to the right in the input panel.
  CHECK(px(L.panels[0].top + 100, L.panels[0].left + 240, 0) > px(L.panels[0].top + 100, L.panels[0].left + 5, 0));
  CHECK(px(L.panels[0].top + 100, L.panels[0].left + 100, 1) == 0);  // the empty green channel stays black

  // Points far outside the image are left out, not drawn over the neighbours (nor looped over).
  auto far = s;
  far.predicted_points.push_back({1e12, -1e12, 0, -1, -1});
  CHECK(train::render_sample_panel(far).pixels == px);
  const auto scratch = test::scratch("samples_multiclass");
  train::write_sample_panel(scratch / "two_classes.png", s);
  CHECK(io::read_png(scratch / "two_classes.png") == px);

  // Counts only (a regression head): the prediction panel shows the image and the count.
  train::sample_panel counts_only;
  counts_only.image = s.image;
  counts_only.predicted_counts = {3.0, 4.5};
  const auto co = train::render_sample_panel(counts_only);
  REQUIRE(co.layout.panels.size() == 3);
  CHECK(co.layout.panels[2].caption == "prediction 7.5");
  CHECK(co.layout.panels[1].caption == "ground truth 0");
}

TEST_CASE("samples: large images are reduced; bad input is a clear error") {
  train::sample_panel big;
  big.image = xt::zeros<float>({std::size_t{1}, std::size_t{1000}, std::size_t{1536}});
  for (std::size_t y = 500; y < 600; ++y)
    for (std::size_t x = 768; x < 868; ++x) big.image(0, y, x) = 1;  // a bright square
  big.truth_points = {{818, 550, 0, -1, -1}};
  big.predicted_points = {{818, 550, 0, -1, -1}};
  const auto out = train::render_sample_panel(big);
  CHECK(out.layout.panel_width == 768);
  CHECK(out.layout.panel_height == 500);
  CHECK(out.layout.zoom == 0.5);
  const auto inside = out.layout.to_display(0, 810, 560), outside = out.layout.to_display(0, 100, 100);
  CHECK(out.pixels(std::lround(inside[1]), std::lround(inside[0]), 0) == 255);
  CHECK(out.pixels(std::lround(outside[1]), std::lround(outside[0]), 0) == 0);
  const auto ring = out.layout.to_display(1, 818, 550);
  CHECK(count_colour(out.pixels, std::lround(ring[0]) - 6, std::lround(ring[1]) - 6, std::lround(ring[0]) + 6,
                     std::lround(ring[1]) + 6, train::class_colour(0)) > 0);

  train::sample_panel empty;
  CHECK_THROWS_WITH_AS(train::render_sample_panel(empty), doctest::Contains("[C, H, W]"), error);
  train::sample_panel bad;
  bad.image = xt::zeros<float>({std::size_t{1}, std::size_t{8}, std::size_t{8}});
  bad.truth_points = {{std::nan(""), 1, 0, -1, -1}};
  CHECK_THROWS_WITH_AS(train::render_sample_panel(bad), doctest::Contains("non-finite"), error);
}
