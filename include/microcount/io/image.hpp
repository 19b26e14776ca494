#pragma once
// The host-side image every reader produces and every writer takes.
//   pixels: xt::xtensor<float, 4> with shape [frames, channels, height, width]   (F, C, H, W)
// A plain 2D grey image is [1, 1, H, W]; an RGB image [1, 3, H, W]; a movie [T, 1, H, W].
// Values keep the file's numbers (no rescaling); float32 holds every 8/16-bit value exactly and
// 32-bit integers up to 2^24 exactly.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <xtensor/xtensor.hpp>

namespace microcount::io {

// Sample types a TIFF can hold, named as numpy names them.
enum class dtype : std::uint8_t { uint8, int8, uint16, int16, uint32, int32, float16, float32, float64 };

constexpr std::string_view dtype_name(dtype t) {
  switch (t) {
    case dtype::uint8: return "uint8";
    case dtype::int8: return "int8";
    case dtype::uint16: return "uint16";
    case dtype::int16: return "int16";
    case dtype::uint32: return "uint32";
    case dtype::int32: return "int32";
    case dtype::float16: return "float16";
    case dtype::float32: return "float32";
    case dtype::float64: return "float64";
  }
  return "unknown";
}

// Physical calibration, when the file states it (ImageJ or OME metadata, or TIFF resolution tags).
struct calibration {
  std::optional<double> pixel_size_x;   // per pixel, in `unit`
  std::optional<double> pixel_size_y;
  std::optional<double> pixel_size_z;
  std::optional<double> frame_interval; // seconds between frames
  std::string unit;                     // e.g. "micron", "um", "nm"
};

struct image {
  xt::xtensor<float, 4> pixels;  // [F, C, H, W]
  dtype source_dtype = dtype::float32;
  calibration calib;

  [[nodiscard]] std::size_t frames() const { return pixels.shape()[0]; }
  [[nodiscard]] std::size_t channels() const { return pixels.shape()[1]; }
  [[nodiscard]] std::size_t height() const { return pixels.shape()[2]; }
  [[nodiscard]] std::size_t width() const { return pixels.shape()[3]; }
};

}  // namespace microcount::io
