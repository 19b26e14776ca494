#pragma once
// Movies (2D + t, one channel) and the folders of annotated movies the event pipeline trains on.
//
//   read_movie(path)            a multi-page TIFF, or a folder of one-frame TIFFs ordered by the LAST number
//                               in each file name ("cell6_t0002.tif" → frame 2); frames [T, H, W] float
//   write_movie(path, frames)   one multi-page TIFF (ImageJ hyperstack, float32 unless asked), atomically
//   find_annotated_movies(dir)  every <movie>.tif(f) (or <movie>/ folder of frames) with <movie>.xml or
//                               <movie>.csv beside it; unmatched movies and annotations are an error
//   read_movie_objects(file)    an annotation as post::event_object records (see io/objlist.hpp)
//
// A movie has exactly one channel: a TIFF whose pages read_tiff maps to several channels (an RGB movie,
// a two-colour hyperstack) is refused with the file's name, because the event models take one channel
// and picking one silently would hide a wrong input.
#include <algorithm>
#include <cctype>
#include <cstddef>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <xtensor/xtensor.hpp>

#include "microcount/core/error.hpp"
#include "microcount/core/limits.hpp"
#include "microcount/io/image.hpp"
#include "microcount/io/objlist.hpp"
#include "microcount/io/tiff.hpp"
#include "microcount/post/event_object.hpp"

namespace microcount::io {

struct movie {
  std::string name;                // file stem ("cell6" for cell6.tif) or the folder's name
  xt::xtensor<float, 3> frames;    // [T, H, W]
};

namespace movie_detail {

inline bool is_tiff_name(const std::filesystem::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext == ".tif" || ext == ".tiff";
}

inline std::string lower_extension(const std::filesystem::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext;
}

// The last run of decimal digits in `stem`, as a frame number; none when the name has no digit.
inline std::optional<std::size_t> last_number(const std::string& stem) {
  std::size_t end = stem.size();
  while (end > 0 && !std::isdigit(static_cast<unsigned char>(stem[end - 1]))) --end;
  if (end == 0) return std::nullopt;
  std::size_t begin = end;
  while (begin > 0 && std::isdigit(static_cast<unsigned char>(stem[begin - 1]))) --begin;
  const std::string digits = stem.substr(begin, end - begin);
  if (digits.size() > 18) return std::nullopt;  // not a frame number any movie could have
  return static_cast<std::size_t>(std::stoull(digits));
}

// The entries of a folder; a folder that cannot be listed is a microcount::error naming it.
inline std::vector<std::filesystem::directory_entry> list_folder(const std::filesystem::path& dir) {
  std::vector<std::filesystem::directory_entry> out;
  std::error_code ec;
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) out.push_back(*it);
  if (ec) throw error(dir.string(), "cannot list the folder: " + ec.message());
  return out;
}

// [F, 1, H, W] → [F, H, W] without copying the pixels (a 1000-frame movie is hundreds of MB).
inline xt::xtensor<float, 3> drop_channel_axis(xt::xtensor<float, 4>&& pixels) {
  const auto s = pixels.shape();  // [F, 1, H, W]
  using shape3 = xt::xtensor<float, 3>::inner_shape_type;
  using strides3 = xt::xtensor<float, 3>::inner_strides_type;
  shape3 shape{s[0], s[2], s[3]};
  strides3 strides{static_cast<std::ptrdiff_t>(s[2] * s[3]), static_cast<std::ptrdiff_t>(s[3]), 1};
  if (s[2] * s[3] == 0) strides = {0, 0, 0};
  return xt::xtensor<float, 3>(std::move(pixels.storage()), std::move(shape), std::move(strides));
}

inline movie read_movie_file(const std::filesystem::path& path) {
  image img = read_tiff(path);  // checks limits() before it allocates
  if (img.channels() != 1)
    throw error(path.string(), "a movie must have one channel, this TIFF has " + std::to_string(img.channels()) +
                                   " (frames " + std::to_string(img.frames()) + ")");
  return movie{path.stem().string(), drop_channel_axis(std::move(img.pixels))};
}

inline movie read_movie_folder(const std::filesystem::path& dir) {
  const std::string where = dir.string();
  std::map<std::size_t, std::filesystem::path> by_frame;
  for (const auto& entry : list_folder(dir)) {
    std::error_code ec;
    if (!entry.is_regular_file(ec) || !is_tiff_name(entry.path())) continue;
    const std::string stem = entry.path().stem().string();
    const auto n = last_number(stem);
    if (!n) throw error(entry.path().string(), "no frame number in the file name (a movie folder orders frames by the last number in each name)");
    auto [it, fresh] = by_frame.emplace(*n, entry.path());
    if (!fresh)
      throw error(where, "frame number " + std::to_string(*n) + " appears twice: " + it->second.filename().string() +
                             " and " + entry.path().filename().string());
  }
  if (by_frame.empty()) throw error(where, "no TIFF files in the movie folder");
  if (by_frame.size() > limits().max_pages)
    throw error(where, std::to_string(by_frame.size()) + " frames exceed the limit of " + std::to_string(limits().max_pages));
  // Headers first: sizes must agree and the whole movie must fit the limits before any pixel is read.
  const tiff_info first = read_tiff_info(by_frame.begin()->second);
  const std::size_t T = by_frame.size(), H = first.height, W = first.width;
  for (const auto& [n, file] : by_frame) {
    const tiff_info info = n == by_frame.begin()->first ? first : read_tiff_info(file);
    if (info.frames != 1 || info.channels != 1)
      throw error(file.string(), "a frame of a movie folder must be one grey page, this TIFF has " +
                                     std::to_string(info.frames) + " frames × " + std::to_string(info.channels) + " channels");
    if (info.height != H || info.width != W)
      throw error(file.string(), "frame is " + std::to_string(info.width) + "×" + std::to_string(info.height) + ", the first frame (" +
                                     by_frame.begin()->second.filename().string() + ") is " + std::to_string(W) + "×" + std::to_string(H));
  }
  const unsigned __int128 bytes = static_cast<unsigned __int128>(T) * H * W * sizeof(float);
  if (bytes > limits().max_total_bytes)
    throw error(where, "movie of " + std::to_string(T) + " frames of " + std::to_string(W) + "×" + std::to_string(H) +
                           " exceeds the limit of " + std::to_string(limits().max_total_bytes) + " bytes");
  movie m{dir.filename().empty() ? dir.parent_path().filename().string() : dir.filename().string(),
          xt::xtensor<float, 3>::from_shape({T, H, W})};  // [T, H, W]
  std::size_t t = 0;
  for (const auto& [n, file] : by_frame) {
    const image frame = read_tiff(file);  // [1, 1, H, W]
    if (frame.height() != H || frame.width() != W || frame.frames() != 1 || frame.channels() != 1)
      throw error(file.string(), "frame changed shape while the movie was read");
    std::copy_n(frame.pixels.data(), H * W, m.frames.data() + t * H * W);
    ++t;
  }
  return m;
}

}  // namespace movie_detail

