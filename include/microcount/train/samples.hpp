#pragma once
// samples/<name>.png: one picture per sample image, panels side by side, each with a caption:
//
//   input            the image, each channel percentile-stretched (0.5–99.5 %) for display; grey or RGB
//   ground truth N   the image dimmed, truth points as rings in their class colour
//   prediction N.N   the predicted map (sum over classes) in a perceptually uniform colour map,
//                    predicted points as crosses in their class colour; N.N = predicted count
//   <class> N.N      one more panel per class map when there are several classes
//   Grad-CAM         the image in grey with the Grad-CAM map [0, 1] blended over it as heat
// Panels without data are left out (no maps: no prediction panel, but points still get one; no
// Grad-CAM: no Grad-CAM panel). Small images are enlarged (nearest neighbour, integer factor) and large
// ones reduced so a panel is 256–768 pixels across; points are drawn after scaling, so they stay crisp.
// A legend row at the bottom names the markers and the class colours.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <xtensor/xtensor.hpp>
#include <xtensor/xview.hpp>

#include "microcount/core/error.hpp"
#include "microcount/io/annotations.hpp"
#include "microcount/io/picture.hpp"
#include "microcount/io/png.hpp"
#include "microcount/train/figure.hpp"

namespace microcount::train {

struct sample_panel {
  std::string title;                        // drawn above the panels (e.g. the image name); may be empty
  xt::xtensor<float, 3> image;              // [C, H, W], C = 1 (grey) or 3 (RGB); other C: first channel shown
  std::vector<std::string> labels;          // class names for captions and legend (may be empty)
  std::vector<io::point> truth_points;      // x = column, y = row in image pixels; label = class
  std::optional<double> truth_count;        // default: number of truth points
  xt::xtensor<float, 3> predicted_maps;     // [K, H, W] (map pixels; resized to the image when another size); may be empty
  std::vector<io::point> predicted_points;
  std::vector<double> predicted_counts;     // [K]; empty: the number of predicted points
  std::optional<xt::xtensor<float, 2>> grad_cam;  // [H, W] in [0, 1]
};

// Class colours, chosen to stand out on grey images and on the colour map.
inline io::colour class_colour(int label) {
  static constexpr std::array<io::colour, 6> table = {io::colour{255, 60, 60},  io::colour{60, 170, 255},
                                                      io::colour{255, 220, 0},  io::colour{255, 0, 255},
                                                      io::colour{0, 255, 200},  io::colour{255, 140, 0}};
  return table[static_cast<std::size_t>(label < 0 ? 0 : label) % table.size()];
}

// A perceptually uniform map from dark purple through blue and green to yellow: piecewise linear through
// nine samples of matplotlib's "viridis" (whose lightness rises evenly), so equal steps of the value
// look like equal steps of brightness and the map reads right in grey print too. t is clamped to [0, 1].
inline io::colour viridis(double t) {
  static constexpr std::array<std::array<double, 3>, 9> anchors = {{{68, 1, 84},
                                                                    {72, 40, 120},
                                                                    {62, 73, 137},
                                                                    {49, 104, 142},
                                                                    {38, 130, 142},
                                                                    {31, 158, 137},
                                                                    {53, 183, 121},
                                                                    {109, 205, 89},
                                                                    {253, 231, 37}}};
  t = std::isfinite(t) ? std::clamp(t, 0.0, 1.0) : 0.0;
  const double s = t * 8;
  const auto i = std::min<std::size_t>(static_cast<std::size_t>(s), 7);
  const double f = s - static_cast<double>(i);
  const auto mix = [&](int c) {
    return static_cast<std::uint8_t>(std::lround(anchors[i][c] + (anchors[i + 1][c] - anchors[i][c]) * f));
  };
  return {mix(0), mix(1), mix(2)};
}

// Heat for Grad-CAM: black → red → yellow → white.
inline io::colour heat(double t) {
  t = std::isfinite(t) ? std::clamp(t, 0.0, 1.0) : 0.0;
  const auto byte = [](double v) { return static_cast<std::uint8_t>(std::lround(std::clamp(v, 0.0, 1.0) * 255)); };
  return {byte(t * 3), byte(t * 3 - 1), byte(t * 3 - 2)};
}

// Where each panel's image lies in the picture (display pixels) and how image pixels map onto it.
struct sample_layout {
  struct panel {
    std::string caption;
    long left = 0, top = 0;  // top-left of the image area
  };
  std::vector<panel> panels;
  double zoom = 1;            // display pixels per image pixel
  long panel_width = 0, panel_height = 0;

