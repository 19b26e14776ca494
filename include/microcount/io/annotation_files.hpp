#pragma once
// Any annotation file or folder in, any format out. The format is found from the content, never the
// file name:
//   XML root <annotations>              -> CVAT ("cvat_images" with <image>s, "cvat_video" with <track>s)
//   XML root <objlist>                  -> "objlist_xml" (ExoDeepFinder / DeepFinder)
//   CSV header index,axis-0,axis-1,...  -> "napari_csv"
//   CSV header with class_label,x,y,z   -> "objlist_csv"
//   CSV header with image,x,y           -> "points_csv"
//   TIFF or PNG bytes                   -> "dot_image" (one point per non-zero pixel)
// A folder means one of the layouts the seed tools use:
//   annotations.xml inside              -> that CVAT export (the rest of the folder is images)
//   <stem>.csv beside <stem>.tif        -> one napari CSV per image, named after the image beside it
//   <movie>.xml|.csv or <movie>_objl.xml|.csv beside <movie>.tif|.h5 -> one object list per movie
// Every .xml/.csv file of the folder is read (an annotation file with no image beside it names the
// image "<stem>.tif"); files of different formats in one folder are an error. For the per-image
// formats (napari, object lists) the width, height and frame count come from the TIFF beside the file
// (its headers only), so validate() can check the points against them.
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "microcount/core/error.hpp"
#include "microcount/io/annotation_common.hpp"
#include "microcount/io/annotations.hpp"
#include "microcount/io/atomic_file.hpp"
#include "microcount/io/csv.hpp"
#include "microcount/io/cvat_xml.hpp"
#include "microcount/io/dot_image.hpp"
#include "microcount/io/napari_csv.hpp"
#include "microcount/io/objlist.hpp"
#include "microcount/io/points_csv.hpp"
#include "microcount/io/tiff.hpp"

