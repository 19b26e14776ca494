#pragma once
// CVAT XML exports: "CVAT for Images 1.1" and "CVAT for Video 1.1" (told apart by their <image> or
// <track> elements), read into and written from io::annotations. docs/formats.md has the details.
//
// Images 1.1:   <annotations><meta><task|project|job><labels><label><name>cell</name>...
//               <image id="0" name="a.tif" width="256" height="256" [subset="Train"]>
//                 <points label="cell" points="x,y;x,y;..."/>  <box .../> <polygon .../> ...
// Every x,y pair of a <points> element is one point. Other shapes (box, polygon, polyline, ellipse,
// mask, cuboid, skeleton, tag, ...) are skipped and counted by element name in skipped_by_kind.
// Label order follows the <meta> label list (labels with no points included; skeleton sub-labels, which
// carry a <parent>, are left out), then labels met only on shapes, in order of appearance.
// A project export repeats an image name once per subset: such images are named "<subset>/<name>".
//
// Video 1.1:    <track id="1" label="cell"><points frame="10" outside="0" keyframe="1" points="x,y"/>...
// The whole video is ONE image_points (named by <meta><source>, else the task name, else the file stem;
// width/height from <original_size>; frames = stop_frame + 1). Each <points> element of a track that is
// not `outside` gives its pairs as points with point::frame = the element's frame number (CVAT's absolute
// frame index; interpolated, non-key frames that CVAT exports count like key frames).
// Shapes of other kinds inside tracks are counted, once per frame element that is not `outside`.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include <pugixml.hpp>

#include "microcount/core/error.hpp"
#include "microcount/core/limits.hpp"
#include "microcount/io/annotation_common.hpp"
#include "microcount/io/annotations.hpp"
#include "microcount/io/atomic_file.hpp"

