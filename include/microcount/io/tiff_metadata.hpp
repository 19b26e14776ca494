#pragma once
// How the pages of a TIFF map onto [frames, channels]: ImageJ hyperstack text, OME-XML, tifffile's
// JSON "shaped" description, or plain (one page = one frame). Also the physical calibration these
// carry. No libtiff here: the functions take the description text and a few header numbers, so they
// are testable on their own. The rules are stated in docs/images.md.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>
#include <pugixml.hpp>

#include "microcount/io/image.hpp"

namespace microcount::io::detail {

// ---- units ---------------------------------------------------------------------------------

// Canonical spelling of a length unit: every way of writing micrometre (micron, µm, μm, um,
// ImageJ's escaped "\u00B5m") becomes "um"; other units are lower-cased and kept.
inline std::string normalize_length_unit(std::string_view raw) {
  std::string u(raw);
  while (!u.empty() && std::isspace(static_cast<unsigned char>(u.back()))) u.pop_back();
  while (!u.empty() && std::isspace(static_cast<unsigned char>(u.front()))) u.erase(u.begin());
  std::string lower;
  for (char ch : u) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (lower == "micron" || lower == "microns" || lower == "um" || lower == "\\u00b5m" || lower == "\\u03bcm" ||
      lower == "\xc2\xb5m" /* U+00B5 µ */ || lower == "\xce\xbcm" /* U+03BC μ */ || lower == "micrometer" ||
      lower == "micrometre")
    return "um";
  if (lower == "\\u00c5" || lower == "\xc3\x85" /* Å */ || lower == "angstrom") return "angstrom";
  if (lower == "inches") return "inch";
  return lower;
}

// Micrometres per `unit` (after normalize_length_unit), or nothing for an unknown unit.
inline std::optional<double> micrometres_per(std::string_view unit) {
  if (unit == "um") return 1.0;
  if (unit == "nm") return 1e-3;
  if (unit == "pm") return 1e-6;
  if (unit == "angstrom") return 1e-4;
  if (unit == "mm") return 1e3;
  if (unit == "cm") return 1e4;
  if (unit == "m") return 1e6;
  if (unit == "inch" || unit == "in") return 25400.0;
  return std::nullopt;
}

// Seconds per time `unit` ("s", "sec", "ms", "min", ...), or nothing for an unknown one.
inline std::optional<double> seconds_per(std::string_view raw) {
  std::string u;
  for (char ch : raw)
    if (!std::isspace(static_cast<unsigned char>(ch))) u += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (u.empty() || u == "s" || u == "sec" || u == "second" || u == "seconds") return 1.0;
  if (u == "ms" || u == "msec") return 1e-3;
  if (u == "us" || u == "\xc2\xb5s" || u == "\xce\xbcs" || u == "\\u00b5s" || u == "usec") return 1e-6;
  if (u == "ns") return 1e-9;
  if (u == "min") return 60.0;
  if (u == "h" || u == "hr" || u == "hour" || u == "hours") return 3600.0;
  return std::nullopt;
}

// Parses a whole string as a finite double (no trailing junk).
inline std::optional<double> parse_number(std::string_view text) {
  std::string s(text);
  try {
    std::size_t used = 0;
    const double v = std::stod(s, &used);
    while (used < s.size() && std::isspace(static_cast<unsigned char>(s[used]))) ++used;
    if (used != s.size() || !std::isfinite(v)) return std::nullopt;
    return v;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

inline std::optional<std::size_t> parse_count(std::string_view text) {
  const auto v = parse_number(text);
  if (!v || *v < 0 || *v != std::floor(*v) || *v > 1e15) return std::nullopt;
  return static_cast<std::size_t>(*v);
}

// ---- the page → [frame, channel-plane] map ---------------------------------------------------

// The result of interpreting a file's pages. A page holds `samples` channels (samples per pixel);
// `planes` pages make up one frame, so the image has planes × samples channels.
struct axis_layout {
  std::size_t frames = 0;
  std::size_t planes = 0;
  std::vector<std::uint32_t> page_of;  // [frames × planes]: IFD index of (frame, plane)
  bool contiguous = false;  // ImageJ > 4 GiB style: one IFD, page k's bytes follow page 0's at k × page size
  calibration calib;
  std::string origin;  // "ome", "imagej", "tifffile", "plain"; "plain (…)" says why metadata was ignored
};

// The TIFF resolution tags of the first page (pixels per unit).
struct resolution_tags {
  std::optional<double> x, y;
  std::uint16_t unit = 2;  // RESUNIT_INCH is the TIFF default
};

// Calibration from resolution tags alone: only when the unit is a real one (inch or centimetre),
// converted to micrometres. ResolutionUnit NONE (tifffile's default 1/1) means "not calibrated".
inline calibration calibration_from_resolution(const resolution_tags& res) {
  calibration c;
  if (!res.x || !res.y || *res.x <= 0 || *res.y <= 0) return c;
  double um_per_unit = 0;
  if (res.unit == 2) um_per_unit = 25400.0;       // RESUNIT_INCH
  else if (res.unit == 3) um_per_unit = 10000.0;  // RESUNIT_CENTIMETER
  else return c;
  c.pixel_size_x = um_per_unit / *res.x;
  c.pixel_size_y = um_per_unit / *res.y;
  c.unit = "um";
  return c;
}

inline axis_layout plain_layout(const std::vector<std::uint32_t>& image_pages, const resolution_tags& res,
                                std::string why_not_metadata = {}) {
  axis_layout l;
  l.frames = image_pages.size();
  l.planes = 1;
  l.page_of = image_pages;
  l.calib = calibration_from_resolution(res);
  l.origin = why_not_metadata.empty() ? "plain" : "plain (" + why_not_metadata + ")";
  return l;
}

// A layout attempt either succeeds or says why the metadata did not fit the file.
struct layout_attempt {
  std::optional<axis_layout> layout;
  std::string why_not;
};

// ---- ImageJ ----------------------------------------------------------------------------------

struct imagej_description {
  std::optional<std::size_t> images, channels, slices, frames;
  std::string unit;  // normalized
  std::optional<double> spacing, finterval;
  std::string tunit;
};

inline std::optional<imagej_description> parse_imagej(std::string_view text) {
  if (text.rfind("ImageJ=", 0) != 0) return std::nullopt;
  imagej_description d;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    const std::size_t eq = line.find('=');
    if (eq == std::string_view::npos) continue;
    const std::string_view key = line.substr(0, eq);
    std::string_view value = line.substr(eq + 1);
    if (!value.empty() && value.back() == '\r') value.remove_suffix(1);
    if (key == "images") d.images = parse_count(value);
    else if (key == "channels") d.channels = parse_count(value);
    else if (key == "slices") d.slices = parse_count(value);
    else if (key == "frames") d.frames = parse_count(value);
    else if (key == "unit") d.unit = normalize_length_unit(value);
    else if (key == "spacing") d.spacing = parse_number(value);
    else if (key == "finterval") d.finterval = parse_number(value);
    else if (key == "tunit") d.tunit = std::string(value);
  }
  return d;
}

// ImageJ stores planes in XYCZT order (channel fastest). Frames = slices × time points, z fastest.
// `image_pages` are the file's full-resolution IFDs.
inline layout_attempt imagej_layout(const imagej_description& d, const std::vector<std::uint32_t>& image_pages,
                                    const resolution_tags& res) {
  const std::size_t c = d.channels.value_or(1), z = d.slices.value_or(1), t = d.frames.value_or(1);
  if (c == 0 || z == 0 || t == 0) return {std::nullopt, "ImageJ metadata has a zero-sized axis"};
  std::size_t images = d.images.value_or(c * z * t);
  std::size_t zz = z;
  if (c * z * t != images) {
    if (c * z * t == 1) zz = images;  // a plain stack: "images=N" alone means N slices
    else
      return {std::nullopt, std::string("ImageJ metadata says images=") + std::to_string(images) + " but channels×slices×frames=" +
                                std::to_string(c * z * t)};
  }
  if (images == 0) return {std::nullopt, "ImageJ metadata says images=0"};
  axis_layout l;
  l.planes = c;
  l.frames = zz * t;
  l.page_of.resize(images);
  if (image_pages.size() == images) {
    for (std::size_t i = 0; i < images; ++i) l.page_of[i] = image_pages[i];  // page = c + C·(z + Z·t)
  } else if (image_pages.size() < images) {
    // ImageJ and tifffile write stacks over 4 GiB with one IFD and the planes back to back.
    l.contiguous = true;
    for (std::size_t i = 0; i < images; ++i) l.page_of[i] = static_cast<std::uint32_t>(i);
  } else {
    return {std::nullopt, std::string("ImageJ metadata says images=") + std::to_string(images) + " but the file has " +
                              std::to_string(image_pages.size()) + " pages"};
  }
  // ImageJ: XResolution is pixels per `unit`; without a unit the resolution tags speak for themselves.
  if (!d.unit.empty() && d.unit != "pixel" && d.unit != "pixels" && res.x && res.y && *res.x > 0 && *res.y > 0) {
    l.calib.pixel_size_x = 1.0 / *res.x;
    l.calib.pixel_size_y = 1.0 / *res.y;
    l.calib.unit = d.unit;
    if (d.spacing && *d.spacing > 0 && zz > 1) l.calib.pixel_size_z = *d.spacing;
  } else {
    l.calib = calibration_from_resolution(res);
  }
  if (d.finterval && *d.finterval > 0 && t > 1)
    if (auto s = seconds_per(d.tunit)) l.calib.frame_interval = *d.finterval * *s;
  l.origin = "imagej";
  return {std::move(l), {}};
}

// ---- OME-XML -------------------------------------------------------------------------------

// Element and attribute names without a namespace prefix ("ome:Pixels" → "Pixels").
inline std::string_view local_name(const char* name) {
  std::string_view n(name);
  const std::size_t colon = n.rfind(':');
  return colon == std::string_view::npos ? n : n.substr(colon + 1);
}

inline pugi::xml_node child_named(pugi::xml_node parent, std::string_view name) {
  for (pugi::xml_node c = parent.first_child(); c; c = c.next_sibling())
    if (c.type() == pugi::node_element && local_name(c.name()) == name) return c;
  return {};
}

inline pugi::xml_node descendant_named(pugi::xml_node root, std::string_view name) {
  for (pugi::xml_node c = root.first_child(); c; c = c.next_sibling()) {
    if (c.type() != pugi::node_element) continue;
    if (local_name(c.name()) == name) return c;
    if (auto d = descendant_named(c, name)) return d;
  }
  return {};
}

inline bool is_ome_xml(std::string_view text) {
  const std::size_t start = text.find_first_not_of(" \t\r\n");
  if (start == std::string_view::npos || text[start] != '<') return false;
  return text.find("<OME") != std::string_view::npos || text.find(":OME") != std::string_view::npos;
}

// The first Image of an OME-XML description. Planes are addressed through TiffData elements
// (IFD, FirstZ/C/T, PlaneCount) or, without them, in DimensionOrder from IFD 0.
// `samples` = samples per pixel of the pages; `total_pages` = IFDs in the file; `file_name` =
// this file's name, to recognise planes stored in another file of a multi-file set.
inline layout_attempt ome_layout(std::string_view text, std::size_t width, std::size_t height, std::size_t samples,
                                 std::size_t total_pages, std::string_view file_name) {
  pugi::xml_document doc;
  const auto parsed = doc.load_buffer(text.data(), text.size());
  if (!parsed) return {std::nullopt, std::string("OME-XML does not parse: ") + parsed.description()};
  const pugi::xml_node image = descendant_named(doc, "Image");
  const pugi::xml_node pixels = image ? child_named(image, "Pixels") : pugi::xml_node{};
  if (!pixels) return {std::nullopt, "OME-XML has no Image/Pixels element"};
  auto size_attr = [&](const char* name) -> std::optional<std::size_t> {
    const auto a = pixels.attribute(name);
    return a ? parse_count(a.value()) : std::optional<std::size_t>(1);
  };
  const auto sx = size_attr("SizeX"), sy = size_attr("SizeY"), sz = size_attr("SizeZ"), sc = size_attr("SizeC"),
             st = size_attr("SizeT");
  if (!sx || !sy || !sz || !sc || !st || *sz == 0 || *sc == 0 || *st == 0)
    return {std::nullopt, "OME-XML Pixels sizes are missing or not whole numbers"};
  if (*sx != width || *sy != height)
    return {std::nullopt, std::string("OME-XML says ") + std::to_string(*sx) + "×" + std::to_string(*sy) + " but the pages are " +
                              std::to_string(width) + "×" + std::to_string(height)};
  if (*sc % samples != 0)
    return {std::nullopt, std::string("OME-XML SizeC=") + std::to_string(*sc) + " is not a multiple of the " +
                              std::to_string(samples) + " samples per pixel"};
  const std::size_t z_n = *sz, c_n = *sc / samples, t_n = *st;
  const std::string order = pixels.attribute("DimensionOrder").as_string("XYZCT");
  if (order.size() != 5 || order.rfind("XY", 0) != 0) return {std::nullopt, "OME-XML DimensionOrder '" + order + "'"};
  // Linear plane index in DimensionOrder ↔ (z, c, t).
  const std::size_t sizes_zct[3] = {z_n, c_n, t_n};
  auto axis_of = [](char ch) { return ch == 'Z' ? 0 : ch == 'C' ? 1 : ch == 'T' ? 2 : -1; };
  const int a0 = axis_of(order[2]), a1 = axis_of(order[3]), a2 = axis_of(order[4]);
  if (a0 < 0 || a1 < 0 || a2 < 0 || a0 == a1 || a1 == a2 || a0 == a2)
    return {std::nullopt, "OME-XML DimensionOrder '" + order + "'"};
  const std::size_t n_planes = z_n * c_n * t_n;
  if (n_planes > (std::size_t{1} << 31)) return {std::nullopt, "OME-XML asks for too many planes"};
  auto zct_of = [&](std::size_t linear, std::size_t zct[3]) {
    zct[a0] = linear % sizes_zct[a0];
    linear /= sizes_zct[a0];
    zct[a1] = linear % sizes_zct[a1];
    zct[a2] = linear / sizes_zct[a1];
  };
  auto linear_of = [&](const std::size_t zct[3]) {
    return zct[a0] + sizes_zct[a0] * (zct[a1] + sizes_zct[a1] * zct[a2]);
  };

  constexpr std::uint32_t unset = 0xffffffffu;
  std::vector<std::uint32_t> ifd_of_plane(n_planes, unset);  // [linear plane]
  bool any_tiffdata = false;
  for (pugi::xml_node td = pixels.first_child(); td; td = td.next_sibling()) {
    if (td.type() != pugi::node_element || local_name(td.name()) != "TiffData") continue;
    any_tiffdata = true;
    if (const pugi::xml_node uuid = child_named(td, "UUID")) {
      const std::string other = uuid.attribute("FileName").as_string("");
      if (!other.empty() && other != file_name)
        return {std::nullopt, "multi-file OME-TIFF: planes are stored in '" + other +
                                  "' (open each file on its own or merge them first)"};
    }
    const auto ifd_attr = td.attribute("IFD");
    const std::size_t first_ifd = ifd_attr ? ifd_attr.as_ullong() : 0;
    const std::size_t zct0[3] = {td.attribute("FirstZ").as_ullong(0), td.attribute("FirstC").as_ullong(0),
                                 td.attribute("FirstT").as_ullong(0)};
    if (zct0[0] >= z_n || zct0[1] >= c_n || zct0[2] >= t_n)
      return {std::nullopt, "OME-XML TiffData points outside the Pixels sizes"};
    const std::size_t start = linear_of(zct0);
    std::size_t count = ifd_attr ? 1 : n_planes - start;
    if (const auto pc = td.attribute("PlaneCount")) count = pc.as_ullong();
    if (start + count > n_planes || first_ifd + count > total_pages)
      return {std::nullopt, std::string("OME-XML TiffData maps planes to pages the file does not have (") + std::to_string(total_pages) + " pages)"};
    for (std::size_t k = 0; k < count; ++k) ifd_of_plane[start + k] = static_cast<std::uint32_t>(first_ifd + k);
  }
  if (!any_tiffdata) {
    if (n_planes > total_pages)
      return {std::nullopt, std::string("OME-XML describes ") + std::to_string(n_planes) + " planes but the file has " +
                                std::to_string(total_pages) + " pages"};
    for (std::size_t k = 0; k < n_planes; ++k) ifd_of_plane[k] = static_cast<std::uint32_t>(k);
  }

  axis_layout l;
  l.planes = c_n;
  l.frames = z_n * t_n;  // frame = z + Z·t
  l.page_of.assign(l.frames * l.planes, unset);
  for (std::size_t k = 0; k < n_planes; ++k) {
    std::size_t zct[3];
    zct_of(k, zct);
    if (ifd_of_plane[k] == unset)
      return {std::nullopt, std::string("OME-XML maps no page to plane z=") + std::to_string(zct[0]) + " c=" +
                                std::to_string(zct[1]) + " t=" + std::to_string(zct[2])};
    l.page_of[(zct[0] + z_n * zct[2]) * c_n + zct[1]] = ifd_of_plane[k];
  }

  // Physical sizes (OME default unit µm) and the time step (default seconds).
  auto length = [&](const char* size, const char* unit) -> std::optional<std::pair<double, std::string>> {
    const auto a = pixels.attribute(size);
    if (!a) return std::nullopt;
    const auto v = parse_number(a.value());
    if (!v || *v <= 0) return std::nullopt;
    return std::pair{*v, normalize_length_unit(pixels.attribute(unit).as_string("um"))};
  };
  const auto px = length("PhysicalSizeX", "PhysicalSizeXUnit"), py = length("PhysicalSizeY", "PhysicalSizeYUnit"),
             pz = length("PhysicalSizeZ", "PhysicalSizeZUnit");
  if (px && py) {
    l.calib.unit = px->second;
    // All sizes in the X unit; a Y or Z in another known unit is converted.
    auto in_x_unit = [&](const std::pair<double, std::string>& v) -> std::optional<double> {
      if (v.second == px->second) return v.first;
      const auto from = micrometres_per(v.second), to = micrometres_per(px->second);
      if (!from || !to) return std::nullopt;
      return v.first * *from / *to;
    };
    l.calib.pixel_size_x = px->first;
    l.calib.pixel_size_y = in_x_unit(*py);
    if (!l.calib.pixel_size_y) l.calib = {};
    else if (pz && z_n > 1) l.calib.pixel_size_z = in_x_unit(*pz);
  }
  if (const auto ti = pixels.attribute("TimeIncrement"); ti && t_n > 1) {
    const auto v = parse_number(ti.value());
    const auto s = seconds_per(pixels.attribute("TimeIncrementUnit").as_string("s"));
    if (v && *v > 0 && s) l.calib.frame_interval = *v * *s;
  }
  l.origin = "ome";
  return {std::move(l), {}};
}

// ---- tifffile's JSON description -------------------------------------------------------------

// tifffile writes {"shape": [...]} (and "axes": "TCYX" when told). The shape's leading axes, before
// the page's own (Y, X, and S for samples), index the pages in C order. An axis "C" becomes the
// channel-planes; every other leading axis folds into frames.
inline std::optional<layout_attempt> tifffile_layout(std::string_view text,
                                                     const std::vector<std::uint32_t>& image_pages,
                                                     std::size_t samples, const resolution_tags& res) {
  const std::size_t start = text.find_first_not_of(" \t\r\n");
  if (start == std::string_view::npos || text[start] != '{') return std::nullopt;
  nlohmann::json j = nlohmann::json::parse(text.begin(), text.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("shape") || !j["shape"].is_array()) return std::nullopt;
  std::vector<std::size_t> shape;
  for (const auto& v : j["shape"]) {
    if (!v.is_number_unsigned()) return layout_attempt{std::nullopt, "tifffile shape is not a list of sizes"};
    shape.push_back(v.get<std::size_t>());
  }
  std::string axes;
  if (j.contains("axes") && j["axes"].is_string()) axes = j["axes"].get<std::string>();
  const std::size_t page_dims = samples > 1 ? 3 : 2;
  if (shape.size() < page_dims || (!axes.empty() && axes.size() != shape.size()))
    return layout_attempt{std::nullopt, "tifffile shape does not fit the pages"};
  // Drop the per-page axes: Y, X and S (last for contiguous samples, before Y for planar ones).
  const std::size_t leading = shape.size() - page_dims;
  std::size_t product = 1;
  for (std::size_t i = 0; i < leading; ++i) product *= shape[i];
  if (product != image_pages.size())
    return layout_attempt{std::nullopt, std::string("tifffile shape has ") + std::to_string(product) + " planes but the file has " +
                                            std::to_string(image_pages.size()) + " pages"};
  std::size_t c_axis = leading;  // none
  for (std::size_t i = 0; i < leading && !axes.empty(); ++i)
    if (axes[i] == 'C') c_axis = i;
  axis_layout l;
  l.planes = c_axis < leading ? shape[c_axis] : 1;
  l.frames = l.planes == 0 ? 0 : product / l.planes;
  l.page_of.resize(product);
  for (std::size_t p = 0; p < product; ++p) {
    // Row-major multi-index of page p over the leading axes; frame = row-major index without C.
    std::size_t rest = p, frame = 0, stride = 1, channel = 0;
    for (std::size_t i = leading; i-- > 0;) {
      const std::size_t idx = rest % shape[i];
      rest /= shape[i];
      if (i == c_axis) {
        channel = idx;
      } else {
        frame += idx * stride;
        stride *= shape[i];
      }
    }
    l.page_of[frame * l.planes + channel] = image_pages[p];
  }
  l.calib = calibration_from_resolution(res);
  l.origin = "tifffile";
  return layout_attempt{std::move(l), {}};
}

}  // namespace microcount::io::detail
