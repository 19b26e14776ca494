#pragma once
// What every annotation reader and writer shares: strict number parsing and shortest round-trip
// formatting, the point checks every reader applies (finite, not left of / above the image, within
// limits().max_points), XML loading with line numbers in errors, merging two annotation sets, and
// validate(), which lists problems a file can have without being unreadable (points outside the
// image's stated size, frames past the movie's end).
//
// Pixel convention (see annotations.hpp): the centre of pixel (row r, column c) is (x = c, y = r), so
// pixel c covers [c - 0.5, c + 0.5). A coordinate below -0.5 lies left of (or above) every pixel; the
// readers refuse it. A coordinate past the right or bottom edge is only known to be wrong when the file
// states the image size, so readers keep it and validate() reports it.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <pugixml.hpp>

#include "microcount/core/error.hpp"
#include "microcount/core/limits.hpp"
#include "microcount/io/annotations.hpp"

namespace microcount::io {

// ---- numbers -----------------------------------------------------------------------------------

// Parses a decimal number (surrounding blanks and a leading '+' allowed). nullopt when the text is not
// a number, has trailing characters, or is NaN / infinite.
inline std::optional<double> parse_number(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  if (!text.empty() && text.front() == '+') text.remove_prefix(1);
  if (text.empty()) return std::nullopt;
  double v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || !std::isfinite(v)) return std::nullopt;
  return v;
}

// The fewest digits that read back to exactly the same double ("27", "868.3638615643927").
inline std::string format_number(double v) {
  char buf[64];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  if (ec != std::errc()) throw error("format_number", "cannot format a number");
  return std::string(buf, end);
}

// A short, single-line excerpt of untrusted text for an error message.
inline std::string excerpt(std::string_view text, std::size_t max_chars = 40) {
  std::string out;
  for (char c : text.substr(0, max_chars)) out += (static_cast<unsigned char>(c) < 0x20 ? ' ' : c);
  if (text.size() > max_chars) out += "...";
  return out;
}

// ---- where a problem is ------------------------------------------------------------------------

// Line numbers of byte offsets in a text, found by binary search over the line starts (built once,
// so asking for every element's line of a large file stays linear overall).
class text_lines {
 public:
  explicit text_lines(std::string_view text) {
    for (std::size_t i = 0; i < text.size(); ++i)
      if (text[i] == '\n') newlines_.push_back(i);
  }
  // 1-based line of byte `offset`; 0 when the offset is unknown (negative).
  [[nodiscard]] std::size_t line_of(std::ptrdiff_t offset) const {
    if (offset < 0) return 0;
    return 1 + static_cast<std::size_t>(std::lower_bound(newlines_.begin(), newlines_.end(),
                                                         static_cast<std::size_t>(offset)) - newlines_.begin());
  }
  [[nodiscard]] std::size_t line_of(const pugi::xml_node& node) const { return line_of(node.offset_debug()); }

 private:
  std::vector<std::size_t> newlines_;  // byte offsets of '\n'
};

// "line 12: " or "" when the line is unknown.
inline std::string line_prefix(std::size_t line) {
  return line == 0 ? std::string() : "line " + std::to_string(line) + ": ";
}

// ---- checks every reader applies ------------------------------------------------------------------

// A coordinate read from a file: a finite number not left of / above pixel 0.
// `what` names it in the message ("x", "axis-1", ...).
inline double checked_coordinate(std::string_view text, std::string_view what, const std::string& where,
                                 std::size_t line) {
  const auto v = parse_number(text);
  if (!v)
    throw error(where, line_prefix(line) + std::string(what) + " '" + excerpt(text) + "' is not a finite number");
  if (*v < -0.5)
    throw error(where, line_prefix(line) + std::string(what) + " " + excerpt(text) +
                           " is negative (left of or above the first pixel)");
  return *v;
}

// A whole number in [0, max_value] read from a file (frame, width, class label, ...). Values written as
// floats ("30.0") are accepted when they are whole.
inline std::int64_t checked_whole(std::string_view text, std::string_view what, const std::string& where,
                                  std::size_t line,
                                  double max_value = static_cast<double>(std::numeric_limits<int>::max())) {
  const auto v = parse_number(text);
  if (!v || *v != std::floor(*v) || *v < 0 || *v > max_value)
    throw error(where, line_prefix(line) + std::string(what) + " '" + excerpt(text) +
                           "' is not a whole number between 0 and " + format_number(max_value));
  return static_cast<std::int64_t>(*v);
}