// A multi-page TIFF, or a folder of per-frame TIFFs, as [T, H, W] float (values as stored).
inline movie read_movie(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) throw error(path.string(), "no such file or folder");
  if (std::filesystem::is_directory(path, ec)) return movie_detail::read_movie_folder(path);
  return movie_detail::read_movie_file(path);
}

// One multi-page TIFF of `frames` ([T, H, W]) as `as` (float32, uint16 or uint8), atomically.
inline void write_movie(const std::filesystem::path& path, const xt::xtensor<float, 3>& frames, dtype as = dtype::float32) {
  const auto s = frames.shape();  // [T, H, W]
  image img;
  img.pixels = xt::xtensor<float, 4>::from_shape({s[0], 1, s[1], s[2]});  // [T, 1, H, W]
  std::copy(frames.begin(), frames.end(), img.pixels.begin());
  img.source_dtype = as;
  write_tiff(path, img, as);
}

// The objects of one movie's annotation: an ExoDeepFinder object list (.xml, or .csv with a class_label
// column) or a napari points CSV with axes frame, y, x (every point an event, label 2).
inline std::vector<post::event_object> read_movie_objects(const std::filesystem::path& annotation) {
  const std::string ext = movie_detail::lower_extension(annotation);
  if (ext == ".xml") return read_event_list_xml(annotation);
  if (ext == ".csv") return read_event_list_csv(annotation);
  throw error(annotation.string(), "not a movie annotation (expected .xml or .csv)");
}

// Pairs (movie, annotation) in `dir`, sorted by movie name. A movie is <name>.tif / <name>.tiff, or a
// folder <name>/ of frames when an annotation <name>.xml / <name>.csv names it; its annotation is the
// .xml or .csv with the same stem. A movie file without annotation, an annotation without movie, or a
// movie with both an .xml and a .csv is an error that names them (a silent skip would train on less
// than the user thinks). Other files (PNG, JSON, …) are ignored.
inline std::vector<std::pair<std::filesystem::path, std::filesystem::path>> find_annotated_movies(
    const std::filesystem::path& dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) throw error(dir.string(), "not a folder");
  std::map<std::string, std::vector<std::filesystem::path>> movies, annotations, folders;
  for (const auto& entry : movie_detail::list_folder(dir)) {
    const auto& p = entry.path();
    const std::string stem = p.stem().string();
    if (entry.is_directory(ec)) {
      folders[p.filename().string()].push_back(p);
      continue;
    }
    if (!entry.is_regular_file(ec)) continue;
    if (movie_detail::is_tiff_name(p)) movies[stem].push_back(p);
    const std::string ext = movie_detail::lower_extension(p);
    if (ext == ".xml" || ext == ".csv") annotations[stem].push_back(p);
  }
  std::vector<std::string> problems;
  std::vector<std::pair<std::filesystem::path, std::filesystem::path>> out;
  for (const auto& [stem, files] : movies) {
    if (files.size() > 1) problems.push_back(stem + ": two movie files (" + files[0].filename().string() + ", " + files[1].filename().string() + ")");
    if (!annotations.count(stem)) problems.push_back(files[0].filename().string() + " has no " + stem + ".xml or " + stem + ".csv");
  }
  for (const auto& [stem, files] : annotations) {
    if (files.size() > 1) {
      problems.push_back(stem + " has two annotations (" + files[0].filename().string() + ", " + files[1].filename().string() + ")");
      continue;
    }
    auto movie_it = movies.find(stem);
    auto folder_it = folders.find(stem);
    if (movie_it != movies.end()) {
      out.emplace_back(movie_it->second[0], files[0]);
    } else if (folder_it != folders.end()) {
      out.emplace_back(folder_it->second[0], files[0]);
    } else {
      problems.push_back(files[0].filename().string() + " has no movie " + stem + ".tif");
    }
  }
  if (!problems.empty()) {
    std::string text;
    for (const auto& p : problems) text += (text.empty() ? "" : "; ") + p;
    throw error(dir.string(), text);
  }
  if (out.empty()) throw error(dir.string(), "no annotated movies (<movie>.tif with <movie>.xml or <movie>.csv)");
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace microcount::io