  // Display position of image point (x, y) in panel p (pixel centres map to display pixel centres).
  [[nodiscard]] std::array<double, 2> to_display(std::size_t p, double x, double y) const {
    return {static_cast<double>(panels[p].left) + (x + 0.5) * zoom - 0.5, static_cast<double>(panels[p].top) + (y + 0.5) * zoom - 0.5};
  }
};

struct sample_picture {
  xt::xtensor<std::uint8_t, 3> pixels;  // [H, W, 3]
  sample_layout layout;
};

namespace samples_detail {

using picture = xt::xtensor<std::uint8_t, 3>;  // [H, W, 3]

inline std::string count_text(double v, bool whole = false) {
  char buf[32];
  std::snprintf(buf, sizeof buf, whole ? "%.0f" : "%.1f", v);
  return buf;
}

// [C, H, W] → [H, W, 3], each shown channel stretched between its own 0.5 and 99.5 percentiles:
// microscopy channels are separate stains with unrelated ranges (one may be 16-bit, another nearly
// empty), so one stretch for all would hide the weak ones.
inline picture display_image(const xt::xtensor<float, 3>& image) {
  const std::size_t C = image.shape()[0], H = image.shape()[1], W = image.shape()[2];
  const bool rgb = C == 3;
  picture out = xt::zeros<std::uint8_t>({H, W, std::size_t{3}});
  for (std::size_t k = 0; k < (rgb ? 3 : 1); ++k) {
    const xt::xtensor<float, 2> channel = xt::view(image, k, xt::all(), xt::all());  // [H, W]
    const float lo = io::percentile(channel, 0.5), hi = io::percentile(channel, 99.5);
    // A flat channel carries no picture: black when empty (≤ 0), mid grey otherwise.
    const float scale = hi > lo ? 255.0f / (hi - lo) : 0.0f;
    for (std::size_t y = 0; y < H; ++y)
      for (std::size_t x = 0; x < W; ++x) {
        const float v = channel(y, x);
        const float level = !std::isfinite(v) ? 0.0f : hi > lo ? (v - lo) * scale : (v > 0 ? 128.0f : 0.0f);
        const auto byte = static_cast<std::uint8_t>(std::lround(std::clamp(level, 0.0f, 255.0f)));
        for (std::size_t j = 0; j < 3; ++j)
          if (!rgb || j == k) out(y, x, j) = byte;
      }
  }
  return out;
}

// Nearest-neighbour subsample [C, H, W] → [C', h, w] of the channels display_image shows (C' = 3 or 1).
inline xt::xtensor<float, 3> subsampled(const xt::xtensor<float, 3>& image, std::size_t h, std::size_t w) {
  const std::size_t C = image.shape()[0] == 3 ? 3 : 1, H = image.shape()[1], W = image.shape()[2];
  xt::xtensor<float, 3> out = xt::xtensor<float, 3>::from_shape({C, h, w});  // [C, h, w]
  for (std::size_t c = 0; c < C; ++c)
    for (std::size_t y = 0; y < h; ++y)
      for (std::size_t x = 0; x < w; ++x) out(c, y, x) = image(c, std::min(H - 1, y * H / h), std::min(W - 1, x * W / w));
  return out;
}

// Luminance of an RGB picture as grey RGB (for overlays that need a neutral background).
inline picture greyed(const picture& p, double brightness) {
  picture out = p;
  for (std::size_t y = 0; y < p.shape()[0]; ++y)
    for (std::size_t x = 0; x < p.shape()[1]; ++x) {
      const double l = (0.299 * p(y, x, 0) + 0.587 * p(y, x, 1) + 0.114 * p(y, x, 2)) * brightness;
      const auto b = static_cast<std::uint8_t>(std::lround(std::clamp(l, 0.0, 255.0)));
      out(y, x, 0) = out(y, x, 1) = out(y, x, 2) = b;
    }
  return out;
}

// A map [h, w] (any size) → [H, W, 3] colour-mapped from 0 to its 99.9th percentile (robust to a few
// hot pixels; a map that is all zero stays dark).
inline picture map_picture(const xt::xtensor<float, 2>& map, std::size_t H, std::size_t W) {
  const std::size_t h = map.shape()[0], w = map.shape()[1];
  const double top = std::max(0.0f, io::percentile(map, 99.9));
  picture out = picture::from_shape({H, W, 3});
  for (std::size_t y = 0; y < H; ++y)
    for (std::size_t x = 0; x < W; ++x) {
      const float v = map(std::min(h - 1, y * h / H), std::min(w - 1, x * w / W));  // nearest
      const io::colour c = viridis(top > 0 ? static_cast<double>(v) / top : 0.0);
      out(y, x, 0) = c.r;
      out(y, x, 1) = c.g;
      out(y, x, 2) = c.b;
    }
  return out;
}

// Input in grey with heat blended in proportion to the Grad-CAM value (0: the image, 1: 70 % heat).
inline picture cam_picture(const picture& input, const xt::xtensor<float, 2>& cam) {
  const std::size_t H = input.shape()[0], W = input.shape()[1], h = cam.shape()[0], w = cam.shape()[1];
  picture out = greyed(input, 1.0);
  for (std::size_t y = 0; y < H; ++y)
    for (std::size_t x = 0; x < W; ++x) {
      const float v = cam(std::min(h - 1, y * h / H), std::min(w - 1, x * w / W));
      const double t = std::isfinite(v) ? std::clamp(static_cast<double>(v), 0.0, 1.0) : 0.0;
      const io::colour c = heat(t);
      const double a = 0.7 * t;
      const std::array<std::uint8_t, 3> hc = {c.r, c.g, c.b};
      for (std::size_t k = 0; k < 3; ++k)
        out(y, x, k) = static_cast<std::uint8_t>(std::lround((1 - a) * out(y, x, k) + a * hc[k]));
    }
  return out;
}

// Nearest-neighbour resampling to the display size.
inline picture resampled(const picture& p, std::size_t H, std::size_t W) {
  const std::size_t h = p.shape()[0], w = p.shape()[1];
  picture out = picture::from_shape({H, W, 3});
  for (std::size_t y = 0; y < H; ++y)
    for (std::size_t x = 0; x < W; ++x)
      for (std::size_t k = 0; k < 3; ++k) out(y, x, k) = p(std::min(h - 1, y * h / H), std::min(w - 1, x * w / W), k);
  return out;
}

inline void paste(picture& canvas, const picture& p, long left, long top) {
  for (std::size_t y = 0; y < p.shape()[0]; ++y)
    for (std::size_t x = 0; x < p.shape()[1]; ++x)
      io::set_pixel(canvas, left + static_cast<long>(x), top + static_cast<long>(y), {p(y, x, 0), p(y, x, 1), p(y, x, 2)});
}

inline void check_points(const std::vector<io::point>& points, const char* side) {
  for (const auto& p : points)
    if (!std::isfinite(p.x) || !std::isfinite(p.y))
      throw error("sample panel", std::string(side) + " point with a non-finite coordinate");
}

}  // namespace samples_detail

// Lays out and draws the panels (write_sample_panel writes this picture).
inline sample_picture render_sample_panel(const sample_panel& s) {
  namespace d = samples_detail;
  using figure::align;
  if (s.image.dimension() != 3 || s.image.shape()[0] == 0 || s.image.shape()[1] == 0 || s.image.shape()[2] == 0)
    throw error("sample panel", "the input image must be [C, H, W] with pixels");
  const std::size_t H = s.image.shape()[1], W = s.image.shape()[2];
  if (s.grad_cam && (s.grad_cam->shape()[0] == 0 || s.grad_cam->shape()[1] == 0))
    throw error("sample panel", "the Grad-CAM map is empty");
  d::check_points(s.truth_points, "truth");
  d::check_points(s.predicted_points, "predicted");
  const std::size_t K = s.predicted_maps.size() > 0 ? s.predicted_maps.shape()[0] : 0;

  // Display size: an integer enlargement up to 256 px, or a reduction down to 768 px.
  const double side = static_cast<double>(std::max(H, W));
  const double zoom = side < 256 ? std::floor(256 / side) : side > 768 ? 768 / side : 1.0;
  const auto DH = static_cast<std::size_t>(std::max(1L, std::lround(static_cast<double>(H) * zoom)));
  const auto DW = static_cast<std::size_t>(std::max(1L, std::lround(static_cast<double>(W) * zoom)));
  const double zx = static_cast<double>(DW) / static_cast<double>(W);  // exact display pixels per image pixel

  // Panels are composed at the image's size, or straight at the display size when reducing (a large
  // image is subsampled first instead of being stretched and coloured at full resolution).
  const std::size_t BH = zoom < 1 ? DH : H, BW = zoom < 1 ? DW : W;
  const d::picture input = d::display_image(zoom < 1 ? d::subsampled(s.image, BH, BW) : s.image);
  const double truth_count = s.truth_count.value_or(static_cast<double>(s.truth_points.size()));
  double predicted_count = static_cast<double>(s.predicted_points.size());
  if (!s.predicted_counts.empty()) {
    predicted_count = 0;
    for (const double c : s.predicted_counts) predicted_count += c;
  }
  const auto class_name = [&](std::size_t k) {
    return k < s.labels.size() ? s.labels[k] : "class " + std::to_string(k);
  };

  struct pending {
    std::string caption;
    d::picture image;                        // [BH, BW, 3]
    const std::vector<io::point>* rings = nullptr;
    const std::vector<io::point>* crosses = nullptr;
    int only_label = -1;                     // draw only points of this label (-1: all)
  };
  std::vector<pending> panels;
  panels.push_back({"input", input});
  panels.push_back({"ground truth " + d::count_text(truth_count, std::floor(truth_count) == truth_count),
                    d::greyed(input, 0.8), &s.truth_points});
  if (K > 0) {
    xt::xtensor<float, 2> total = xt::zeros<float>({s.predicted_maps.shape()[1], s.predicted_maps.shape()[2]});  // [h, w]
    for (std::size_t k = 0; k < K; ++k)
      for (std::size_t y = 0; y < total.shape()[0]; ++y)
        for (std::size_t x = 0; x < total.shape()[1]; ++x) total(y, x) += s.predicted_maps(k, y, x);
    panels.push_back({"prediction " + d::count_text(predicted_count), d::map_picture(total, BH, BW), nullptr, &s.predicted_points});
    if (K > 1)
      for (std::size_t k = 0; k < K; ++k) {
        const xt::xtensor<float, 2> one = xt::view(s.predicted_maps, k, xt::all(), xt::all());  // [h, w]
        double count = 0;
        if (k < s.predicted_counts.size()) count = s.predicted_counts[k];
        else
          for (const auto& p : s.predicted_points) count += p.label == static_cast<int>(k);
        panels.push_back({class_name(k) + " " + d::count_text(count), d::map_picture(one, BH, BW), nullptr,
                          &s.predicted_points, static_cast<int>(k)});
      }
  } else if (!s.predicted_points.empty() || !s.predicted_counts.empty()) {
    panels.push_back({"prediction " + d::count_text(predicted_count), d::greyed(input, 0.8), nullptr, &s.predicted_points});
  }
  if (s.grad_cam) panels.push_back({"Grad-CAM", d::cam_picture(input, *s.grad_cam)});

  // Canvas: title band, caption band, panels with gaps, legend band.
  const int caption_scale = DW >= 200 ? 2 : 1;
  const long gap = 10, margin = 10;
  const long title_band = s.title.empty() ? 0 : 34;
  const long caption_band = 14 + 8L * caption_scale;
  const long legend_band = 16 + 8L * caption_scale;
  const long width = margin * 2 + static_cast<long>(panels.size()) * static_cast<long>(DW) +
                     static_cast<long>(panels.size() - 1) * gap;
  const long height = margin + title_band + caption_band + static_cast<long>(DH) + legend_band;
  sample_picture out;
  out.pixels = xt::xtensor<std::uint8_t, 3>::from_shape({static_cast<std::size_t>(height), static_cast<std::size_t>(width), 3});
  std::fill(out.pixels.begin(), out.pixels.end(), std::uint8_t{255});
  out.layout.zoom = zx;
  out.layout.panel_width = static_cast<long>(DW);
  out.layout.panel_height = static_cast<long>(DH);
  const io::colour ink{30, 30, 30};
  if (!s.title.empty()) figure::draw_text(out.pixels, width / 2.0, margin + 12, s.title, ink, 2, align::middle);

  const double ring = std::max(3.0, 2.5 * zx), arm = std::max(3.0, 2.0 * zx);
  for (std::size_t p = 0; p < panels.size(); ++p) {
    const long left = margin + static_cast<long>(p) * (static_cast<long>(DW) + gap);
    const long top = margin + title_band + caption_band;
    out.layout.panels.push_back({panels[p].caption, left, top});
    figure::draw_text(out.pixels, left + static_cast<double>(DW) / 2, margin + title_band + caption_band / 2.0 - 2,
                      panels[p].caption, ink, caption_scale, align::middle);
    // Markers go on the panel before it is pasted, so rings at the border are clipped to the panel.
    d::picture shown = d::resampled(panels[p].image, DH, DW);  // [DH, DW, 3]
    const auto local = [&](const io::point& q) {
      const auto a = out.layout.to_display(p, q.x, q.y);
      return std::array<double, 2>{a[0] - static_cast<double>(left), a[1] - static_cast<double>(top)};
    };
    const auto wanted = [&](const io::point& q) {  // this panel's class, and near enough to show
      const bool near = q.x > -16 && q.y > -16 && q.x < static_cast<double>(W) + 16 && q.y < static_cast<double>(H) + 16;
      return near && (panels[p].only_label < 0 || q.label == panels[p].only_label);
    };
    if (panels[p].rings)
      for (const auto& q : *panels[p].rings)
        if (wanted(q)) io::draw_circle(shown, local(q)[0], local(q)[1], ring, class_colour(q.label), 1.5);
    if (panels[p].crosses)
      for (const auto& q : *panels[p].crosses)
        if (wanted(q)) io::draw_cross(shown, local(q)[0], local(q)[1], static_cast<int>(std::lround(arm)), class_colour(q.label));
    d::paste(out.pixels, shown, left, top);
  }

  // Legend: markers, then class colours.
  const double ly = static_cast<double>(height) - legend_band / 2.0;
  double lx = margin + 8;
  io::draw_circle(out.pixels, lx, ly, 5, ink, 1.5);
  figure::draw_text(out.pixels, lx + 12, ly, "truth", ink, caption_scale);
  lx += 12 + figure::text_width("truth", caption_scale) + 24;
  io::draw_cross(out.pixels, lx, ly, 5, ink);
  figure::draw_text(out.pixels, lx + 12, ly, "prediction", ink, caption_scale);
  lx += 12 + figure::text_width("prediction", caption_scale) + 30;
  std::size_t classes = s.labels.size();
  for (const auto* points : {&s.truth_points, &s.predicted_points})
    for (const auto& q : *points) classes = std::max(classes, static_cast<std::size_t>(std::max(0, q.label)) + 1);
  if (classes > 1)
    for (std::size_t k = 0; k < classes && lx < static_cast<double>(width) - 40; ++k) {
      io::draw_dot(out.pixels, lx, ly, 5, class_colour(static_cast<int>(k)));
      figure::draw_text(out.pixels, lx + 12, ly, class_name(k), ink, caption_scale);
      lx += 12 + figure::text_width(class_name(k), caption_scale) + 24;
    }
  return out;
}

// Writes the sample picture as a PNG (atomically; folders created).
inline void write_sample_panel(const std::filesystem::path& path, const sample_panel& s) {
  io::write_png(path, render_sample_panel(s).pixels);
}

}  // namespace microcount::train
