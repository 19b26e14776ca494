#pragma once
// napari points-layer CSV (what napari's "Save layer" writes for a Points layer): one file per image,
//   index,axis-0,axis-1[,axis-2[,axis-3]][,property...]
// Axes follow napari's order (slowest first) over microcount's image layout [F, C, H, W]:
//   2 axes: y (row), x (column)                       — a still image
//   3 axes: frame, y, x                               — a movie (2D + t)
//   4 axes: frame, channel, y, x                      — a [F, C, H, W] stack opened without channel_axis
// The frame and channel axes must hold whole numbers (napari writes "30.0"; 30.5 is an error).
// Property columns after the axes: a column named "label" gives the point's label; without one, the
// first property column does; without any, every point gets `default_label`. An empty label cell also
// gets `default_label`. The index column is not used (napari renumbers on load).
#include <algorithm>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "microcount/core/error.hpp"
#include "microcount/io/annotation_common.hpp"
#include "microcount/io/annotations.hpp"
#include "microcount/io/atomic_file.hpp"
#include "microcount/io/csv.hpp"

namespace microcount::io {

struct napari_options {
  std::string default_label = "point";  // label of points without a label cell / column
  std::string label_column;             // property column holding the label; "" = "label", else the first property
};

namespace napari_detail {

// Where the axis columns are: napari writes "index" first; files cut down by hand may start at axis-0.
struct axis_columns {
  std::size_t first = 0;  // column of axis-0
  std::size_t count = 0;  // consecutive axis-K columns; 0 when the header is not napari's
};

inline axis_columns find_axes(const csv::header& h) {
  axis_columns a;
  a.first = !h.names().empty() && h.names()[0] == "index" ? 1 : 0;
  while (a.first + a.count < h.size() && h.names()[a.first + a.count] == "axis-" + std::to_string(a.count)) ++a.count;
  return a;
}

}  // namespace napari_detail

// True when the header row is a napari points CSV header (at least axis-0 and axis-1).
inline bool is_napari_header(const csv::header& h) { return napari_detail::find_axes(h).count >= 2; }

// Parses napari CSV text into the points of one image called `image_name`. `where` names the file.
inline annotations parse_napari_csv(std::string_view text, const std::string& where, const std::string& image_name,
                                    const napari_options& options = {}) {
  csv::tokenizer tok(text, where);
  const csv::header head = csv::read_header(tok);
  const auto [axis0, axes] = napari_detail::find_axes(head);
  if (axes < 2)
    throw error(where, "not a napari points CSV (expected a header 'index,axis-0,axis-1[,...]')");
  if (axes > 4) throw error(where, std::to_string(axes) + " axes; napari points with 2, 3 or 4 axes are supported");
  const std::size_t first_property = axis0 + axes;
  std::optional<std::size_t> label_col;
  if (!options.label_column.empty()) {
    label_col = head.find(options.label_column);
    if (!label_col) throw error(where, "no column named '" + options.label_column + "'");
  } else if (auto l = head.find("label"); l && *l >= first_property) {
    label_col = l;
  } else if (head.size() > first_property) {
    label_col = first_property;
  }

  annotations ann;
  ann.format = "napari_csv";
  if (!label_col) ann.label_index(options.default_label);
  image_points im;
  im.name = image_name;
  point_budget budget(where);
  const std::size_t y_col = axis0 + axes - 2, x_col = axis0 + axes - 1;  // the last two axes
  csv::row r;
  while (tok.next(r)) {
    head.require_width(r, where);
    budget.take();
    point p;
    p.y = checked_coordinate(r.fields[y_col], head.names()[y_col], where, r.line);
    p.x = checked_coordinate(r.fields[x_col], head.names()[x_col], where, r.line);
    if (axes >= 3) p.frame = static_cast<int>(checked_whole(r.fields[axis0], "axis-0 (frame)", where, r.line));
    if (axes == 4) p.channel = static_cast<int>(checked_whole(r.fields[axis0 + 1], "axis-1 (channel)", where, r.line));
    const std::string& cell = label_col ? r.fields[*label_col] : options.default_label;
    p.label = ann.label_index(cell.empty() ? options.default_label : cell);
    im.points.push_back(p);
  }
  ann.images.push_back(std::move(im));
  return ann;
}

// Reads one napari points CSV as the points of `image_name`.
inline annotations read_napari_csv(const std::filesystem::path& path, const std::string& image_name,
                                   const napari_options& options = {}) {
  return parse_napari_csv(read_text(path), path.string(), image_name, options);
}

// napari CSV text for one image of `ann`. Axes: 4 when any point names a channel, 3 when the image is a
// movie (a point carries a frame, or frames > 0), else 2. A `label` column is written unless every label
// is `default_label` (so a plain napari file reads back into the same file). In a 4-axis file a still
// image's points go to frame 0.
inline std::string napari_csv_text(const annotations& ann, const image_points& im, const napari_options& options = {}) {
  const bool has_channel = std::any_of(im.points.begin(), im.points.end(), [](const point& p) { return p.channel >= 0; });
  const bool has_frame = im.frames > 0 || std::any_of(im.points.begin(), im.points.end(), [](const point& p) { return p.frame >= 0; });
  const std::size_t axes = has_channel ? 4 : has_frame ? 3 : 2;
  const bool write_label = !(ann.labels.empty() || (ann.labels.size() == 1 && ann.labels[0] == options.default_label));
  std::string out = "index";
  for (std::size_t a = 0; a < axes; ++a) out += ",axis-" + std::to_string(a);
  if (write_label) out += ",label";
  out += '\n';
  for (std::size_t i = 0; i < im.points.size(); ++i) {
    const point& p = im.points[i];
    if (p.label < 0 || static_cast<std::size_t>(p.label) >= ann.labels.size())
      throw error(im.name, "point " + std::to_string(i) + " has label index " + std::to_string(p.label) + " with no name");
    out += std::to_string(i);
    if (axes >= 3) {
      if (p.frame < 0 && axes == 3) throw error(im.name, "point " + std::to_string(i) + " of a movie has no frame");
      out += ',' + std::to_string(std::max(p.frame, 0));
    }
    if (axes == 4) {
      if (p.channel < 0) throw error(im.name, "point " + std::to_string(i) + " has no channel while others do");
      out += ',' + std::to_string(p.channel);
    }
    out += ',' + format_number(p.y) + ',' + format_number(p.x);
    if (write_label) out += ',' + csv::quoted(ann.labels[static_cast<std::size_t>(p.label)]);
    out += '\n';
  }
  return out;
}

// Writes the points of image `im` (one of ann.images) to `path`.
inline void write_napari_csv(const std::filesystem::path& path, const annotations& ann, const image_points& im,
                             const napari_options& options = {}) {
  write_text_atomically(path, napari_csv_text(ann, im, options));
}

// The CSV file name for an image inside an output folder: its name with the extension replaced by
// ".csv" ("Train/img0.jpg" -> "Train/img0.csv"). Names that would leave the folder are refused.
inline std::filesystem::path napari_csv_name(const std::string& image_name) {
  const std::filesystem::path rel(image_name);
  if (image_name.empty() || rel.is_absolute() || rel.has_root_name())
    throw error(image_name, "image name cannot be turned into a file inside the output folder");
  for (const auto& part : rel)
    if (part == "..") throw error(image_name, "image name leads outside the output folder");
  return std::filesystem::path(rel).replace_extension(".csv");
}

// One napari CSV per image inside `folder` (created when missing), each written atomically.
inline void write_napari_csv_folder(const std::filesystem::path& folder, const annotations& ann,
                                    const napari_options& options = {}) {
  for (const auto& im : ann.images) write_napari_csv(folder / napari_csv_name(im.name), ann, im, options);
}

}  // namespace microcount::io
