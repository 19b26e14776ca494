#pragma once
// The one in-memory model of point annotations that every format reads into and writes from.
//
// Coordinates are in pixels of the image grid: x = column, y = row, the centre of pixel (r, c) is at
// (x = c, y = r). This is what CVAT writes for a point put on a pixel, and napari's (axis-0, axis-1).
// `frame` is the time index for movies (ExoDeepFinder's z, napari's axis-0 of a 2D+t layer), -1 for
// still images. `label` indexes annotations::labels.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace microcount::io {

struct point {
  double x = 0;       // column
  double y = 0;       // row
  int label = 0;      // index into annotations::labels
  int frame = -1;     // time index, -1 when the image is not a movie
  int channel = -1;   // channel index when the annotation names one (4-axis napari), else -1
};

struct image_points {
  std::string name;          // image file name as the annotation names it (e.g. "image_001.tif")
  std::int64_t width = 0;    // 0 when the annotation does not say
  std::int64_t height = 0;
  std::int64_t frames = 0;   // 0 when unknown or a still image
  std::vector<point> points;
};

struct annotations {
  std::string format;                       // "cvat_images", "cvat_video", "napari_csv", "objlist_xml", ...
  std::vector<std::string> labels;          // label names; point::label indexes this
  std::vector<image_points> images;
  std::size_t skipped_shapes = 0;           // shapes of other kinds that were not points
  std::map<std::string, std::size_t> skipped_by_kind;  // "box" -> 12, "polygon" -> 3, ...

  // Index of `name` in labels, appending it when new.
  int label_index(const std::string& name) {
    auto it = std::find(labels.begin(), labels.end(), name);
    if (it != labels.end()) return static_cast<int>(it - labels.begin());
    labels.push_back(name);
    return static_cast<int>(labels.size() - 1);
  }

  // The entry for image `name`, appended (empty) when new.
  image_points& image(const std::string& name) {
    for (auto& im : images)
      if (im.name == name) return im;
    images.push_back(image_points{name, 0, 0, 0, {}});
    return images.back();
  }

  [[nodiscard]] const image_points* find(const std::string& name) const {
    for (const auto& im : images)
      if (im.name == name) return &im;
    return nullptr;
  }

  [[nodiscard]] std::size_t total_points() const {
    std::size_t n = 0;
    for (const auto& im : images) n += im.points.size();
    return n;
  }

  // label name -> number of points over all images (labels with no points are listed with 0).
  [[nodiscard]] std::map<std::string, std::size_t> points_per_label() const {
    std::map<std::string, std::size_t> out;
    for (const auto& l : labels) out[l] = 0;
    for (const auto& im : images)
      for (const auto& p : im.points)
        if (p.label >= 0 && static_cast<std::size_t>(p.label) < labels.size()) ++out[labels[p.label]];
    return out;
  }
};

}  // namespace microcount::io
