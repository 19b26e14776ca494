// Training curves: values land where the axes say, NaN leaves gaps, tiny histories work, files are atomic.
#include <chrono>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <set>
#include <string>

#include "microcount/train/curves.hpp"
#include "test_support.hpp"

using namespace microcount;
namespace fs = std::filesystem;

namespace {

using picture = xt::xtensor<std::uint8_t, 3>;

bool has(const picture& p, long x, long y, io::colour c) {
  if (x < 0 || y < 0 || y >= static_cast<long>(p.shape()[0]) || x >= static_cast<long>(p.shape()[1])) return false;
  return p(y, x, 0) == c.r && p(y, x, 1) == c.g && p(y, x, 2) == c.b;
}

// The pixel under (x, y) (or one of its 8 neighbours, for rounding) has colour c.
bool drawn_at(const picture& p, double x, double y, io::colour c) {
  for (long dy = -1; dy <= 1; ++dy)
    for (long dx = -1; dx <= 1; ++dx)
      if (has(p, std::lround(x) + dx, std::lround(y) + dy, c)) return true;
  return false;
}

std::size_t count_colour(const picture& p, long x0, long x1, long y0, long y1, io::colour c) {
  std::size_t n = 0;
  for (long y = y0; y <= y1; ++y)
    for (long x = x0; x <= x1; ++x) n += has(p, x, y, c);
  return n;
}

std::size_t occurrences(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

train::history ten_epochs() {
  train::history h;
  for (int e = 1; e <= 10; ++e) {
    train::epoch_record r;
    r.epoch = e;
    r.train_loss = 1.0 / (e * e);                             // 1 … 0.01: two decades → log scale
    r.val_loss = (e >= 5 && e <= 7) ? train::not_measured : 2.0 / (e * e);  // a gap over epochs 5–7
    r.val_mae = 20.0 - e;
    r.val_f1 = 0.3 + 0.05 * e;
    h.push_back(r);
  }
  return h;
}

}  // namespace

TEST_CASE("curves: the bitmap font has distinct glyphs for what plots need") {
  const std::string needed = "0123456789.-+():/% abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ,_=<>[]#!?*'|\"";
  std::set<std::string> shapes;
  for (const char c : needed) {
    std::string bits;
    int ink = 0;
    for (int r = 0; r < train::figure::glyph_height; ++r)
      for (int col = 0; col < train::figure::glyph_width; ++col) {
        const bool on = train::figure::glyph_ink(c, col, r);
        bits += on ? '#' : '.';
        ink += on;
      }
    CHECK_MESSAGE((c == ' ') == (ink == 0), "glyph '" << c << "'");
    shapes.insert(bits);
  }
  CHECK(shapes.size() == needed.size());  // no two characters look alike
  CHECK(train::figure::glyph_ink('g', 1, 7));  // descenders use the 8th row
  // Drawn text is the glyph, scaled: "1" at scale 2 with its cell's top-left at (10, 10 − 3.5·2 + 7).
  picture p = xt::zeros<std::uint8_t>(std::array<std::size_t, 3>{40, 40, 3});
  train::figure::draw_text(p, 10, 17, "1", io::colours::white, 2);
  for (int r = 0; r < 8; ++r)
    for (int col = 0; col < 5; ++col)
      for (int s = 0; s < 4; ++s)
        CHECK(has(p, 10 + col * 2 + s % 2, 10 + r * 2 + s / 2, io::colours::white) == train::figure::glyph_ink('1', col, r));
}

TEST_CASE("curves: known values are drawn where the axes put them; NaN leaves a gap") {
  const auto dir = test::scratch("curves_ten");
  const auto h = ten_epochs();
  train::write_training_curves(h, dir / "plots" / "training_curves");
  const auto png = io::read_png(dir / "plots" / "training_curves.png");
  const auto f = train::training_curves_figure_of(h);
  REQUIRE(png.shape()[2] == 3);
  CHECK(png.shape()[0] == static_cast<std::size_t>(f.drawing.height));
  CHECK(f.loss.log_y);
  CHECK(!f.validation.log_y);
  REQUIRE(f.has_f1);

  using namespace train::curve_colours;
  for (const int e : {1, 3, 10}) {
    const auto& r = h[e - 1];
    CHECK_MESSAGE(drawn_at(png, f.loss.pixel_x(e), f.loss.pixel_y(r.train_loss), training_loss), "epoch " << e);
    CHECK_MESSAGE(drawn_at(png, f.validation.pixel_x(e), f.validation.pixel_y(r.val_mae), validation_mae), "epoch " << e);
    CHECK_MESSAGE(drawn_at(png, f.f1.pixel_x(e), f.f1.pixel_y(r.val_f1), validation_f1), "epoch " << e);
  }
  CHECK(drawn_at(png, f.loss.pixel_x(4), f.loss.pixel_y(h[3].val_loss), validation_loss));
  CHECK(drawn_at(png, f.loss.pixel_x(8), f.loss.pixel_y(h[7].val_loss), validation_loss));
  // Halfway between epochs 1 and 2 the training line passes (lines, not only dots). On a log axis the
  // straight segment's midpoint is the geometric mean.
  CHECK(drawn_at(png, f.loss.pixel_x(1.5), f.loss.pixel_y(std::sqrt(h[0].train_loss * h[1].train_loss)), training_loss));
  // Lines are 2 px thick: the pixel above or below the centre of a flat-ish segment has the colour too.
  // Gap: nothing of the validation colour strictly between epochs 4 and 8 inside the plot box.
  const long x0 = std::lround(f.loss.pixel_x(4)) + 6, x1 = std::lround(f.loss.pixel_x(8)) - 6;
  const long y0 = std::lround(f.loss.top), y1 = std::lround(f.loss.top + f.loss.height);
  CHECK(count_colour(png, x0, x1, y0, y1, validation_loss) == 0);
  CHECK(count_colour(png, x0, x1, y0, y1, training_loss) > 0);  // while the training curve runs through

  // The SVG has the same gap: two validation-loss polylines (epochs 1–4 and 8–10).
  const std::string svg = io::read_text(dir / "plots" / "training_curves.svg");
  CHECK(svg.rfind("<?xml", 0) == 0);
  CHECK(svg.find("</svg>") != std::string::npos);
  CHECK(occurrences(svg, "<polyline fill=\"none\" stroke=\"#e69f00\" stroke-width=\"2\"") == 2);
  CHECK(occurrences(svg, "<polyline fill=\"none\" stroke=\"#0072b2\" stroke-width=\"2\"") == 1);
  CHECK(svg.find(">epoch</text>") != std::string::npos);
  CHECK(svg.find(">loss (log scale)</text>") != std::string::npos);
  CHECK(svg.find(">0.01</text>") != std::string::npos);  // a decade tick

  // Written atomically: only the two files, no temporaries.
  std::size_t files = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir / "plots")) ++files;
  CHECK(files == 2);
}

