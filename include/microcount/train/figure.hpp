#pragma once
// A tiny vector figure (lines, dots, rectangles, text) drawn two ways: rasterised into an 8-bit RGB
// picture for PNG, and written as SVG text. Enough for training curves and captions; not a plotting
// library. Text uses a built-in 5×7 bitmap font (with a descender row, so 5×8 cells) at integer scales,
// so the PNG needs no font files and reads the same on every machine.
// Coordinates are pixels, x to the right, y down; a pixel (col, row) covers [col, col+1) × [row, row+1).
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <xtensor/xtensor.hpp>

#include "microcount/core/error.hpp"
#include "microcount/io/picture.hpp"

namespace microcount::train::figure {

using io::colour;

// ---- the font ------------------------------------------------------------------------------------
// Each glyph: 8 rows of 5 columns, '#' = ink. Rows 0–6 hold capitals and digits, row 7 descenders.
// Characters without a glyph are drawn as '?'.
namespace font_detail {

struct glyph_art {
  char ch;
  const char* rows;  // 7 or 8 rows of 5 (concatenated literals); row 7 blank when only 7 are given
};

// clang-format off
inline constexpr glyph_art glyph_table[] = {
  {' ', "....." "....." "....." "....." "....." "....." "....."},
  {'0', ".###." "#...#" "#..##" "#.#.#" "##..#" "#...#" ".###."},
  {'1', "..#.." ".##.." "..#.." "..#.." "..#.." "..#.." ".###."},
  {'2', ".###." "#...#" "....#" "...#." "..#.." ".#..." "#####"},
  {'3', "#####" "...#." "..#.." "...#." "....#" "#...#" ".###."},
  {'4', "...#." "..##." ".#.#." "#..#." "#####" "...#." "...#."},
  {'5', "#####" "#...." "####." "....#" "....#" "#...#" ".###."},
  {'6', "..##." ".#..." "#...." "####." "#...#" "#...#" ".###."},
  {'7', "#####" "....#" "...#." "..#.." ".#..." ".#..." ".#..."},
  {'8', ".###." "#...#" "#...#" ".###." "#...#" "#...#" ".###."},
  {'9', ".###." "#...#" "#...#" ".####" "....#" "...#." ".##.."},
  {'A', ".###." "#...#" "#...#" "#####" "#...#" "#...#" "#...#"},
  {'B', "####." "#...#" "#...#" "####." "#...#" "#...#" "####."},
  {'C', ".###." "#...#" "#...." "#...." "#...." "#...#" ".###."},
  {'D', "####." "#...#" "#...#" "#...#" "#...#" "#...#" "####."},
  {'E', "#####" "#...." "#...." "####." "#...." "#...." "#####"},
  {'F', "#####" "#...." "#...." "####." "#...." "#...." "#...."},
  {'G', ".###." "#...#" "#...." "#.###" "#...#" "#...#" ".####"},
  {'H', "#...#" "#...#" "#...#" "#####" "#...#" "#...#" "#...#"},
  {'I', ".###." "..#.." "..#.." "..#.." "..#.." "..#.." ".###."},
  {'J', "..###" "...#." "...#." "...#." "...#." "#..#." ".##.."},
  {'K', "#...#" "#..#." "#.#.." "##..." "#.#.." "#..#." "#...#"},
  {'L', "#...." "#...." "#...." "#...." "#...." "#...." "#####"},
  {'M', "#...#" "##.##" "#.#.#" "#.#.#" "#...#" "#...#" "#...#"},
  {'N', "#...#" "#...#" "##..#" "#.#.#" "#..##" "#...#" "#...#"},
  {'O', ".###." "#...#" "#...#" "#...#" "#...#" "#...#" ".###."},
  {'P', "####." "#...#" "#...#" "####." "#...." "#...." "#...."},
  {'Q', ".###." "#...#" "#...#" "#...#" "#.#.#" "#..#." ".##.#"},
  {'R', "####." "#...#" "#...#" "####." "#.#.." "#..#." "#...#"},
  {'S', ".####" "#...." "#...." ".###." "....#" "....#" "####."},
  {'T', "#####" "..#.." "..#.." "..#.." "..#.." "..#.." "..#.."},
  {'U', "#...#" "#...#" "#...#" "#...#" "#...#" "#...#" ".###."},
  {'V', "#...#" "#...#" "#...#" "#...#" "#...#" ".#.#." "..#.."},
  {'W', "#...#" "#...#" "#...#" "#.#.#" "#.#.#" "#.#.#" ".#.#."},
  {'X', "#...#" "#...#" ".#.#." "..#.." ".#.#." "#...#" "#...#"},
  {'Y', "#...#" "#...#" ".#.#." "..#.." "..#.." "..#.." "..#.."},
  {'Z', "#####" "....#" "...#." "..#.." ".#..." "#...." "#####"},
  {'a', "....." "....." ".###." "....#" ".####" "#...#" ".####"},
  {'b', "#...." "#...." "#.##." "##..#" "#...#" "#...#" "####."},
  {'c', "....." "....." ".###." "#...." "#...." "#...#" ".###."},
  {'d', "....#" "....#" ".##.#" "#..##" "#...#" "#...#" ".####"},
  {'e', "....." "....." ".###." "#...#" "#####" "#...." ".###."},
  {'f', "..##." ".#..#" ".#..." "###.." ".#..." ".#..." ".#..."},
  {'g', "....." "....." ".####" "#...#" "#...#" ".####" "....#" ".###."},
  {'h', "#...." "#...." "#.##." "##..#" "#...#" "#...#" "#...#"},
  {'i', "..#.." "....." ".##.." "..#.." "..#.." "..#.." ".###."},
  {'j', "...#." "....." "..##." "...#." "...#." "...#." "#..#." ".##.."},
  {'k', "#...." "#...." "#..#." "#.#.." "##..." "#.#.." "#..#."},
  {'l', ".##.." "..#.." "..#.." "..#.." "..#.." "..#.." ".###."},
  {'m', "....." "....." "##.#." "#.#.#" "#.#.#" "#...#" "#...#"},
  {'n', "....." "....." "#.##." "##..#" "#...#" "#...#" "#...#"},
  {'o', "....." "....." ".###." "#...#" "#...#" "#...#" ".###."},
  {'p', "....." "....." "####." "#...#" "#...#" "####." "#...." "#...."},
  {'q', "....." "....." ".##.#" "#..##" "#...#" ".####" "....#" "....#"},
  {'r', "....." "....." "#.##." "##..#" "#...." "#...." "#...."},
  {'s', "....." "....." ".###." "#...." ".###." "....#" "####."},
  {'t', ".#..." ".#..." "###.." ".#..." ".#..." ".#..#" "..##."},
  {'u', "....." "....." "#...#" "#...#" "#...#" "#..##" ".##.#"},
  {'v', "....." "....." "#...#" "#...#" "#...#" ".#.#." "..#.."},
  {'w', "....." "....." "#...#" "#...#" "#.#.#" "#.#.#" ".#.#."},
  {'x', "....." "....." "#...#" ".#.#." "..#.." ".#.#." "#...#"},
  {'y', "....." "....." "#...#" "#...#" "#...#" ".####" "....#" ".###."},
  {'z', "....." "....." "#####" "...#." "..#.." ".#..." "#####"},
  {'.', "....." "....." "....." "....." "....." ".##.." ".##.."},
  {',', "....." "....." "....." "....." ".##.." "..#.." ".#..."},
  {'-', "....." "....." "....." ".###." "....." "....." "....."},
  {'+', "....." "..#.." "..#.." "#####" "..#.." "..#.." "....."},
  {'(', "...#." "..#.." ".#..." ".#..." ".#..." "..#.." "...#."},
  {')', ".#..." "..#.." "...#." "...#." "...#." "..#.." ".#..."},
  {':', "....." ".##.." ".##.." "....." ".##.." ".##.." "....."},
  {'/', "....." "....#" "...#." "..#.." ".#..." "#...." "....."},
  {'%', "##..." "##..#" "...#." "..#.." ".#..." "#..##" "...##"},
  {'_', "....." "....." "....." "....." "....." "....." "#####"},
  {'=', "....." "....." "#####" "....." "#####" "....." "....."},
  {'<', "...#." "..#.." ".#..." "#...." ".#..." "..#.." "...#."},
  {'>', ".#..." "..#.." "...#." "....#" "...#." "..#.." ".#..."},
  {'\'', ".##.." "..#.." ".#..." "....." "....." "....." "....."},
  {'[', ".###." ".#..." ".#..." ".#..." ".#..." ".#..." ".###."},
  {']', ".###." "...#." "...#." "...#." "...#." "...#." ".###."},
  {'#', ".#.#." ".#.#." "#####" ".#.#." "#####" ".#.#." ".#.#."},
  {'!', "..#.." "..#.." "..#.." "..#.." "..#.." "....." "..#.."},
  {'?', ".###." "#...#" "....#" "...#." "..#.." "....." "..#.."},
  {'*', "....." "..#.." "#.#.#" ".###." "#.#.#" "..#.." "....."},
  {'|', "..#.." "..#.." "..#.." "..#.." "..#.." "..#.." "..#.."},
  {'"', ".#.#." ".#.#." "....." "....." "....." "....." "....."},

};
// clang-format on

consteval bool glyph_table_is_well_formed() {
  for (const auto& art : glyph_table) {
    std::size_t n = 0;
    for (; art.rows[n] != 0; ++n)
      if (art.rows[n] != '.' && art.rows[n] != '#') return false;
    if (n != 35 && n != 40) return false;
  }
  return true;
}
static_assert(glyph_table_is_well_formed(), "figure font: every glyph must be 7 or 8 rows of 5 '.' or '#'");

struct glyph {
  std::array<std::uint8_t, 8> rows{};  // bit 4 = leftmost column
};

// ASCII → glyph, built once. Also checks the table (a wrong-length row is a bug in this file).
inline const std::array<glyph, 128>& glyphs() {
  static const std::array<glyph, 128> table = [] {
    std::array<glyph, 128> t{};
    std::array<bool, 128> defined{};
    for (const auto& art : glyph_table) {
      const std::string_view rows(art.rows);
      glyph g;
      const std::size_t n = std::min<std::size_t>(rows.size() / 5, 8);
      for (std::size_t r = 0; r < n; ++r)
        for (std::size_t c = 0; c < 5; ++c)
          if (rows[r * 5 + c] == '#') g.rows[r] |= static_cast<std::uint8_t>(1u << (4 - c));
      const auto index = static_cast<unsigned char>(art.ch);
      t[index] = g;
      defined[index] = true;
    }
    for (std::size_t i = 0; i < 128; ++i)
      if (!defined[i]) t[i] = t[static_cast<unsigned char>('?')];
    t[static_cast<unsigned char>(' ')] = glyph{};
    return t;
  }();
  return table;
}

}  // namespace font_detail

inline constexpr int glyph_width = 5, glyph_height = 8, glyph_advance = 6;

// Ink of character c at (column, row) of its 5×8 cell.
inline bool glyph_ink(char c, int column, int row) {
  const auto u = static_cast<unsigned char>(c);
  const auto& g = font_detail::glyphs()[u < 128 ? u : static_cast<unsigned char>('?')];
  return column >= 0 && column < glyph_width && row >= 0 && row < glyph_height && ((g.rows[row] >> (4 - column)) & 1u);
}

// Width in pixels of `text` at `scale` (no trailing gap).
inline int text_width(std::string_view text, int scale) {
  return text.empty() ? 0 : (static_cast<int>(text.size()) * glyph_advance - 1) * scale;
}
inline int text_height(int scale) { return glyph_height * scale; }

enum class align { start, middle, end };

// Draws `text` with its cell box's vertical centre at y (rows 0–6 are centred; descenders hang below),
// horizontally anchored at x. vertical = rotated 90° counter-clockwise (reads bottom to top), anchored
// the same way along its direction.
inline void draw_text(xt::xtensor<std::uint8_t, 3>& picture, double x, double y, std::string_view text, colour c,
                      int scale = 1, align anchor = align::start, bool vertical = false) {
  const int w = text_width(text, scale);
  const double shift = anchor == align::start ? 0.0 : anchor == align::middle ? w / 2.0 : static_cast<double>(w);
  const long along0 = std::lround(-shift);                   // start along the text direction
  const long across0 = std::lround(-3.5 * scale);            // top of the cell so rows 0–6 centre on y
  const long ox = std::lround(x), oy = std::lround(y);
  for (std::size_t i = 0; i < text.size(); ++i)
    for (int row = 0; row < glyph_height; ++row)
      for (int column = 0; column < glyph_width; ++column) {
        if (!glyph_ink(text[i], column, row)) continue;
        for (int sy = 0; sy < scale; ++sy)
          for (int sx = 0; sx < scale; ++sx) {
            const long along = along0 + static_cast<long>(i) * glyph_advance * scale + column * scale + sx;
            const long across = across0 + row * scale + sy;
            if (vertical) io::set_pixel(picture, ox + across, oy - along, c);
            else io::set_pixel(picture, ox + along, oy + across, c);
          }
      }
}

// ---- shapes ----------------------------------------------------------------------------------------
struct point2 {
  double x = 0, y = 0;
};
struct polyline {
  std::vector<point2> points;
  colour stroke;
  double width = 2;
};
struct dot {
  point2 centre;
  double radius = 3;
  colour fill;
};
struct rectangle {
  double x = 0, y = 0, width = 0, height = 0;
  std::optional<colour> fill;
  std::optional<colour> stroke;  // 1 px
};
struct label {
  point2 at;  // anchor point; y is the vertical centre of the text
  std::string text;
  colour fill;
  int scale = 2;
  align anchor = align::start;
  bool vertical = false;
};
using shape = std::variant<polyline, dot, rectangle, label>;

struct drawing {
  int width = 0, height = 0;
  colour background{255, 255, 255};
  std::vector<shape> shapes;  // painted in order
};

namespace detail {

inline void fill_box(xt::xtensor<std::uint8_t, 3>& p, long x0, long y0, long x1, long y1, colour c) {  // inclusive
  const long H = static_cast<long>(p.shape()[0]), W = static_cast<long>(p.shape()[1]);
  x0 = std::max(x0, 0L);
  y0 = std::max(y0, 0L);
  x1 = std::min(x1, W - 1);
  y1 = std::min(y1, H - 1);
  for (long y = y0; y <= y1; ++y)
    for (long x = x0; x <= x1; ++x) io::set_pixel(p, x, y, c);
}

// A segment `width` pixels thick: a width×width square stamped every half pixel along it.
inline void thick_segment(xt::xtensor<std::uint8_t, 3>& p, point2 a, point2 b, double width, colour c) {
  // Far outside any picture (or not a number): nothing to draw, and no overflow in the casts below.
  constexpr double far = 1e7;
  for (const double v : {a.x, a.y, b.x, b.y, width})
    if (!(std::abs(v) <= far)) return;
  const long side = std::max(1L, std::lround(width));
  const double length = std::hypot(b.x - a.x, b.y - a.y);
  const long steps = std::max(1L, static_cast<long>(std::ceil(length * 2)));
  for (long s = 0; s <= steps; ++s) {
    const double t = static_cast<double>(s) / static_cast<double>(steps);
    const double x = a.x + (b.x - a.x) * t, y = a.y + (b.y - a.y) * t;
    const long x0 = static_cast<long>(std::floor(x - static_cast<double>(side) / 2 + 0.5));
    const long y0 = static_cast<long>(std::floor(y - static_cast<double>(side) / 2 + 0.5));
    fill_box(p, x0, y0, x0 + side - 1, y0 + side - 1, c);
  }
}

inline std::string hex(colour c) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "#%02x%02x%02x", c.r, c.g, c.b);
  return buf;
}

