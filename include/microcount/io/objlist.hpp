#pragma once
// ExoDeepFinder / DeepFinder object lists, XML and CSV.
//   XML:  <objlist><object tomo_idx="0" class_label="2" x="106" y="128" z="0" [obj_id psi phi the cluster_size]/>
//   CSV:  tomo_idx,class_label,x,y,z   (ExoDeepFinder's documented CSV form; extra columns are ignored)
// DeepFinder indexes its arrays [z, y, x]: x is the column, y the row, and for ExoDeepFinder's TIRF movies
// z is the frame. tomo_idx says which movie (optional, 0 when absent, as DeepFinder treats it).
// Reading: class_label numbers become label names as strings ("1", "2"), ordered numerically; each
// tomo_idx becomes one image, ordered by index and named `names[idx]` or else "tomo_<idx>". z is rounded
// to the nearest frame, because DeepFinder's clustering writes centroids ("445.333").
// Writing: image "tomo_<k>" gets tomo_idx k, the others the smallest unused indices in their order;
// labels whose names are all whole numbers keep them as class_label, otherwise label i becomes class i + 1
// (DeepFinder reserves 0 for background) and the names are lost. A still image's points get z = 0.
//
// Event lists (one movie per file, post::event_object records, for the event pipeline):
//   read_event_list_xml / read_event_list_csv   class_label → label, z → frame (kept fractional: DeepFinder's
//       clustering writes centroids), cluster_size → size (0 when absent); a CSV may instead be a napari
//       points CSV with axes frame, y, x (detected by its header), whose points are all events (label 2).
//       Objects of several tomo_idx values are refused: they belong to different movies.
//   write_event_list_xml   <object tomo_idx="0" obj_id="k" class_label x y z cluster_size/> as DeepFinder's
//       objl.write_xml names them (no orientation: psi/phi/the mean nothing for a 2D+t movie)
//   write_event_list_csv   tomo_idx,obj_id,class_label,x,y,z,cluster_size
//   Numbers are written in the shortest form that reads back to the same double, so write → read is exact.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <span>
#include <string_view>
#include <vector>

#include <pugixml.hpp>

#include "microcount/core/error.hpp"
#include "microcount/io/annotation_common.hpp"
#include "microcount/io/annotations.hpp"
#include "microcount/io/atomic_file.hpp"
#include "microcount/io/csv.hpp"
#include "microcount/io/napari_csv.hpp"
#include "microcount/post/event_object.hpp"

