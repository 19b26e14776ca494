#pragma once
// plots/training_curves.png and .svg: what a person opens to see whether training went well.
//
//   left panel   training and validation loss per epoch (log scale when the values span more than a
//                decade, so the late epochs are not a flat line at the bottom)
//   right panel  validation count MAE per epoch, and validation F1 on a secondary axis (0–1, right)
//                when the head predicts points
// Each panel has its axes, numbered ticks, a legend above it and a title; NaN ("not measured") values
// leave gaps; every measured epoch also gets a dot, so an epoch between two gaps is still visible.
// A history with no epochs gives a picture that says "no epochs yet". Both files are written atomically.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "microcount/io/atomic_file.hpp"
#include "microcount/io/png.hpp"
#include "microcount/train/figure.hpp"
#include "microcount/train/history.hpp"

namespace microcount::train {

namespace curve_colours {  // Okabe–Ito: tell-apart for colour-blind readers
inline constexpr io::colour training_loss{0, 114, 178}, validation_loss{230, 159, 0}, validation_mae{213, 94, 0},
    validation_f1{0, 158, 115}, ink{40, 40, 40}, grid{225, 225, 225}, frame{120, 120, 120};
}

// Where a panel's data lands in the picture: the plot box and its data ranges.
struct plot_axes {
  double left = 0, top = 0, width = 0, height = 0;  // the plot box, pixels
  double x_min = 0, x_max = 1;                      // epochs
  double y_min = 0, y_max = 1;                      // data units (decade exponents' powers when log_y)
  bool log_y = false;

