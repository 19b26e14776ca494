#pragma once
// Plain points CSV: one row per point, many images in one file.
//   image,x,y[,label][,frame][,channel]
// The header is required; columns are found by name (any order, case-insensitive), other columns are
// ignored. x = column, y = row. A missing or empty label gets `default_label`; a missing or empty
// frame/channel means none (-1). Images and labels are listed in order of first appearance.
// The writer always writes image,x,y,label and adds frame / channel when any point has one.
// An image without points has no row, so it does not survive a round trip through this format.
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "microcount/core/error.hpp"
#include "microcount/io/annotation_common.hpp"
#include "microcount/io/annotations.hpp"
#include "microcount/io/atomic_file.hpp"
#include "microcount/io/csv.hpp"

namespace microcount::io {

// True when a CSV header has the image, x and y columns of a plain points CSV.
inline bool is_points_csv_header(const csv::header& h) { return h.find("image") && h.find("x") && h.find("y"); }

inline annotations parse_points_csv(std::string_view text, const std::string& where,
                                    const std::string& default_label = "point") {
  csv::tokenizer tok(text, where);
  const csv::header head = csv::read_header(tok);
  if (!is_points_csv_header(head)) throw error(where, "not a points CSV (expected a header with image, x, y)");
  const std::size_t image_col = *head.find("image"), x_col = *head.find("x"), y_col = *head.find("y");
  const std::optional<std::size_t> label_col = head.find("label"), frame_col = head.find("frame"),
                                   channel_col = head.find("channel");
  annotations ann;
  ann.format = "points_csv";
  std::unordered_map<std::string, std::size_t> image_of;
  point_budget budget(where);
  csv::row r;
  while (tok.next(r)) {
    head.require_width(r, where);
    const std::string& name = r.fields[image_col];
    if (name.empty()) throw error(where, line_prefix(r.line) + "empty image name");
    budget.take();
    point p;
    p.x = checked_coordinate(r.fields[x_col], "x", where, r.line);
    p.y = checked_coordinate(r.fields[y_col], "y", where, r.line);
    const std::string& label = label_col ? r.fields[*label_col] : default_label;
    p.label = ann.label_index(label.empty() ? default_label : label);
    if (frame_col && !r.fields[*frame_col].empty())
      p.frame = static_cast<int>(checked_whole(r.fields[*frame_col], "frame", where, r.line));
    if (channel_col && !r.fields[*channel_col].empty())
      p.channel = static_cast<int>(checked_whole(r.fields[*channel_col], "channel", where, r.line));
    auto [it, added] = image_of.try_emplace(name, ann.images.size());
    if (added) ann.images.push_back(image_points{name, 0, 0, 0, {}});
    ann.images[it->second].points.push_back(p);
  }
  return ann;
}

inline annotations read_points_csv(const std::filesystem::path& path, const std::string& default_label = "point") {
  return parse_points_csv(read_text(path), path.string(), default_label);
}

inline std::string points_csv_text(const annotations& ann) {
  bool frames = false, channels = false;
  for (const auto& im : ann.images)
    for (const auto& p : im.points) {
      frames = frames || p.frame >= 0;
      channels = channels || p.channel >= 0;
    }
  std::string out = "image,x,y,label";
  if (frames) out += ",frame";
  if (channels) out += ",channel";
  out += '\n';
  for (const auto& im : ann.images) {
    const std::string name = csv::quoted(im.name);
    for (const auto& p : im.points) {
      if (p.label < 0 || static_cast<std::size_t>(p.label) >= ann.labels.size())
        throw error(im.name, "point with label index " + std::to_string(p.label) + " that has no name");
      out += name + ',' + format_number(p.x) + ',' + format_number(p.y) + ',' +
             csv::quoted(ann.labels[static_cast<std::size_t>(p.label)]);
      if (frames) out += ',' + (p.frame >= 0 ? std::to_string(p.frame) : std::string());
      if (channels) out += ',' + (p.channel >= 0 ? std::to_string(p.channel) : std::string());
      out += '\n';
    }
  }
  return out;
}

inline void write_points_csv(const std::filesystem::path& path, const annotations& ann) {
  write_text_atomically(path, points_csv_text(ann));
}

}  // namespace microcount::io