inline std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  std::string s = buf;
  while (s.back() == '0') s.pop_back();
  if (s.back() == '.') s.pop_back();
  return s == "-0" ? "0" : s;
}

inline std::string xml_escaped(std::string_view text) {
  std::string out;
  for (const char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

}  // namespace detail

// [height, width, 3] RGB.
inline xt::xtensor<std::uint8_t, 3> rasterise(const drawing& d) {
  if (d.width <= 0 || d.height <= 0) throw error("figure", "cannot draw an empty figure");
  auto picture = xt::xtensor<std::uint8_t, 3>::from_shape(
      {static_cast<std::size_t>(d.height), static_cast<std::size_t>(d.width), 3});  // [H, W, 3]
  detail::fill_box(picture, 0, 0, d.width - 1, d.height - 1, d.background);
  for (const auto& s : d.shapes) {
    if (const auto* line = std::get_if<polyline>(&s)) {
      if (line->points.size() == 1) detail::thick_segment(picture, line->points[0], line->points[0], line->width, line->stroke);
      for (std::size_t i = 1; i < line->points.size(); ++i)
        detail::thick_segment(picture, line->points[i - 1], line->points[i], line->width, line->stroke);
    } else if (const auto* o = std::get_if<dot>(&s)) {
      io::draw_dot(picture, o->centre.x, o->centre.y, o->radius, o->fill);
    } else if (const auto* r = std::get_if<rectangle>(&s)) {
      const long x0 = std::lround(r->x), y0 = std::lround(r->y);
      const long x1 = std::lround(r->x + r->width) - 1, y1 = std::lround(r->y + r->height) - 1;
      if (r->fill) detail::fill_box(picture, x0, y0, x1, y1, *r->fill);
      if (r->stroke) {
        detail::fill_box(picture, x0, y0, x1, y0, *r->stroke);
        detail::fill_box(picture, x0, y1, x1, y1, *r->stroke);
        detail::fill_box(picture, x0, y0, x0, y1, *r->stroke);
        detail::fill_box(picture, x1, y0, x1, y1, *r->stroke);
      }
    } else if (const auto* t = std::get_if<label>(&s)) {
      draw_text(picture, t->at.x, t->at.y, t->text, t->fill, t->scale, t->anchor, t->vertical);
    }
  }
  return picture;
}

// The same figure as an SVG document (monospace text sized like the bitmap font).
inline std::string to_svg(const drawing& d) {
  using detail::hex;
  using detail::number;
  std::ostringstream s;
  s << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << d.width << "\" height=\"" << d.height
    << "\" viewBox=\"0 0 " << d.width << ' ' << d.height << "\">\n"
    << "<rect x=\"0\" y=\"0\" width=\"" << d.width << "\" height=\"" << d.height << "\" fill=\"" << hex(d.background)
    << "\"/>\n";
  for (const auto& shape : d.shapes) {
    if (const auto* line = std::get_if<polyline>(&shape)) {
      if (line->points.empty()) continue;
      s << "<polyline fill=\"none\" stroke=\"" << hex(line->stroke) << "\" stroke-width=\"" << number(line->width)
        << "\" stroke-linejoin=\"round\" stroke-linecap=\"round\" points=\"";
      for (std::size_t i = 0; i < line->points.size(); ++i)
        s << (i ? " " : "") << number(line->points[i].x) << ',' << number(line->points[i].y);
      s << "\"/>\n";
    } else if (const auto* o = std::get_if<dot>(&shape)) {
      s << "<circle cx=\"" << number(o->centre.x) << "\" cy=\"" << number(o->centre.y) << "\" r=\"" << number(o->radius)
        << "\" fill=\"" << hex(o->fill) << "\"/>\n";
    } else if (const auto* r = std::get_if<rectangle>(&shape)) {
      s << "<rect x=\"" << number(r->x) << "\" y=\"" << number(r->y) << "\" width=\"" << number(r->width)
        << "\" height=\"" << number(r->height) << "\" fill=\"" << (r->fill ? hex(*r->fill) : std::string("none")) << '"';
      if (r->stroke) s << " stroke=\"" << hex(*r->stroke) << "\" stroke-width=\"1\"";
      s << "/>\n";
    } else if (const auto* t = std::get_if<label>(&shape)) {
      const char* anchor = t->anchor == align::start ? "start" : t->anchor == align::middle ? "middle" : "end";
      // A monospace glyph is about 0.6 em wide: 10 px per scale matches the bitmap font's 6 px advance.
      s << "<text x=\"" << number(t->at.x) << "\" y=\"" << number(t->at.y)
        << "\" font-family=\"DejaVu Sans Mono, monospace\" font-size=\"" << number(10.0 * t->scale)
        << "\" text-anchor=\"" << anchor << "\" dominant-baseline=\"middle\" fill=\"" << hex(t->fill) << '"';
      if (t->vertical) s << " transform=\"rotate(-90 " << number(t->at.x) << ' ' << number(t->at.y) << ")\"";
      s << '>' << detail::xml_escaped(t->text) << "</text>\n";
    }
  }
  s << "</svg>\n";
  return s.str();
}

}  // namespace microcount::train::figure