namespace microcount::io {

// tomo_idx -> image name, for object lists whose movies have names.
using tomo_names = std::map<int, std::string>;

namespace objlist_detail {

struct object {
  int tomo = 0;
  int class_label = 0;
  double x = 0, y = 0;
  int frame = 0;
};

// Text fields of one object, checked and converted. `tomo` may be null (absent).
inline object to_object(const char* tomo, std::string_view cls, std::string_view x, std::string_view y,
                        std::string_view z, const std::string& where, std::size_t line) {
  object o;
  if (tomo) o.tomo = static_cast<int>(checked_whole(tomo, "tomo_idx", where, line));
  o.class_label = static_cast<int>(checked_whole(cls, "class_label", where, line));
  o.x = checked_coordinate(x, "x", where, line);
  o.y = checked_coordinate(y, "y", where, line);
  const double frame = checked_coordinate(z, "z", where, line);
  if (frame >= static_cast<double>(std::numeric_limits<int>::max()))
    throw error(where, line_prefix(line) + "z " + excerpt(z) + " is too large for a frame index");
  o.frame = static_cast<int>(std::lround(std::max(frame, 0.0)));
  return o;
}

inline annotations build(const std::vector<object>& objects, const tomo_names& names, const char* format) {
  annotations ann;
  ann.format = format;
  std::set<int> classes, tomos;
  for (const auto& o : objects) {
    classes.insert(o.class_label);
    tomos.insert(o.tomo);
  }
  std::map<int, int> label_of, image_of;
  for (int c : classes) label_of[c] = ann.label_index(std::to_string(c));
  for (int t : tomos) {
    image_of[t] = static_cast<int>(ann.images.size());
    auto it = names.find(t);
    ann.images.push_back(image_points{it != names.end() ? it->second : "tomo_" + std::to_string(t), 0, 0, 0, {}});
  }
  for (const auto& o : objects) {
    point p;
    p.x = o.x;
    p.y = o.y;
    p.frame = o.frame;
    p.label = label_of[o.class_label];
    ann.images[static_cast<std::size_t>(image_of[o.tomo])].points.push_back(p);
  }
  return ann;
}

// class_label for each label index.
inline std::vector<long long> class_numbers(const annotations& ann) {
  std::vector<long long> out;
  bool all_numeric = true;
  for (const auto& name : ann.labels) {
    const auto v = parse_number(name);
    if (!v || *v != std::floor(*v) || *v < 0 || *v > 2147483647.0 || std::to_string(static_cast<long long>(*v)) != name) {
      all_numeric = false;
      break;
    }
    out.push_back(static_cast<long long>(*v));
  }
  if (all_numeric) return out;
  out.clear();
  for (std::size_t i = 0; i < ann.labels.size(); ++i) out.push_back(static_cast<long long>(i) + 1);
  return out;
}

// tomo_idx for each image.
inline std::vector<long long> tomo_numbers(const annotations& ann) {
  std::vector<long long> out(ann.images.size(), -1);
  std::set<long long> used;
  for (std::size_t i = 0; i < ann.images.size(); ++i) {
    const std::string& n = ann.images[i].name;
    if (n.rfind("tomo_", 0) != 0) continue;
    const auto v = parse_number(std::string_view(n).substr(5));
    if (v && *v == std::floor(*v) && *v >= 0 && *v < 2147483647.0 &&
        std::to_string(static_cast<long long>(*v)) == n.substr(5) && used.insert(static_cast<long long>(*v)).second)
      out[i] = static_cast<long long>(*v);
  }
  long long next = 0;
  for (auto& t : out) {
    if (t >= 0) continue;
    while (used.count(next)) ++next;
    t = next;
    used.insert(next);
  }
  return out;
}

// Calls f(tomo, class, point) for every point, checking labels.
template <class F>
void for_each_object(const annotations& ann, F&& f) {
  const auto classes = class_numbers(ann);
  const auto tomos = tomo_numbers(ann);
  for (std::size_t i = 0; i < ann.images.size(); ++i)
    for (const auto& p : ann.images[i].points) {
      if (p.label < 0 || static_cast<std::size_t>(p.label) >= classes.size())
        throw error(ann.images[i].name, "point with label index " + std::to_string(p.label) + " that has no name");
      f(tomos[i], classes[static_cast<std::size_t>(p.label)], p);
    }
}

// One <object> element of object-list XML: its line and its attributes. The readers fetch the
// attributes themselves, so the order of their checks (and so which error a bad element gets) is theirs.
class xml_object {
 public:
  xml_object(pugi::xml_node element, std::size_t line, const std::string& where)
      : element_(element), line_(line), where_(where) {}
  [[nodiscard]] std::size_t line() const { return line_; }
  // The attribute's text, or null when the element has none.
  [[nodiscard]] const char* optional(const char* name) const {
    const pugi::xml_attribute a = element_.attribute(name);
    return a ? a.value() : nullptr;
  }
  // The attribute's text; its absence is an error naming the file and line.
  [[nodiscard]] const char* required(const char* name) const {
    const pugi::xml_attribute a = element_.attribute(name);
    if (!a) throw error(where_, line_prefix(line_) + "<object> has no '" + name + "' attribute");
    return a.value();
  }