TEST_CASE("curves: one epoch, no epochs, nothing measured, no F1") {
  const auto dir = test::scratch("curves_small");
  train::history one(1);
  one[0].epoch = 1;
  one[0].train_loss = 0.25;
  one[0].val_mae = 3.5;
  train::write_training_curves(one, dir / "one");
  const auto f = train::training_curves_figure_of(one);
  CHECK(!f.has_f1);
  CHECK(f.loss.x_min < 1);
  CHECK(f.loss.x_max > 1);
  const auto png = io::read_png(dir / "one.png");
  CHECK(drawn_at(png, f.loss.pixel_x(1), f.loss.pixel_y(0.25), train::curve_colours::training_loss));
  CHECK(drawn_at(png, f.validation.pixel_x(1), f.validation.pixel_y(3.5), train::curve_colours::validation_mae));

  train::write_training_curves({}, dir / "none");
  const auto empty_png = io::read_png(dir / "none.png");
  CHECK(empty_png.shape()[1] > 100);
  CHECK(io::read_text(dir / "none.svg").find(">no epochs yet</text>") != std::string::npos);
  // The "no epochs yet" text is really drawn in the middle of the PNG.
  const long cx = static_cast<long>(empty_png.shape()[1] / 2), cy = static_cast<long>(empty_png.shape()[0] / 2);
  CHECK(count_colour(empty_png, cx - 200, cx + 200, cy - 20, cy + 20, train::curve_colours::ink) > 100);

  train::history unmeasured(3);
  for (int e = 0; e < 3; ++e) unmeasured[e].epoch = e + 1;
  train::write_training_curves(unmeasured, dir / "unmeasured");
  CHECK(io::read_text(dir / "unmeasured.svg").find(">no validation MAE</text>") != std::string::npos);

  // A flat line and a negative loss stay on a linear axis without dividing by zero.
  train::history flat(4);
  for (int e = 0; e < 4; ++e) {
    flat[e].epoch = e + 1;
    flat[e].train_loss = e == 3 ? -0.5 : 1.0;
    flat[e].val_mae = 2.0;
  }
  const auto ff = train::training_curves_figure_of(flat);
  CHECK(!ff.loss.log_y);
  CHECK(ff.validation.y_min < 2.0);
  CHECK(ff.validation.y_max > 2.0);
  CHECK(std::isfinite(ff.validation.pixel_y(2.0)));
}

