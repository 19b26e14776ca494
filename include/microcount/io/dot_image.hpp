#pragma once
// Dot images: annotations drawn as single marked pixels (the form the VGG-cells and MBM sets were
// published in). Every non-zero pixel is one point at its centre (x = column, y = row).
//   - one channel, no value map: every point gets `label`;
//   - one channel with a value map: the pixel value picks the label (a value missing from the map is an
//     error, so a stray value is not silently counted);
//   - several channels: channel c gives label c (named channel_labels[c], or "c" when not given);
//   - several frames: point::frame = the frame index; a single frame gives still-image points (-1).
// A pixel holding 2 (two objects on one pixel in some dot-image sets) is still one point here.
// Files: read_dot_image reads a TIFF (any layout read_tiff knows) or a PNG; a PNG's alpha channel is
// dropped (it is opacity, not a class), so an RGBA dot picture has the three colour channels.
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "microcount/core/error.hpp"
#include "microcount/io/annotation_common.hpp"
#include "microcount/io/annotations.hpp"
#include "microcount/io/image.hpp"
#include "microcount/io/png.hpp"
#include "microcount/io/tiff.hpp"

namespace microcount::io {

struct dot_image_options {
  std::string image_name = "image";        // name of the image the points belong to
  std::string label = "point";             // label of every dot (one channel, no value map)
  std::map<long long, std::string> value_labels;  // pixel value -> label name (one-channel images)
  std::vector<std::string> channel_labels; // label name per channel (several channels); default "0", "1", ...
};

// The points marked in `dots` ([F, C, H, W]). `where` names the source in errors.
inline annotations points_from_dot_image(const image& dots, const dot_image_options& options = {},
                                         const std::string& where = "dot image") {
  const std::size_t frames = dots.frames(), channels = dots.channels(), height = dots.height(), width = dots.width();
  if (channels > 1 && !options.value_labels.empty())
    throw error(where, "a value-to-label map needs a single-channel dot image, this one has " +
                           std::to_string(channels) + " channels");
  if (!options.channel_labels.empty() && options.channel_labels.size() != channels)
    throw error(where, std::to_string(options.channel_labels.size()) + " channel labels for " +
                           std::to_string(channels) + " channels");
  annotations ann;
  ann.format = "dot_image";
  // Label index per channel, or per mapped value; the label list keeps the options' order.
  std::vector<int> channel_label(channels, 0);
  std::map<long long, int> value_label;
  if (channels > 1) {
    for (std::size_t c = 0; c < channels; ++c)
      channel_label[c] = ann.label_index(options.channel_labels.empty() ? std::to_string(c) : options.channel_labels[c]);
  } else if (!options.value_labels.empty()) {
    for (const auto& [value, name] : options.value_labels) value_label[value] = ann.label_index(name);
  } else {
    channel_label[0] = ann.label_index(options.label);
  }
  image_points im{options.image_name, static_cast<std::int64_t>(width), static_cast<std::int64_t>(height),
                  frames > 1 ? static_cast<std::int64_t>(frames) : 0, {}};
  point_budget budget(where);
  for (std::size_t f = 0; f < frames; ++f)
    for (std::size_t c = 0; c < channels; ++c)
      for (std::size_t r = 0; r < height; ++r)
        for (std::size_t x = 0; x < width; ++x) {
          const float v = dots.pixels(f, c, r, x);  // [F, C, H, W]
          if (v == 0.0f) continue;
          const std::string at = " at frame " + std::to_string(f) + ", channel " + std::to_string(c) + ", row " +
                                 std::to_string(r) + ", column " + std::to_string(x);
          if (!std::isfinite(v)) throw error(where, "pixel value is not finite" + at);
          budget.take();
          point p;
          p.x = static_cast<double>(x);
          p.y = static_cast<double>(r);
          p.frame = frames > 1 ? static_cast<int>(f) : -1;
          p.label = channel_label[c];
          if (!value_label.empty()) {
            const auto it = std::floor(v) == v ? value_label.find(static_cast<long long>(v)) : value_label.end();
            if (it == value_label.end())
              throw error(where, "pixel value " + format_number(v) + at + " has no label in the value map");
            p.label = it->second;
          }
          im.points.push_back(p);
        }
  ann.images.push_back(std::move(im));
  return ann;
}

// Reads a dot image from a TIFF or PNG file (told apart by their signatures). Unless options name it,
// the image is named after the file ("image_001.tif").
inline annotations read_dot_image(const std::filesystem::path& path, dot_image_options options = {}) {
  const std::string where = path.string();
  unsigned char signature[8] = {0};
  {
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) throw error(where, "cannot open");
    const std::size_t n = std::fread(signature, 1, sizeof signature, f);
    std::fclose(f);
    if (n < 4) throw error(where, "too short to be a TIFF or PNG dot image");
  }
  if (options.image_name == dot_image_options{}.image_name) options.image_name = path.filename().string();
  const bool png = signature[0] == 0x89 && signature[1] == 'P' && signature[2] == 'N' && signature[3] == 'G';
  if (!png) return points_from_dot_image(read_tiff(path), options, where);
  const xt::xtensor<std::uint8_t, 3> rgba = read_png(path);  // [H, W, C]
  const std::size_t height = rgba.shape()[0], width = rgba.shape()[1], stored = rgba.shape()[2];
  const std::size_t channels = stored == 2 || stored == 4 ? stored - 1 : stored;  // without alpha
  image dots;
  dots.source_dtype = dtype::uint8;
  dots.pixels = xt::xtensor<float, 4>::from_shape({1, channels, height, width});  // [F, C, H, W]
  for (std::size_t c = 0; c < channels; ++c)
    for (std::size_t y = 0; y < height; ++y)
      for (std::size_t x = 0; x < width; ++x) dots.pixels(0, c, y, x) = rgba(y, x, c);
  return points_from_dot_image(dots, options, where);
}

}  // namespace microcount::io