 private:
  pugi::xml_node element_;
  std::size_t line_;
  const std::string& where_;
};

// The row walk of object-list XML, for object lists and event lists alike: checks the <objlist> root
// (`list_kind` names the expected list in that error), refuses other elements, counts every object
// against the point budget, and hands each to on_object(const xml_object&).
template <class F>
void for_each_xml_object(const std::string& text, const std::string& where, const char* list_kind, F&& on_object) {
  pugi::xml_document doc;
  load_xml(doc, text, where);
  const pugi::xml_node root = doc.document_element();
  if (std::string_view(root.name()) != "objlist")
    throw error(where, "root element is <" + std::string(root.name()) + ">, expected <objlist> (" + list_kind + ")");
  point_budget budget(where);
  const text_lines lines(text);
  for (const auto& el : root.children()) {
    if (el.type() != pugi::node_element) continue;
    const std::size_t line = lines.line_of(el);
    if (std::string_view(el.name()) != "object")
      throw error(where, line_prefix(line) + "<" + el.name() + "> where <object> was expected");
    budget.take();
    on_object(xml_object(el, line, where));
  }
}

// One data row of an object-list CSV, as text; `tomo` and `cluster_size` are null when the header
// has no such column.
struct csv_object {
  const char* tomo;
  std::string_view class_label, x, y, z;
  const char* cluster_size;
  std::size_t line;
};

// The row walk of an object-list CSV (after its header `head`, which is_objlist_header accepted), for
// object lists and event lists alike: checks every row's width, counts it against the point budget, and
// hands its fields to on_object(const csv_object&).
template <class F>
void for_each_csv_object(csv::tokenizer& tok, const csv::header& head, const std::string& where, F&& on_object) {
  const std::size_t cls = *head.find("class_label"), x = *head.find("x"), y = *head.find("y"), z = *head.find("z");
  const std::optional<std::size_t> tomo = head.find("tomo_idx"), size = head.find("cluster_size");
  point_budget budget(where);
  csv::row r;
  while (tok.next(r)) {
    head.require_width(r, where);
    budget.take();
    on_object(csv_object{tomo ? r.fields[*tomo].c_str() : nullptr, r.fields[cls], r.fields[x], r.fields[y], r.fields[z],
                         size ? r.fields[*size].c_str() : nullptr, r.line});
  }
}

}  // namespace objlist_detail

// Parses object-list XML text; `where` names the file in errors.
inline annotations parse_objlist_xml(const std::string& text, const std::string& where, const tomo_names& names = {}) {
  std::vector<objlist_detail::object> objects;
  objlist_detail::for_each_xml_object(text, where, "DeepFinder object list", [&](const objlist_detail::xml_object& el) {
    objects.push_back(objlist_detail::to_object(el.optional("tomo_idx"), el.required("class_label"), el.required("x"),
                                                el.required("y"), el.required("z"), where, el.line()));
  });
  return objlist_detail::build(objects, names, "objlist_xml");
}

// True when a CSV header names the object-list columns.
inline bool is_objlist_header(const csv::header& h) {
  return h.find("class_label") && h.find("x") && h.find("y") && h.find("z");
}

// Parses object-list CSV text; `where` names the file in errors.
inline annotations parse_objlist_csv(std::string_view text, const std::string& where, const tomo_names& names = {}) {
  csv::tokenizer tok(text, where);
  const csv::header head = csv::read_header(tok);
  if (!is_objlist_header(head))
    throw error(where, "not an object-list CSV (expected a header with class_label, x, y, z)");
  std::vector<objlist_detail::object> objects;
  objlist_detail::for_each_csv_object(tok, head, where, [&](const objlist_detail::csv_object& row) {
    objects.push_back(objlist_detail::to_object(row.tomo, row.class_label, row.x, row.y, row.z, where, row.line));
  });
  return objlist_detail::build(objects, names, "objlist_csv");
}

inline annotations read_objlist_xml(const std::filesystem::path& path, const tomo_names& names = {}) {
  return parse_objlist_xml(read_text(path), path.string(), names);
}

inline annotations read_objlist_csv(const std::filesystem::path& path, const tomo_names& names = {}) {
  return parse_objlist_csv(read_text(path), path.string(), names);
}

// Object-list XML text, one <object tomo_idx class_label x y z/> per point.
inline std::string objlist_xml_text(const annotations& ann) {
  std::string out = "<objlist>\n";
  objlist_detail::for_each_object(ann, [&](long long tomo, long long cls, const point& p) {
    out += "  <object tomo_idx=\"" + std::to_string(tomo) + "\" class_label=\"" + std::to_string(cls) + "\" x=\"" +
           format_number(p.x) + "\" y=\"" + format_number(p.y) + "\" z=\"" + std::to_string(std::max(p.frame, 0)) +
           "\"/>\n";
  });
  out += "</objlist>\n";
  return out;
}

// Object-list CSV text with the header tomo_idx,class_label,x,y,z.
inline std::string objlist_csv_text(const annotations& ann) {
  std::string out = "tomo_idx,class_label,x,y,z\n";
  objlist_detail::for_each_object(ann, [&](long long tomo, long long cls, const point& p) {
    out += std::to_string(tomo) + ',' + std::to_string(cls) + ',' + format_number(p.x) + ',' + format_number(p.y) +
           ',' + std::to_string(std::max(p.frame, 0)) + '\n';
  });
  return out;
}

inline void write_objlist_xml(const std::filesystem::path& path, const annotations& ann) {
  write_text_atomically(path, objlist_xml_text(ann));
}

inline void write_objlist_csv(const std::filesystem::path& path, const annotations& ann) {
  write_text_atomically(path, objlist_csv_text(ann));
}

// ---- event lists (one movie, post::event_object) -------------------------------------------------

namespace objlist_detail {

// Checks that every object of an event list belongs to one movie (one tomo_idx value).
class single_tomo {
 public:
  explicit single_tomo(const std::string& where) : where_(where) {}
  void see(const char* tomo, std::size_t line) {
    if (!tomo) return;
    const auto t = checked_whole(tomo, "tomo_idx", where_, line);
    if (!first_) first_ = t;
    else if (*first_ != t)
      throw error(where_, line_prefix(line) + "tomo_idx " + std::to_string(t) + " after tomo_idx " + std::to_string(*first_) +
                              ": an event list holds the objects of one movie");
  }