// Counts the points a reader keeps against limits().max_points, so a huge or hostile file fails early.
class point_budget {
 public:
  explicit point_budget(std::string where) : where_(std::move(where)) {}
  void take(std::size_t n = 1) {
    used_ += n;
    if (used_ > limits().max_points)
      throw error(where_, "more than " + std::to_string(limits().max_points) +
                              " points (limits().max_points); refusing to read further");
  }

 private:
  std::string where_;
  std::uint64_t used_ = 0;
};

// ---- XML ---------------------------------------------------------------------------------------

// Parses `text` into `doc`; a syntax error becomes "file: line N: XML error: ...".
// pugixml never expands entities other than the five predefined ones and character references, and
// does not fetch external ones, so a DOCTYPE "billion laughs" stays a few bytes of literal text.
inline void load_xml(pugi::xml_document& doc, const std::string& text, const std::string& where) {
  const pugi::xml_parse_result r =
      doc.load_buffer(text.data(), text.size(), pugi::parse_default, pugi::encoding_utf8);
  if (!r)
    throw error(where, line_prefix(text_lines(text).line_of(r.offset)) + "XML error: " + r.description());
}

// ---- combining and checking ----------------------------------------------------------------------

// Appends `src` to `dst`: labels are matched by name (new ones appended), images appended (an image
// name present in both is an error naming `where`), skipped-shape counts summed. dst.format is kept.
inline void merge_into(annotations& dst, annotations src, const std::string& where) {
  std::vector<int> remap(src.labels.size());
  for (std::size_t i = 0; i < src.labels.size(); ++i) remap[i] = dst.label_index(src.labels[i]);
  std::unordered_set<std::string> present;
  for (const auto& im : dst.images) present.insert(im.name);
  for (auto& im : src.images) {
    if (!present.insert(im.name).second)
      throw error(where, "image '" + excerpt(im.name, 200) + "' is annotated more than once");
    for (auto& p : im.points)
      if (p.label >= 0 && static_cast<std::size_t>(p.label) < remap.size()) p.label = remap[p.label];
    dst.images.push_back(std::move(im));
  }
  dst.skipped_shapes += src.skipped_shapes;
  for (const auto& [kind, n] : src.skipped_by_kind) dst.skipped_by_kind[kind] += n;
  if (dst.format.empty()) dst.format = src.format;
}

// Problems that leave the annotations readable but probably wrong, one human-readable line each:
// points outside the image's stated width/height or past its stated frame count, label indices with
// no name, non-finite coordinates (only possible when built in code), duplicate image names.
// An empty list means nothing was found. Readers never call it; the program prints its findings.
inline std::vector<std::string> validate(const annotations& ann) {
  std::vector<std::string> problems;
  std::unordered_map<std::string, int> seen;
  for (const auto& im : ann.images) {
    if (++seen[im.name] == 2) problems.push_back("image '" + im.name + "' appears more than once");
    for (std::size_t i = 0; i < im.points.size(); ++i) {
      const point& p = im.points[i];
      const auto at = [&] {  // built only for a problem: most points have none
        return im.name + " point " + std::to_string(i) + " (x " + format_number(p.x) + ", y " + format_number(p.y) +
               (p.frame >= 0 ? ", frame " + std::to_string(p.frame) : "") + ")";
      };
      if (!std::isfinite(p.x) || !std::isfinite(p.y)) {
        problems.push_back(at() + ": coordinate is not finite");
        continue;
      }
      if (p.label < 0 || static_cast<std::size_t>(p.label) >= ann.labels.size())
        problems.push_back(at() + ": label index " + std::to_string(p.label) + " has no name");
      // Pixel c covers [c - 0.5, c + 0.5): inside means -0.5 <= x < width - 0.5.
      const bool left = p.x < -0.5 || p.y < -0.5;
      const bool right = im.width > 0 && p.x >= static_cast<double>(im.width) - 0.5;
      const bool below = im.height > 0 && p.y >= static_cast<double>(im.height) - 0.5;
      if (left || right || below)
        problems.push_back(at() + ": outside the " + std::to_string(im.width) + "x" + std::to_string(im.height) +
                           " image");
      if (im.frames > 0 && p.frame >= im.frames)
        problems.push_back(at() + ": frame past the last of " + std::to_string(im.frames) + " frames");
      if (p.frame < -1) problems.push_back(at() + ": negative frame");
    }
  }
  return problems;
}

}  // namespace microcount::io