namespace microcount::io {

// Every format name read_annotations sets and (except "dot_image") write_annotations takes.
inline const std::vector<std::string>& annotation_formats() {
  static const std::vector<std::string> names{"cvat_images", "cvat_video", "napari_csv", "objlist_xml",
                                              "objlist_csv", "points_csv", "dot_image"};
  return names;
}

namespace files_detail {

inline std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

inline bool is_image_extension(const std::string& ext) {
  const std::string e = lower(ext);
  return e == ".tif" || e == ".tiff" || e == ".png" || e == ".h5" || e == ".jpg" || e == ".jpeg";
}

inline bool is_raster(std::string_view bytes) {
  return bytes.substr(0, 4) == std::string_view("II*\0", 4) || bytes.substr(0, 4) == std::string_view("MM\0*", 4) ||
         bytes.substr(0, 4) == std::string_view("II+\0", 4) || bytes.substr(0, 4) == std::string_view("MM\0+", 4) ||
         bytes.substr(0, 8) == std::string_view("\x89PNG\r\n\x1a\n", 8);
}

// Name of the root element of XML text ("" when the text is not XML): skips the BOM, blanks, the XML
// declaration, processing instructions, comments and a DOCTYPE (with its internal subset).
inline std::string xml_root_name(std::string_view t) {
  if (t.substr(0, 3) == "\xEF\xBB\xBF") t.remove_prefix(3);
  std::size_t i = 0;
  for (;;) {
    while (i < t.size() && std::isspace(static_cast<unsigned char>(t[i]))) ++i;
    if (i >= t.size() || t[i] != '<') return "";
    const std::string_view rest = t.substr(i);
    std::size_t end = std::string_view::npos;
    if (rest.substr(0, 2) == "<?") {
      end = rest.find("?>");
      if (end != std::string_view::npos) end += 2;
    } else if (rest.substr(0, 4) == "<!--") {
      end = rest.find("-->");
      if (end != std::string_view::npos) end += 3;
    } else if (rest.substr(0, 2) == "<!") {
      const std::size_t bracket = rest.find('['), close = rest.find('>');
      if (bracket != std::string_view::npos && bracket < close) {
        end = rest.find("]>", bracket);  // end of the internal subset
        if (end != std::string_view::npos) end += 2;
      } else {
        end = close == std::string_view::npos ? close : close + 1;
      }
    } else {
      std::size_t j = 1;
      while (j < rest.size() && !std::isspace(static_cast<unsigned char>(rest[j])) && rest[j] != '>' && rest[j] != '/')
        ++j;
      return std::string(rest.substr(1, j - 1));
    }
    if (end == std::string_view::npos) return "";
    i += end;
  }
}

// Whether a CVAT XML text holds tracks (video) rather than images: the first <image or <track element.
inline bool cvat_text_is_video(std::string_view t) {
  const auto first = [&](std::string_view tag) {
    for (std::size_t at = t.find(tag); at != std::string_view::npos; at = t.find(tag, at + 1)) {
      const std::size_t after = at + tag.size();
      if (after < t.size() && (std::isspace(static_cast<unsigned char>(t[after])) || t[after] == '>' || t[after] == '/'))
        return at;
    }
    return std::string_view::npos;
  };
  return first("<track") < first("<image");
}

// The format of a file's content, or throws naming the file.
inline std::string detect(std::string_view text, const std::string& where) {
  if (is_raster(text)) return "dot_image";
  if (const std::string root = xml_root_name(text); !root.empty()) {
    if (root == "annotations") return cvat_text_is_video(text) ? "cvat_video" : "cvat_images";
    if (root == "objlist") return "objlist_xml";
    throw error(where, "XML root element <" + root + "> is not an annotation format (expected <annotations> or <objlist>)");
  }
  csv::tokenizer tok(text, where);
  csv::row first;
  if (!tok.next(first)) throw error(where, "empty file, not an annotation file");
  const csv::header head(first);
  if (is_napari_header(head)) return "napari_csv";
  if (is_objlist_header(head)) return "objlist_csv";
  if (is_points_csv_header(head)) return "points_csv";
  std::string shown;
  for (const auto& n : head.names()) shown += (shown.empty() ? "" : ",") + n;
  throw error(where, "not a known annotation format (first line '" + excerpt(shown, 60) +
                         "' is neither XML nor a napari, object-list or points CSV header)");
}

// Reads one file's text of a known format. `image_name` names the image for per-image formats.
inline annotations parse(const std::string& text, const std::string& format, const std::string& where,
                         const std::string& image_name) {
  if (format == "cvat_images" || format == "cvat_video") return parse_cvat_xml(text, where, image_name);
  if (format == "objlist_xml") return parse_objlist_xml(text, where);
  if (format == "objlist_csv") return parse_objlist_csv(text, where);
  if (format == "napari_csv") return parse_napari_csv(text, where, image_name);
  if (format == "points_csv") return parse_points_csv(text, where);
  throw error(where, "cannot read format " + format + " from text");
}

// Image files of a folder by stem ("movie1" -> "movie1.h5"); the first name in sorted order wins.
inline std::map<std::string, std::string> images_by_stem(const std::filesystem::path& dir) {
  namespace fs = std::filesystem;
  std::map<std::string, std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir.empty() ? fs::path(".") : dir, ec)) {
    if (!e.is_regular_file(ec) || !is_image_extension(e.path().extension().string())) continue;
    auto [it, added] = out.try_emplace(e.path().stem().string(), e.path().filename().string());
    if (!added) it->second = std::min(it->second, e.path().filename().string());
  }
  return out;
}

// The image an annotation file belongs to: an image file of `images` with the same stem (or the stem
// without ExoDeepFinder's "_objl"), else "<stem>.tif".
inline std::string image_beside(const std::filesystem::path& file, const std::map<std::string, std::string>& images) {
  const std::string stem = file.stem().string();
  const bool objl = stem.size() > 5 && stem.compare(stem.size() - 5, 5, "_objl") == 0;
  const std::string movie = objl ? stem.substr(0, stem.size() - 5) : stem;
  if (auto it = images.find(stem); it != images.end()) return it->second;
  if (auto it = images.find(movie); it != images.end()) return it->second;
  return movie + ".tif";
}

// The first bytes of a file (enough for a TIFF or PNG signature).
inline std::string file_head(const std::filesystem::path& file) {
  std::string head(8, '\0');
  std::FILE* f = std::fopen(file.c_str(), "rb");
  if (!f) return {};
  head.resize(std::fread(head.data(), 1, head.size(), f));
  std::fclose(f);
  return head;
}

// Per-image formats do not state the image size: take it from the TIFF beside the annotation file
// (headers only), so validate() can check the points. A TIFF that cannot be read is an error naming it.
inline void sizes_from_tiff(annotations& ann, const std::filesystem::path& image) {
  const std::string ext = lower(image.extension().string());
  std::error_code ec;
  if ((ext != ".tif" && ext != ".tiff") || !std::filesystem::is_regular_file(image, ec)) return;
  const tiff_info info = read_tiff_info(image);
  for (auto& im : ann.images) {
    if (im.width == 0) im.width = static_cast<std::int64_t>(info.width);
    if (im.height == 0) im.height = static_cast<std::int64_t>(info.height);
    if (im.frames == 0 && info.frames > 1) im.frames = static_cast<std::int64_t>(info.frames);
  }
}