 private:
  const std::string& where_;
  std::optional<std::int64_t> first_;
};

inline post::event_object to_event(std::string_view cls, std::string_view x, std::string_view y, std::string_view z,
                                   const char* cluster_size, const std::string& where, std::size_t line) {
  post::event_object o;
  o.label = static_cast<int>(checked_whole(cls, "class_label", where, line));
  o.x = checked_coordinate(x, "x", where, line);
  o.y = checked_coordinate(y, "y", where, line);
  o.frame = checked_coordinate(z, "z", where, line);
  if (cluster_size && *cluster_size)
    o.size = static_cast<std::size_t>(checked_whole(cluster_size, "cluster_size", where, line, 9.0e15));
  return o;
}

}  // namespace objlist_detail

// Parses object-list XML text as the event list of one movie; `where` names the file in errors.
inline std::vector<post::event_object> parse_event_list_xml(const std::string& text, const std::string& where) {
  std::vector<post::event_object> out;
  objlist_detail::single_tomo tomo(where);
  objlist_detail::for_each_xml_object(text, where, "ExoDeepFinder object list", [&](const objlist_detail::xml_object& el) {
    tomo.see(el.optional("tomo_idx"), el.line());
    out.push_back(objlist_detail::to_event(el.required("class_label"), el.required("x"), el.required("y"), el.required("z"),
                                           el.optional("cluster_size"), where, el.line()));
  });
  return out;
}

// Parses an object-list CSV (header with class_label, x, y, z) or a napari points CSV with three axes
// (frame, y, x; every point an event, label 2) as the event list of one movie.
inline std::vector<post::event_object> parse_event_list_csv(std::string_view text, const std::string& where) {
  csv::tokenizer tok(text, where);
  const csv::header head = csv::read_header(tok);
  std::vector<post::event_object> out;
  if (is_objlist_header(head)) {
    objlist_detail::single_tomo tomo(where);
    objlist_detail::for_each_csv_object(tok, head, where, [&](const objlist_detail::csv_object& row) {
      tomo.see(row.tomo, row.line);
      out.push_back(objlist_detail::to_event(row.class_label, row.x, row.y, row.z, row.cluster_size, where, row.line));
    });
    return out;
  }
  if (is_napari_header(head)) {
    const std::size_t axes = napari_detail::find_axes(head).count;
    if (axes != 3)
      throw error(where, "napari CSV with " + std::to_string(axes) +
                             " axes; a movie's points have 3 (axis-0 = frame, axis-1 = y, axis-2 = x)");
    const annotations ann = parse_napari_csv(text, where, where);
    const image_points& im = ann.images.at(0);
    for (const point& p : im.points) out.push_back(post::event_object{2, static_cast<double>(p.frame), p.y, p.x, 0});
    return out;
  }
  throw error(where, "neither an object-list CSV (class_label, x, y, z) nor a napari points CSV (index, axis-0, axis-1, axis-2)");
}

inline std::vector<post::event_object> read_event_list_xml(const std::filesystem::path& path) {
  return parse_event_list_xml(read_text(path), path.string());
}

inline std::vector<post::event_object> read_event_list_csv(const std::filesystem::path& path) {
  return parse_event_list_csv(read_text(path), path.string());
}

namespace objlist_detail {

inline void check_event(const post::event_object& o, std::size_t index) {
  if (o.label < 0) throw error("event list", "object " + std::to_string(index) + " has a negative class label");
  if (!std::isfinite(o.x) || !std::isfinite(o.y) || !std::isfinite(o.frame))
    throw error("event list", "object " + std::to_string(index) + " has a coordinate that is not finite");
}

}  // namespace objlist_detail

// ExoDeepFinder object-list XML text of one movie (tomo_idx 0, obj_id = position in the list).
inline std::string event_list_xml_text(std::span<const post::event_object> objects) {
  std::string out = "<objlist>\n";
  for (std::size_t i = 0; i < objects.size(); ++i) {
    const post::event_object& o = objects[i];
    objlist_detail::check_event(o, i);
    out += "  <object tomo_idx=\"0\" obj_id=\"" + std::to_string(i) + "\" class_label=\"" + std::to_string(o.label) +
           "\" x=\"" + format_number(o.x) + "\" y=\"" + format_number(o.y) + "\" z=\"" + format_number(o.frame) +
           "\" cluster_size=\"" + std::to_string(o.size) + "\"/>\n";
  }
  out += "</objlist>\n";
  return out;
}

// Object-list CSV text of one movie: tomo_idx,obj_id,class_label,x,y,z,cluster_size.
inline std::string event_list_csv_text(std::span<const post::event_object> objects) {
  std::string out = "tomo_idx,obj_id,class_label,x,y,z,cluster_size\n";
  for (std::size_t i = 0; i < objects.size(); ++i) {
    const post::event_object& o = objects[i];
    objlist_detail::check_event(o, i);
    out += "0," + std::to_string(i) + ',' + std::to_string(o.label) + ',' + format_number(o.x) + ',' + format_number(o.y) +
           ',' + format_number(o.frame) + ',' + std::to_string(o.size) + '\n';
  }
  return out;
}

inline void write_event_list_xml(const std::filesystem::path& path, std::span<const post::event_object> objects) {
  write_text_atomically(path, event_list_xml_text(objects));
}

inline void write_event_list_csv(const std::filesystem::path& path, std::span<const post::event_object> objects) {
  write_text_atomically(path, event_list_csv_text(objects));
}

}  // namespace microcount::io
