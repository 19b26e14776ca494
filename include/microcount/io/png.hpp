#pragma once
// 8-bit PNG in and out through libpng (for pictures people look at: samples, overlays, masks).
//   write_png(path, pixels [H, W, C])   C = 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA; atomic
//   read_png(path) → [H, W, C]          any PNG: palettes and low bit depths expand to 8 bits,
//                                       transparency becomes an alpha channel, 16 bits scale to 8.
// libpng reports errors with longjmp; the functions that call into it keep only trivially
// destructible locals, so the jump never skips a C++ destructor.
#include <algorithm>
#include <cerrno>
#include <csetjmp>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <png.h>
#include <xtensor/xtensor.hpp>

#include "microcount/core/error.hpp"
#include "microcount/core/limits.hpp"
#include "microcount/io/atomic_file.hpp"

namespace microcount::io {

namespace detail {

struct png_failure {
  char message[512] = {0};
};

inline void on_png_error(png_structp png, png_const_charp text) {
  auto* f = static_cast<png_failure*>(png_get_error_ptr(png));
  std::snprintf(f->message, sizeof f->message, "%s", text ? text : "libpng error");
  png_longjmp(png, 1);
}
inline void on_png_warning(png_structp, png_const_charp) {}  // warnings are not errors; stay silent

// Reads the header and sets up 8-bit output. Returns false on a libpng error.
inline bool png_read_header(png_structp png, png_infop info, std::FILE* file, png_uint_32 max_side,
                            png_uint_32* width, png_uint_32* height, int* channels) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_init_io(png, file);
  png_set_user_limits(png, max_side, max_side);
  png_read_info(png, info);
  png_set_expand(png);    // palette → RGB, grey < 8 bits → 8 bits, tRNS → alpha
  png_set_scale_16(png);  // 16 → 8 bits, rounded (not truncated)
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  *width = png_get_image_width(png, info);
  *height = png_get_image_height(png, info);
  *channels = png_get_channels(png, info);
  return true;
}

inline bool png_read_pixels(png_structp png, png_infop info, png_bytepp rows) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_read_image(png, rows);
  png_read_end(png, info);
  return true;
}

}  // namespace detail

// Any PNG → [H, W, C] 8-bit, C = 1 (grey), 2 (grey + alpha), 3 (RGB) or 4 (RGBA).
inline xt::xtensor<std::uint8_t, 3> read_png(const std::filesystem::path& path) {
  const std::string name = path.string();
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!file) throw error(name, std::string("cannot open: ") + std::strerror(errno));
  unsigned char signature[8] = {0};
  if (std::fread(signature, 1, 8, file.get()) != 8 || png_sig_cmp(signature, 0, 8) != 0)
    throw error(name, "not a PNG file");
  detail::png_failure failure;
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &failure, &detail::on_png_error,
                                           &detail::on_png_warning);
  if (!png) throw error(name, "libpng cannot start");
  png_infop info = png_create_info_struct(png);
  struct cleanup {
    png_structp* png;
    png_infop* info;
    ~cleanup() { png_destroy_read_struct(png, info, nullptr); }
  } guard{&png, &info};
  if (!info) throw error(name, "libpng cannot start");
  png_set_sig_bytes(png, 8);

  png_uint_32 width = 0, height = 0;
  int channels = 0;
  const auto max_side = static_cast<png_uint_32>(std::min<std::uint64_t>(limits().max_image_side, 0x7fffffffu));
  if (!detail::png_read_header(png, info, file.get(), max_side, &width, &height, &channels))
    throw error(name, failure.message);
  if (width == 0 || height == 0 || channels < 1 || channels > 4) throw error(name, "PNG has no pixels");
  const std::uint64_t bytes = std::uint64_t{width} * height * static_cast<std::uint64_t>(channels);
  if (bytes > limits().max_total_bytes)
    throw error(name, std::to_string(width) + "x" + std::to_string(height) +
                          " PNG exceeds microcount::limits().max_total_bytes");
  if (png_get_rowbytes(png, info) != std::size_t{width} * static_cast<std::size_t>(channels))
    throw error(name, "unexpected PNG row layout");

  auto pixels = xt::xtensor<std::uint8_t, 3>::from_shape({height, width, static_cast<std::size_t>(channels)});  // [H, W, C]
  std::vector<png_bytep> rows(height);
  for (std::size_t y = 0; y < height; ++y) rows[y] = pixels.data() + y * width * static_cast<std::size_t>(channels);
  if (!detail::png_read_pixels(png, info, rows.data())) throw error(name, failure.message);
  return pixels;
}

// Writes [H, W, C] (C = 1, 2, 3 or 4) as an 8-bit PNG, atomically.
inline void write_png(const std::filesystem::path& path, const xt::xtensor<std::uint8_t, 3>& pixels) {
  const std::string name = path.string();
  const std::size_t H = pixels.shape()[0], W = pixels.shape()[1], C = pixels.shape()[2];
  if (H == 0 || W == 0) throw error(name, "cannot write an empty picture");
  if (C < 1 || C > 4) throw error(name, std::string("a PNG has 1, 2, 3 or 4 channels, not ") + std::to_string(C));
  if (H > 0x7fffffffu || W > 0x7fffffffu) throw error(name, "picture too large for PNG");
  write_atomically(path, [&](const std::filesystem::path& tmp) {
    png_image im;
    std::memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    im.width = static_cast<png_uint_32>(W);
    im.height = static_cast<png_uint_32>(H);
    im.format = C == 1 ? PNG_FORMAT_GRAY : C == 2 ? PNG_FORMAT_GA : C == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_RGBA;
    const int ok = png_image_write_to_file(&im, tmp.c_str(), 0, pixels.data(), 0, nullptr);
    const std::string message = im.message;
    png_image_free(&im);
    if (!ok) throw error(name, "cannot write PNG: " + message);
  });
}

}  // namespace microcount::io