inline annotations read_file(const std::filesystem::path& file, const std::string& image_name) {
  const std::string where = file.string();
  if (is_raster(file_head(file))) return read_dot_image(file);
  const std::string text = read_text(file);
  const std::string format = detect(text, where);
  annotations ann = parse(text, format, where, image_name);
  const bool per_image = format == "napari_csv" || format == "objlist_xml" || format == "objlist_csv";
  // A per-movie object list holding one movie is named after the movie beside it.
  if (per_image && format != "napari_csv" && ann.images.size() == 1) ann.images[0].name = image_name;
  if (per_image && ann.images.size() == 1) sizes_from_tiff(ann, file.parent_path() / image_name);
  return ann;
}

inline annotations read_folder(const std::filesystem::path& dir) {
  namespace fs = std::filesystem;
  if (fs::is_regular_file(dir / "annotations.xml"))  // a CVAT export: the rest of the folder is images
    return read_file(dir / "annotations.xml", dir.filename().empty() ? "video.tif" : dir.filename().string() + ".tif");
  std::vector<fs::path> files;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string ext = lower(e.path().extension().string());
    if (e.is_regular_file(ec) && (ext == ".csv" || ext == ".xml") && e.path().filename().string()[0] != '.')
      files.push_back(e.path());
  }
  if (ec) throw error(dir.string(), "cannot list folder: " + ec.message());
  if (files.empty()) throw error(dir.string(), "no annotation files (.xml or .csv) in this folder");
  std::sort(files.begin(), files.end());
  annotations all;
  std::string first_file;
  const auto images = images_by_stem(dir);
  for (const auto& f : files) {
    annotations one = read_file(f, image_beside(f, images));
    if (!all.format.empty() && one.format != all.format)
      throw error(dir.string(), "mixes " + all.format + " (" + first_file + ") and " + one.format + " (" +
                                    f.filename().string() + ") files");
    if (first_file.empty()) first_file = f.filename().string();
    merge_into(all, std::move(one), f.string());
  }
  return all;
}

}  // namespace files_detail

// The format of an annotation file, found from its content (see the table above).
inline std::string detect_annotation_format(const std::filesystem::path& file) {
  return files_detail::detect(read_text(file), file.string());
}

// Reads an annotation file or folder in any supported format; ann.format says which it was.
inline annotations read_annotations(const std::filesystem::path& file_or_dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::is_directory(file_or_dir, ec)) return files_detail::read_folder(file_or_dir);
  if (!fs::exists(file_or_dir, ec)) throw error(file_or_dir.string(), "no such file or folder");
  return files_detail::read_file(
      file_or_dir, files_detail::image_beside(file_or_dir, files_detail::images_by_stem(file_or_dir.parent_path())));
}

// Writes `ann` in `format`. Every file goes through write_atomically. "napari_csv" writes one CSV per
// image into the folder `path` (image "a.tif" -> "a.csv"), or, when `path` ends in ".csv" and there is
// exactly one image, that one file. The other formats write the single file `path`.
inline void write_annotations(const std::filesystem::path& path, const annotations& ann, std::string_view format) {
  const std::string where = path.string();
  if (format == "cvat_images") return write_cvat_images(path, ann);
  if (format == "cvat_video") return write_cvat_video(path, ann);
  if (format == "objlist_xml") return write_objlist_xml(path, ann);
  if (format == "objlist_csv") return write_objlist_csv(path, ann);
  if (format == "points_csv") return write_points_csv(path, ann);
  if (format == "napari_csv") {
    if (files_detail::lower(path.extension().string()) == ".csv") {
      if (ann.images.size() != 1)
        throw error(where, "a single napari CSV holds one image, these annotations have " +
                               std::to_string(ann.images.size()) + " (give a folder instead)");
      return write_napari_csv(path, ann, ann.images[0]);
    }
    return write_napari_csv_folder(path, ann);
  }
  if (format == "dot_image") throw error(where, "writing dot images is not supported (write points instead)");
  std::string known;
  for (const auto& f : annotation_formats())
    if (f != "dot_image") known += (known.empty() ? "" : ", ") + f;
  throw error(where, "unknown annotation format '" + std::string(format) + "' (known: " + known + ")");
}

}  // namespace microcount::io
