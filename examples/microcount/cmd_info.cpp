// microcount info IMAGE… — what an image file holds, as one JSON object per file per line.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <iostream>
#include <limits>
#include <new>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "command.hpp"
#include "microcount/io/png.hpp"
#include "microcount/io/tiff.hpp"

namespace {

using namespace microcount;
namespace fs = std::filesystem;

// min / max / mean over the finite values; non-finite ones (NaN, ±inf in float files) are counted.
struct value_stats {
  double lo = std::numeric_limits<double>::infinity(), hi = -lo, sum = 0;
  std::size_t finite = 0, non_finite = 0;

  template <std::input_iterator It>
  void add(It first, It last) {
    for (; first != last; ++first) {
      const double v = static_cast<double>(*first);
      if (!std::isfinite(v)) {
        ++non_finite;
        continue;
      }
      lo = std::min(lo, v);
      hi = std::max(hi, v);
      sum += v;
      ++finite;
    }
  }
  void write(nlohmann::ordered_json& j) const {
    if (finite == 0) {
      j["min"] = j["max"] = j["mean"] = nullptr;
    } else {
      j["min"] = lo;
      j["max"] = hi;
      j["mean"] = sum / static_cast<double>(finite);
    }
    if (non_finite) j["non_finite"] = non_finite;
  }
};

bool starts_with_png_signature(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  unsigned char sig[8] = {0};
  in.read(reinterpret_cast<char*>(sig), 8);
  static const unsigned char png[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  return in.gcount() == 8 && std::equal(sig, sig + 8, png);
}

nlohmann::ordered_json describe_png(const fs::path& p) {
  const auto pixels = io::read_png(p);  // [H, W, C]
  value_stats stats;
  stats.add(pixels.begin(), pixels.end());
  nlohmann::ordered_json j;
  j["file"] = p.string();
  j["format"] = "png";
  j["width"] = pixels.shape()[1];
  j["height"] = pixels.shape()[0];
  j["frames"] = 1;
  j["channels"] = pixels.shape()[2];
  j["dtype"] = "uint8";
  stats.write(j);
  j["pages"] = 1;
  j["compression"] = "deflate";
  j["bigtiff"] = false;
  return j;
}

nlohmann::ordered_json describe_tiff(const fs::path& p) {
  const io::tiff_info info = io::read_tiff_info(p);
  // Whole movies can be large: read a bounded number of frames at a time.
  const std::size_t frame_bytes = info.channels * info.height * info.width * sizeof(float);
  const std::size_t per_chunk = std::max<std::size_t>(1, (std::size_t{256} << 20) / std::max<std::size_t>(frame_bytes, 1));
  value_stats stats;
  for (std::size_t first = 0; first < info.frames; first += per_chunk) {
    const io::image part = io::read_tiff_frames(p, first, std::min(per_chunk, info.frames - first));
    stats.add(part.pixels.begin(), part.pixels.end());
  }
  nlohmann::ordered_json j;
  j["file"] = p.string();
  j["format"] = "tiff";
  j["width"] = info.width;
  j["height"] = info.height;
  j["frames"] = info.frames;
  j["channels"] = info.channels;
  j["dtype"] = std::string(io::dtype_name(info.sample_type));
  stats.write(j);
  if (info.calib.pixel_size_x) {
    nlohmann::ordered_json size;
    size["x"] = *info.calib.pixel_size_x;
    size["y"] = info.calib.pixel_size_y.value_or(*info.calib.pixel_size_x);
    if (info.calib.pixel_size_z) size["z"] = *info.calib.pixel_size_z;
    size["unit"] = info.calib.unit;
    j["pixel_size"] = size;
  }
  if (info.calib.frame_interval) j["frame_interval_s"] = *info.calib.frame_interval;
  j["pages"] = info.pages;
  j["compression"] = info.compression;
  j["bigtiff"] = info.bigtiff;
  j["big_endian"] = info.big_endian;
  j["tiled"] = info.tiled;
  j["planar"] = info.planar;
  j["metadata"] = info.metadata;
  return j;
}

int run_info(const std::vector<std::string>& args) {
  const cli::arguments a(args);
  a.allow_only({});
  if (a.positional.empty()) throw error("microcount info", "give at least one image file (TIFF or PNG)");
  int status = 0;
  for (const std::string& file : a.positional) {
    try {
      const fs::path p(file);
      const nlohmann::ordered_json j = starts_with_png_signature(p) ? describe_png(p) : describe_tiff(p);
      std::cout << j.dump() << '\n' << std::flush;
    } catch (const error& e) {
      std::fprintf(stderr, "microcount info: %s\n", e.what());
      status = 1;
    } catch (const std::bad_alloc&) {
      std::fprintf(stderr, "microcount info: %s: out of memory\n", file.c_str());
      status = 1;
    }
  }
  return status;
}

const cli::register_command reg{{"info", "describe image files (size, type, value range, calibration) as JSON lines",
                                 "usage: microcount info IMAGE…\n\n"
                                 "Prints one JSON object per file and line: file, format, width, height, frames,\n"
                                 "channels, dtype (numpy name), min, max, mean (over all finite pixel values;\n"
                                 "non_finite counts NaN/inf), pixel_size {x, y, [z], unit} and frame_interval_s when\n"
                                 "the file states them, then pages, compression, bigtiff and how the pages were\n"
                                 "mapped to [frames, channels] (metadata: ome, imagej, tifffile or plain).\n"
                                 "A file that cannot be read is reported on stderr; the others are still printed,\n"
                                 "and the exit status is 1.",
                                 &run_info}};

}  // namespace