namespace microcount::io {

namespace cvat_detail {

// Appends the pairs of a CVAT points attribute "x,y;x,y;..." to `out`.
inline void parse_pairs(std::string_view attr, int label, int frame, std::vector<point>& out, point_budget& budget,
                        const std::string& where, std::size_t line) {
  if (attr.find_first_not_of(" \t\r\n") == std::string_view::npos)
    throw error(where, line_prefix(line) + "empty points attribute");
  std::size_t start = 0;
  for (;;) {
    const std::size_t semi = attr.find(';', start);
    std::string_view pair = attr.substr(start, semi == std::string_view::npos ? attr.npos : semi - start);
    const std::size_t comma = pair.find(',');
    if (comma == std::string_view::npos || pair.find(',', comma + 1) != std::string_view::npos)
      throw error(where, line_prefix(line) + "points '" + excerpt(pair) + "' is not an x,y pair");
    budget.take();
    point p;
    p.x = checked_coordinate(pair.substr(0, comma), "x", where, line);
    p.y = checked_coordinate(pair.substr(comma + 1), "y", where, line);
    p.label = label;
    p.frame = frame;
    out.push_back(p);
    if (semi == std::string_view::npos) break;
    start = semi + 1;
  }
}

inline bool is_true(const pugi::xml_attribute& a) {
  const std::string_view v = a.as_string();
  return v == "1" || v == "true" || v == "True";
}

// The element holding the task/project/job description inside <meta>, or an empty node.
inline pugi::xml_node meta_owner(const pugi::xml_node& root) {
  const pugi::xml_node meta = root.child("meta");
  for (const char* kind : {"task", "project", "job"})
    if (auto n = meta.child(kind)) return n;
  return {};
}

// Labels of the <meta> list, in order, into ann.labels.
inline void read_meta_labels(const pugi::xml_node& root, annotations& ann, const std::string& where,
                             const text_lines& text) {
  const pugi::xml_node owner = meta_owner(root);
  for (const auto& label : owner.child("labels").children("label")) {
    const pugi::xml_node name = label.child("name");
    if (!name) throw error(where, line_prefix(text.line_of(label)) + "<label> without <name>");
    if (!std::string_view(label.child_value("parent")).empty()) continue;  // skeleton sub-label
    ann.label_index(name.child_value());
  }
}

inline std::int64_t optional_size(const pugi::xml_node& n, const char* attr, const std::string& where,
                                  std::size_t line) {
  const pugi::xml_attribute a = n.attribute(attr);
  if (!a) return 0;
  return checked_whole(a.as_string(), attr, where, line, static_cast<double>(limits().max_image_side));
}

inline pugi::xml_attribute required(const pugi::xml_node& n, const char* attr, const std::string& where,
                                    const text_lines& text) {
  const pugi::xml_attribute a = n.attribute(attr);
  if (!a)
    throw error(where, line_prefix(text.line_of(n)) + "<" + n.name() + "> has no '" + attr + "' attribute");
  return a;
}

inline void read_images(const pugi::xml_node& root, annotations& ann, const std::string& where,
                        const text_lines& text, point_budget& budget) {
  std::unordered_set<std::string> names;
  for (const auto& el : root.children("image")) {
    const std::size_t line = text.line_of(el);
    std::string name = required(el, "name", where, text).as_string();
    if (name.empty()) throw error(where, line_prefix(line) + "<image> with an empty name");
    if (const auto subset = el.attribute("subset"); subset && *subset.as_string())
      name = std::string(subset.as_string()) + "/" + name;
    if (!names.insert(name).second) throw error(where, line_prefix(line) + "image '" + excerpt(name, 200) + "' appears twice");
    image_points im;
    im.name = std::move(name);
    im.width = optional_size(el, "width", where, line);
    im.height = optional_size(el, "height", where, line);
    for (const auto& shape : el.children()) {
      if (shape.type() != pugi::node_element) continue;
      if (std::string_view(shape.name()) != "points") {
        ++ann.skipped_shapes;
        ++ann.skipped_by_kind[shape.name()];
        continue;
      }
      const int label = ann.label_index(required(shape, "label", where, text).as_string());
      parse_pairs(required(shape, "points", where, text).as_string(), label, -1, im.points, budget, where,
                  text.line_of(shape));
    }
    ann.images.push_back(std::move(im));
  }
}

inline void read_video(const pugi::xml_node& root, annotations& ann, const std::string& where,
                       const text_lines& text, const std::string& fallback_name, point_budget& budget) {
  const pugi::xml_node owner = meta_owner(root);
  image_points movie;
  movie.name = root.child("meta").child_value("source");
  if (movie.name.empty()) movie.name = owner.child_value("name");
  if (movie.name.empty()) movie.name = fallback_name;
  const pugi::xml_node size = owner.child("original_size");
  const auto max_side = static_cast<double>(limits().max_image_side);
  if (const char* w = size.child_value("width"); *w)
    movie.width = checked_whole(w, "original_size width", where, text.line_of(size), max_side);
  if (const char* h = size.child_value("height"); *h)
    movie.height = checked_whole(h, "original_size height", where, text.line_of(size), max_side);
  if (const char* stop = owner.child_value("stop_frame"); *stop)
    movie.frames = checked_whole(stop, "stop_frame", where, text.line_of(owner)) + 1;
  else if (const char* n = owner.child_value("size"); *n)
    movie.frames = checked_whole(n, "size", where, text.line_of(owner));

  for (const auto& track : root.children("track")) {
    const int label = ann.label_index(required(track, "label", where, text).as_string());
    for (const auto& shape : track.children()) {
      if (shape.type() != pugi::node_element) continue;
      const std::size_t line = text.line_of(shape);
      const auto frame = static_cast<int>(
          checked_whole(required(shape, "frame", where, text).as_string(), "frame", where, line));
      if (is_true(shape.attribute("outside"))) continue;  // the object has left the view at this frame
      if (std::string_view(shape.name()) != "points") {
        ++ann.skipped_shapes;
        ++ann.skipped_by_kind[shape.name()];
        continue;
      }
      parse_pairs(required(shape, "points", where, text).as_string(), label, frame, movie.points, budget, where,
                  line);
    }
  }
  ann.images.push_back(std::move(movie));
}

// pugixml output into a string.
struct string_writer final : pugi::xml_writer {
  std::string text;
  void write(const void* data, std::size_t size) override { text.append(static_cast<const char*>(data), size); }
};

inline std::string to_text(pugi::xml_document& doc) {
  pugi::xml_node decl = doc.prepend_child(pugi::node_declaration);
  decl.append_attribute("version") = "1.0";
  decl.append_attribute("encoding") = "utf-8";
  string_writer w;
  doc.save(w, "  ", pugi::format_indent, pugi::encoding_utf8);
  return std::move(w.text);
}

inline void append_meta(pugi::xml_node root, const annotations& ann, std::size_t size, const char* mode) {
  root.append_child("version").text() = "1.1";
  pugi::xml_node task = root.append_child("meta").append_child("task");
  task.append_child("name").text() = "microcount";
  task.append_child("size").text() = static_cast<unsigned long long>(size);
  task.append_child("mode").text() = mode;
  pugi::xml_node labels = task.append_child("labels");
  for (const auto& name : ann.labels) {
    pugi::xml_node l = labels.append_child("label");
    l.append_child("name").text() = name.c_str();
    l.append_child("type").text() = "points";
    l.append_child("attributes");
  }
}

inline std::string pair_text(const point& p) { return format_number(p.x) + "," + format_number(p.y); }

inline const std::string& label_name(const annotations& ann, const point& p, const std::string& image) {
  if (p.label < 0 || static_cast<std::size_t>(p.label) >= ann.labels.size())
    throw error(image, "point with label index " + std::to_string(p.label) + " that has no name");
  return ann.labels[static_cast<std::size_t>(p.label)];
}

inline bool is_movie(const image_points& im) {
  return im.frames > 0 || std::any_of(im.points.begin(), im.points.end(), [](const point& p) { return p.frame >= 0; });
}

// Frames a movie spans: the stated count, or enough to hold its last point.
inline std::int64_t movie_frames(const image_points& im) {
  std::int64_t n = im.frames;
  for (const auto& p : im.points) {
    if (p.frame < 0) throw error(im.name, "movie holds a point without a frame");
    n = std::max<std::int64_t>(n, p.frame + 1);
  }
  return n;
}

}  // namespace cvat_detail

// Parses CVAT XML text. `where` names the source in errors; `fallback_name` names a video whose <meta>
// gives no source or task name.
inline annotations parse_cvat_xml(const std::string& xml, const std::string& where,
                                  const std::string& fallback_name = "video") {
  pugi::xml_document doc;
  load_xml(doc, xml, where);
  const text_lines text(xml);
  const pugi::xml_node root = doc.document_element();
  if (std::string_view(root.name()) != "annotations")
    throw error(where, "root element is <" + std::string(root.name()) +
                           ">, expected <annotations> (CVAT for Images or Video 1.1)");
  const bool has_images = root.child("image");
  const bool has_tracks = root.child("track");
  if (has_images && has_tracks) throw error(where, "mixes <image> and <track> elements (neither CVAT images nor video)");
  annotations ann;
  ann.format = has_tracks ? "cvat_video" : "cvat_images";
  cvat_detail::read_meta_labels(root, ann, where, text);
  point_budget budget(where);
  if (has_tracks)
    cvat_detail::read_video(root, ann, where, text, fallback_name, budget);
  else
    cvat_detail::read_images(root, ann, where, text, budget);
  // Shapes outside <image>/<track> (e.g. video-level <tag>s) are skipped too.
  for (const auto& el : root.children()) {
    const std::string_view kind = el.name();
    if (el.type() != pugi::node_element || kind == "version" || kind == "meta" || kind == "image" || kind == "track")
      continue;
    ++ann.skipped_shapes;
    ++ann.skipped_by_kind[std::string(kind)];
  }
  return ann;
}

// Reads a CVAT for Images 1.1 or CVAT for Video 1.1 XML file.
inline annotations read_cvat_xml(const std::filesystem::path& path) {
  return parse_cvat_xml(read_text(path), path.string(), path.stem().string() + ".tif");
}

// CVAT for Images 1.1 text: one <points> element per point, every label in <meta>.
// A movie (an image whose points carry frames) becomes one <image> per frame, as CVAT exports a video
// task in the images format: named "frame_000010" (or "<movie stem>/frame_000010" when there are several
// images), so reading it back gives still images.
inline std::string cvat_images_xml(const annotations& ann) {
  using namespace cvat_detail;
  struct entry {
    std::string name;
    const image_points* source;
    int frame;  // -1: the whole still image
  };
  std::vector<entry> entries;
  for (const auto& im : ann.images) {
    if (!is_movie(im)) {
      entries.push_back({im.name, &im, -1});
      continue;
    }
    const std::string prefix =
        ann.images.size() == 1 ? "" : std::filesystem::path(im.name).replace_extension().generic_string() + "/";
    const std::int64_t frames = movie_frames(im);
    if (frames > static_cast<std::int64_t>(limits().max_pages)) throw error(im.name, "too many frames to write");
    for (int f = 0; f < frames; ++f) {
      char buf[32];
      std::snprintf(buf, sizeof buf, "frame_%06d", f);
      entries.push_back({prefix + buf, &im, f});
    }
  }
  pugi::xml_document doc;
  pugi::xml_node root = doc.append_child("annotations");
  append_meta(root, ann, entries.size(), "annotation");
  // Points of a movie grouped by frame, so each frame's <image> is written in one pass.
  std::map<const image_points*, std::map<int, std::vector<const point*>>> by_frame;
  for (const auto& im : ann.images)
    if (is_movie(im))
      for (const auto& p : im.points) by_frame[&im][p.frame].push_back(&p);
  std::size_t id = 0;
  for (const auto& e : entries) {
    pugi::xml_node el = root.append_child("image");
    el.append_attribute("id") = static_cast<unsigned long long>(id++);
    el.append_attribute("name") = e.name.c_str();
    if (e.source->width > 0) el.append_attribute("width") = static_cast<long long>(e.source->width);
    if (e.source->height > 0) el.append_attribute("height") = static_cast<long long>(e.source->height);
    std::vector<const point*> points;
    if (e.frame < 0) {
      for (const auto& p : e.source->points) points.push_back(&p);
    } else if (auto it = by_frame[e.source].find(e.frame); it != by_frame[e.source].end()) {
      points = it->second;
    }
    for (const point* p : points) {
      pugi::xml_node pe = el.append_child("points");
      pe.append_attribute("label") = label_name(ann, *p, e.source->name).c_str();
      pe.append_attribute("source") = "manual";
      pe.append_attribute("occluded") = "0";
      pe.append_attribute("points") = pair_text(*p).c_str();
      pe.append_attribute("z_order") = "0";
    }
  }
  return to_text(doc);
}

// CVAT for Video 1.1 text. The model keeps no track identity, so every point becomes its own track:
// a key frame at the point's frame, followed (unless it is the movie's last frame) by an `outside` key
// frame, because CVAT keeps a track visible after its last key frame. Input: one movie (points carry
// frames), or still images only, which become frames 0, 1, 2, ... in their order (as CVAT exports an
// image task in the video format).
inline std::string cvat_video_xml(const annotations& ann) {
  using namespace cvat_detail;
  const bool one_movie = ann.images.size() == 1 && is_movie(ann.images[0]);
  for (const auto& im : ann.images)
    if (!one_movie && is_movie(im))
      throw error(im.name, "CVAT video holds one movie; these annotations have " + std::to_string(ann.images.size()) +
                               " images, some of them movies");
  std::int64_t frames = one_movie ? movie_frames(ann.images[0]) : static_cast<std::int64_t>(ann.images.size());
  pugi::xml_document doc;
  pugi::xml_node root = doc.append_child("annotations");
  append_meta(root, ann, static_cast<std::size_t>(frames), "interpolation");
  pugi::xml_node task = root.child("meta").child("task");
  task.append_child("start_frame").text() = 0;
  task.append_child("stop_frame").text() = static_cast<long long>(std::max<std::int64_t>(frames, 1) - 1);
  std::int64_t width = 0, height = 0;
  for (const auto& im : ann.images) {
    width = std::max(width, im.width);
    height = std::max(height, im.height);
  }
  if (width > 0 && height > 0) {
    pugi::xml_node size = task.append_child("original_size");
    size.append_child("width").text() = static_cast<long long>(width);
    size.append_child("height").text() = static_cast<long long>(height);
  }
  if (one_movie) root.child("meta").append_child("source").text() = ann.images[0].name.c_str();
  std::size_t track_id = 0;
  for (std::size_t i = 0; i < ann.images.size(); ++i) {
    const image_points& im = ann.images[i];
    for (const auto& p : im.points) {
      const long long frame = one_movie ? p.frame : static_cast<long long>(i);
      pugi::xml_node track = root.append_child("track");
      track.append_attribute("id") = static_cast<unsigned long long>(track_id++);
      track.append_attribute("label") = label_name(ann, p, im.name).c_str();
      const auto key = [&](long long f, bool outside) {
        pugi::xml_node pe = track.append_child("points");
        pe.append_attribute("frame") = f;
        pe.append_attribute("outside") = outside ? "1" : "0";
        pe.append_attribute("occluded") = "0";
        pe.append_attribute("keyframe") = "1";
        pe.append_attribute("points") = pair_text(p).c_str();
        pe.append_attribute("z_order") = "0";
      };
      key(frame, false);
      if (frame + 1 < frames) key(frame + 1, true);
    }
  }
  return to_text(doc);
}

inline void write_cvat_images(const std::filesystem::path& path, const annotations& ann) {
  write_text_atomically(path, cvat_images_xml(ann));
}

inline void write_cvat_video(const std::filesystem::path& path, const annotations& ann) {
  write_text_atomically(path, cvat_video_xml(ann));
}

}  // namespace microcount::io