TEST_CASE("curves: a long run stays cheap to redraw every epoch") {
  train::history h(1000);
  for (int e = 0; e < 1000; ++e) {
    h[e].epoch = e + 1;
    h[e].train_loss = 1.0 / (e + 1);
    h[e].val_loss = 1.2 / (e + 1);
    h[e].val_mae = 10.0 / std::sqrt(e + 1.0);
    h[e].val_f1 = 1 - 1.0 / (e + 2);
  }
  const auto dir = test::scratch("curves_long");
  const auto start = std::chrono::steady_clock::now();
  train::write_training_curves(h, dir / "training_curves");
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  MESSAGE("1000-epoch curves written in " << seconds * 1000 << " ms (not asserted: speed is a benchmark's job)");
  const auto f = train::training_curves_figure_of(h);
  const auto png = io::read_png(dir / "training_curves.png");
  CHECK(drawn_at(png, f.validation.pixel_x(500), f.validation.pixel_y(h[499].val_mae), train::curve_colours::validation_mae));
}

TEST_CASE("curves: a diverged run (huge, infinite, negative values) is drawn without trouble") {
  train::history h(5);
  const double values[5] = {0.5, 1e200, std::numeric_limits<double>::infinity(), -3.0, 0.25};
  for (int e = 0; e < 5; ++e) {
    h[e].epoch = e + 1;
    h[e].train_loss = values[e];
    h[e].val_mae = -values[e];
    h[e].val_f1 = values[e];
  }
  const auto f = train::training_curves_figure_of(h);
  CHECK(!f.loss.log_y);
  CHECK(f.loss.y_min <= -3.0);
  CHECK(f.loss.y_max >= 0.5);
  CHECK(f.loss.y_max < 10);  // 1e200 is left off the chart
  const auto dir = test::scratch("curves_diverged");
  train::write_training_curves(h, dir / "c");
  const auto png = io::read_png(dir / "c.png");
  CHECK(drawn_at(png, f.loss.pixel_x(4), f.loss.pixel_y(-3.0), train::curve_colours::training_loss));
}

TEST_CASE("curves: an unwritable folder is a clear error") {
  const auto dir = test::scratch("curves_error");
  io::write_text_atomically(dir / "plots", "a file, not a folder");
  CHECK_THROWS_WITH_AS(train::write_training_curves(ten_epochs(), dir / "plots" / "training_curves"),
                       doctest::Contains("plots"), error);
}