  [[nodiscard]] double pixel_x(double x) const { return left + (x - x_min) / (x_max - x_min) * width; }
  [[nodiscard]] double pixel_y(double y) const {
    const double t = log_y ? (std::log10(y) - std::log10(y_min)) / (std::log10(y_max) - std::log10(y_min))
                           : (y - y_min) / (y_max - y_min);
    return top + height - t * height;
  }
};

struct training_curves_figure {
  figure::drawing drawing;
  bool empty = true;          // no epochs: the drawing only says so
  plot_axes loss;             // left panel
  plot_axes validation;       // right panel, MAE axis
  bool has_f1 = false;
  plot_axes f1;               // right panel, secondary F1 axis (same box), when has_f1
};

namespace curves_detail {

inline constexpr int figure_width = 1400, figure_height = 560, panel_width = 700;
inline constexpr double plot_top = 110, plot_bottom = 480;

inline std::string tick_text(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

// 1, 2 or 5 times a power of ten, about `raw` long.
inline double nice_step(double raw) {
  if (!(raw > 0) || !std::isfinite(raw)) return 1;
  const double power = std::pow(10.0, std::floor(std::log10(raw)));
  const double f = raw / power;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * power;
}

struct range {
  double lo = 0, hi = 1;
  bool log = false;
  std::vector<double> ticks;
};

// A y range over the finite values: decades when they are positive and span more than one; otherwise
// linear, widened to whole steps of a nice tick spacing.
// Values beyond ±1e150 (a diverged run) are left off the chart, like NaN, so every range stays finite.
inline bool plottable(double v) { return std::isfinite(v) && std::abs(v) <= 1e150; }

inline range y_range(const std::vector<double>& values, bool allow_log) {
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (const double v : values)
    if (plottable(v)) {
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
  range r;
  if (!std::isfinite(lo)) {  // nothing measured
    r.ticks = {0, 0.5, 1};
    return r;
  }
  if (allow_log && lo > 0 && hi / lo > 10) {
    r.log = true;
    const double a = std::floor(std::log10(lo)), b = std::ceil(std::log10(hi));
    r.lo = std::pow(10.0, a);
    r.hi = std::pow(10.0, b);
    const double every = std::max(1.0, std::ceil((b - a) / 6));  // at most ~6 labelled decades
    for (double e = a; e <= b + 0.5; e += every) r.ticks.push_back(std::pow(10.0, e));
    return r;
  }
  if (hi - lo < 1e-12 * std::max(1.0, std::abs(hi))) {  // a flat line: centre it
    const double pad = std::max(std::abs(hi) * 0.1, 1e-3);
    lo -= pad;
    hi += pad;
  }
  const double step = nice_step((hi - lo) / 5);
  r.lo = std::floor(lo / step) * step;
  r.hi = std::ceil(hi / step) * step;
  if (r.hi - r.lo < step) r.hi = r.lo + step;
  for (double t = r.lo; t <= r.hi + step * 1e-6; t += step) r.ticks.push_back(std::abs(t) < step * 1e-9 ? 0.0 : t);
  return r;
}

inline std::vector<double> x_ticks(double lo, double hi) {
  const double step = std::max(1.0, nice_step((hi - lo) / 8));
  std::vector<double> t;
  for (double v = std::ceil(lo / step) * step; v <= hi + 1e-9; v += step) t.push_back(v);
  return t;
}

using figure::align;
using figure::label;

inline void add_text(figure::drawing& d, double x, double y, std::string text, io::colour c, int scale = 2,
                     align anchor = align::start, bool vertical = false) {
  d.shapes.emplace_back(label{{x, y}, std::move(text), c, scale, anchor, vertical});
}

// Frame, grid, ticks and numbers of one plot box. y_side: 0 = left axis, 1 = right (secondary) axis.
inline void add_axes(figure::drawing& d, const plot_axes& a, const std::vector<double>& xt, const range& y, bool grid,
                     int y_side, io::colour number_colour) {
  using namespace curve_colours;
  const double bottom = a.top + a.height, right = a.left + a.width;
  if (grid) {
    for (const double v : y.ticks)
      d.shapes.emplace_back(figure::polyline{{{a.left, a.pixel_y(v)}, {right, a.pixel_y(v)}}, curve_colours::grid, 1});
    for (const double v : xt)
      d.shapes.emplace_back(figure::polyline{{{a.pixel_x(v), a.top}, {a.pixel_x(v), bottom}}, curve_colours::grid, 1});
    d.shapes.emplace_back(figure::rectangle{a.left, a.top, a.width + 1, a.height + 1, std::nullopt, frame});
    for (const double v : xt) {
      d.shapes.emplace_back(figure::polyline{{{a.pixel_x(v), bottom}, {a.pixel_x(v), bottom + 6}}, frame, 1});
      add_text(d, a.pixel_x(v), bottom + 20, tick_text(v), ink, 2, align::middle);
    }
  }
  for (const double v : y.ticks) {
    const double py = a.pixel_y(v);
    if (y_side == 0) {
      d.shapes.emplace_back(figure::polyline{{{a.left - 6, py}, {a.left, py}}, frame, 1});
      add_text(d, a.left - 10, py, tick_text(v), number_colour, 2, align::end);
    } else {
      d.shapes.emplace_back(figure::polyline{{{right, py}, {right + 6, py}}, frame, 1});
      add_text(d, right + 10, py, tick_text(v), number_colour, 2, align::start);
    }
  }
}

// One series: lines through consecutive measured epochs, a dot on each measured epoch.
inline void add_series(figure::drawing& d, const plot_axes& a, const history& h, double epoch_record::*field, io::colour c) {
  std::vector<figure::point2> run;
  const auto flush = [&] {
    if (run.size() >= 2) d.shapes.emplace_back(figure::polyline{run, c, 2});
    run.clear();
  };
  const bool dots = h.size() <= 60;
  for (std::size_t i = 0; i < h.size(); ++i) {
    const double v = h[i].*field;
    const figure::point2 p{a.pixel_x(static_cast<double>(h[i].epoch)), plottable(v) && !(a.log_y && v <= 0) ? a.pixel_y(v) : NAN};
    if (!std::isfinite(p.x) || !std::isfinite(p.y)) {
      flush();
      continue;
    }
    run.push_back(p);
    const bool isolated = (i == 0 || !plottable(h[i - 1].*field)) && (i + 1 == h.size() || !plottable(h[i + 1].*field));
    if (dots || isolated) d.shapes.emplace_back(figure::dot{p, 3.5, c});
  }
  flush();
}

// A legend row above a plot box: a short line in the colour, then the name.
inline void add_legend(figure::drawing& d, double x, double y, const std::vector<std::pair<std::string, io::colour>>& entries) {
  for (const auto& [name, c] : entries) {
    d.shapes.emplace_back(figure::polyline{{{x, y}, {x + 28, y}}, c, 3});
    add_text(d, x + 36, y, name, curve_colours::ink, 2);
    x += 36 + figure::text_width(name, 2) + 30;
  }
}

inline bool any_finite(const history& h, double epoch_record::*field) {
  return std::any_of(h.begin(), h.end(), [&](const epoch_record& r) { return plottable(r.*field); });
}

}  // namespace curves_detail

// The figure (also used by the tests to find where a value is drawn).
inline training_curves_figure training_curves_figure_of(const history& h, const std::string& title = "Training curves") {
  namespace d = curves_detail;
  using namespace curve_colours;
  using figure::align;
  training_curves_figure f;
  f.drawing.width = d::figure_width;
  f.drawing.height = d::figure_height;
  auto& dr = f.drawing;
  if (h.empty()) {
    d::add_text(dr, d::figure_width / 2.0, 30, title, ink, 3, align::middle);
    d::add_text(dr, d::figure_width / 2.0, d::figure_height / 2.0, "no epochs yet", ink, 4, align::middle);
    return f;
  }
  f.empty = false;
  double first = static_cast<double>(h.front().epoch), last = first;
  for (const auto& r : h) {
    first = std::min(first, static_cast<double>(r.epoch));
    last = std::max(last, static_cast<double>(r.epoch));
  }
  if (last - first < 1) {  // one epoch: centre it
    first -= 0.5;
    last += 0.5;
  }
  const auto xt = d::x_ticks(first, last);
  const std::string epochs_text = std::to_string(h.size()) + (h.size() == 1 ? " epoch" : " epochs");
  d::add_text(dr, d::figure_width / 2.0, 28, title + " (" + epochs_text + ")", ink, 3, align::middle);

  // Left: losses.
  std::vector<double> losses;
  for (const auto& r : h) {
    losses.push_back(r.train_loss);
    losses.push_back(r.val_loss);
  }
  const auto loss_range = d::y_range(losses, true);
  f.loss = {110, d::plot_top, d::panel_width - 140.0, d::plot_bottom - d::plot_top, first, last, loss_range.lo,
            loss_range.hi, loss_range.log};
  d::add_text(dr, f.loss.left + f.loss.width / 2, 62, loss_range.log ? "loss (log scale)" : "loss", ink, 2, align::middle);
  d::add_legend(dr, f.loss.left, 90, {{"training", training_loss}, {"validation", validation_loss}});
  d::add_axes(dr, f.loss, xt, loss_range, true, 0, ink);
  d::add_text(dr, f.loss.left + f.loss.width / 2, d::plot_bottom + 52, "epoch", ink, 2, align::middle);
  d::add_text(dr, 24, f.loss.top + f.loss.height / 2, "loss", ink, 2, align::middle, true);
  d::add_series(dr, f.loss, h, &epoch_record::train_loss, training_loss);
  d::add_series(dr, f.loss, h, &epoch_record::val_loss, validation_loss);
  if (!d::any_finite(h, &epoch_record::train_loss) && !d::any_finite(h, &epoch_record::val_loss))
    d::add_text(dr, f.loss.left + f.loss.width / 2, f.loss.top + f.loss.height / 2, "not measured", frame, 2, align::middle);

  // Right: validation MAE, F1 on the right axis.
  f.has_f1 = d::any_finite(h, &epoch_record::val_f1);
  std::vector<double> maes;
  for (const auto& r : h) maes.push_back(r.val_mae);
  const auto mae_range = d::y_range(maes, false);
  const double left = d::panel_width + 110.0;
  const double width = d::panel_width - 110.0 - (f.has_f1 ? 100.0 : 30.0);
  f.validation = {left, d::plot_top, width, d::plot_bottom - d::plot_top, first, last, mae_range.lo, mae_range.hi, false};
  d::add_text(dr, left + width / 2, 62, f.has_f1 ? "validation MAE and F1" : "validation MAE", ink, 2, align::middle);
  std::vector<std::pair<std::string, io::colour>> legend = {{"MAE (count)", validation_mae}};
  if (f.has_f1) legend.emplace_back("F1 (right axis)", validation_f1);
  d::add_legend(dr, left, 90, legend);
  d::add_axes(dr, f.validation, xt, mae_range, true, 0, ink);
  d::add_text(dr, left + width / 2, d::plot_bottom + 52, "epoch", ink, 2, align::middle);
  d::add_text(dr, d::panel_width + 24.0, f.validation.top + f.validation.height / 2, "MAE", validation_mae, 2,
              align::middle, true);
  if (f.has_f1) {
    d::range unit;
    unit.ticks = {0, 0.2, 0.4, 0.6, 0.8, 1.0};
    f.f1 = f.validation;
    f.f1.y_min = 0;
    f.f1.y_max = 1;
    d::add_axes(dr, f.f1, xt, unit, false, 1, validation_f1);
    d::add_text(dr, left + width + 80, f.f1.top + f.f1.height / 2, "F1", validation_f1, 2, align::middle, true);
    d::add_series(dr, f.f1, h, &epoch_record::val_f1, validation_f1);
  }
  d::add_series(dr, f.validation, h, &epoch_record::val_mae, validation_mae);
  if (!d::any_finite(h, &epoch_record::val_mae))
    d::add_text(dr, left + width / 2, f.validation.top + f.validation.height / 2, "no validation MAE", frame, 2, align::middle);
  return f;
}

// Writes <path_without_extension>.png and .svg (atomically; folders created).
inline void write_training_curves(const history& h, const std::filesystem::path& path_without_extension,
                                  const std::string& title = "Training curves") {
  const auto f = training_curves_figure_of(h, title);
  auto png = path_without_extension;
  png += ".png";
  auto svg = path_without_extension;
  svg += ".svg";
  io::write_png(png, figure::rasterise(f.drawing));
  io::write_text_atomically(svg, figure::to_svg(f.drawing));
}

}  // namespace microcount::train
