#pragma once
// TIFF in and out through libtiff's C API.
//
// Reading: every sample type a microscope or a Python tool writes (8/16/32-bit unsigned and signed
// integers, IEEE half/single/double, 1/2/4-bit), 1…n samples per pixel (contiguous or planar),
// strips or tiles, any compression this libtiff decodes (none, LZW, Deflate, PackBits, JPEG, ZSTD, …)
// with or without predictors, classic or BigTIFF, either byte order, single pages, stacks and movies.
// Pages become an image [F, C, H, W] following ImageJ, OME-XML or tifffile metadata when present
// (see tiff_metadata.hpp and docs/images.md); calibration comes along in image::calib.
//
// Writing: float32, uint16 or uint8 pages with ImageJ hyperstack metadata, atomically.
//
// libtiff never prints: its messages are caught per file and become microcount::error("<file>", …).
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <fcntl.h>
#include <sys/types.h>
#include <tiffio.h>
#include <xtensor/xtensor.hpp>

#include "microcount/core/error.hpp"
#include "microcount/core/limits.hpp"
#include "microcount/io/atomic_file.hpp"
#include "microcount/io/image.hpp"
#include "microcount/io/tiff_metadata.hpp"

namespace microcount::io {

// What a TIFF holds, from its headers alone.
struct tiff_info {
  std::size_t width = 0, height = 0;
  std::size_t frames = 0, channels = 0;  // the image read_tiff returns is [frames, channels, height, width]
  std::size_t pages = 0;                 // IFDs in the file's main chain
  dtype sample_type = dtype::uint8;
  calibration calib;
  bool bigtiff = false;
  bool big_endian = false;
  std::string compression;  // "none", "lzw", "deflate", "packbits", "jpeg", "zstd", …
  bool tiled = false;
  bool planar = false;      // samples stored as separate planes (PlanarConfiguration 2)
  std::string metadata;     // how pages were mapped: "ome", "imagej", "tifffile", "plain" (+ why, if ignored)
};

// IEEE 754 binary16 → binary32, exact for every pattern (subnormals, ±0, ±inf, NaN payloads).
inline float half_to_float(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t exponent = (h >> 10) & 0x1fu;
  const std::uint32_t mantissa = h & 0x3ffu;
  if (exponent == 0x1f) return std::bit_cast<float>(sign | 0x7f800000u | (mantissa << 13));  // inf, NaN
  if (exponent != 0) return std::bit_cast<float>(sign | ((exponent + 112u) << 23) | (mantissa << 13));  // 15→127
  // Zero or subnormal: mantissa × 2^-24, exact in binary32.
  const float magnitude = static_cast<float>(mantissa) * 0x1p-24f;
  return sign ? -magnitude : magnitude;
}

namespace detail {

// ---- a libtiff handle whose messages are ours ------------------------------------------------

struct tiff_messages {
  std::string opened;  // the path libtiff was given; its messages often start with it, we name the file ourselves
  std::string errors;  // the first few error messages, "; "-separated
  int error_count = 0;
  int warning_count = 0;
};

inline int collect_tiff_error(TIFF*, void* user, const char*, const char* fmt, va_list ap) {
  auto* m = static_cast<tiff_messages*>(user);
  char text[1024];
  std::vsnprintf(text, sizeof text, fmt, ap);
  if (m->error_count++ < 3) {
    std::string_view message(text);
    if (!m->opened.empty() && message.rfind(m->opened + ": ", 0) == 0) message.remove_prefix(m->opened.size() + 2);
    if (!m->errors.empty()) m->errors += "; ";
    m->errors += message;
  }
  return 1;  // handled: libtiff's global handler (stderr) is not called
}

inline int collect_tiff_warning(TIFF*, void* user, const char*, const char*, va_list) {
  ++static_cast<tiff_messages*>(user)->warning_count;
  return 1;
}

// Owns a TIFF* opened with per-file error/warning handlers and a memory cap. Errors are thrown as
// microcount::error(name, …) where `name` is the file the user knows (not a temporary name).
class tiff_handle {
 public:
  tiff_handle(const std::filesystem::path& path, const char* mode, std::string name)
      : name_(std::move(name)), options_(TIFFOpenOptionsAlloc()) {
    messages_.opened = path.string();
    TIFFOpenOptionsSetErrorHandlerExtR(options_, &collect_tiff_error, &messages_);
    TIFFOpenOptionsSetWarningHandlerExtR(options_, &collect_tiff_warning, &messages_);
    // libtiff's own allocations (strip buffers, tag arrays) stay within our limit too (with a floor,
    // so a deliberately small limit still lets libtiff read ordinary headers and we can say why).
    const std::uint64_t cap = std::min<std::uint64_t>(std::max<std::uint64_t>(limits().max_total_bytes, 64u << 20),
                                                      static_cast<std::uint64_t>(std::numeric_limits<tmsize_t>::max()));
    TIFFOpenOptionsSetMaxSingleMemAlloc(options_, static_cast<tmsize_t>(cap));
    tif_ = TIFFOpenExt(path.c_str(), mode, options_);
    if (!tif_) {
      TIFFOpenOptionsFree(options_);
      std::string why = messages_.errors.empty() ? "cannot open" : messages_.errors;
      if (why.find("magic number") != std::string::npos || why.find("Not a TIFF") != std::string::npos)
        why = "not a TIFF file (" + why + ")";
      else if (why.find("Cannot read TIFF header") != std::string::npos)
        why = "not a TIFF file (too short for a TIFF header)";
      throw error(name_, why);
    }
  }
  tiff_handle(const tiff_handle&) = delete;
  tiff_handle& operator=(const tiff_handle&) = delete;
  ~tiff_handle() {
    if (tif_) TIFFClose(tif_);
    if (options_) TIFFOpenOptionsFree(options_);
  }

  [[nodiscard]] TIFF* get() const { return tif_; }
  [[nodiscard]] const std::string& name() const { return name_; }
  [[nodiscard]] bool had_error() const { return messages_.error_count > 0; }
  void clear_errors() {
    messages_.errors.clear();
    messages_.error_count = 0;
  }

  // Throws error(name, what + ": " + what libtiff said).
  [[noreturn]] void fail(const std::string& what) const {
    throw error(name_, messages_.errors.empty() ? what : what + ": " + messages_.errors);
  }

  // Closes the file (flushing a written one); a failure is thrown.
  void close() {
    if (!tif_) return;
    const int flushed = (TIFFGetMode(tif_) & O_ACCMODE) != O_RDONLY ? TIFFFlush(tif_) : 1;
    TIFFClose(tif_);
    tif_ = nullptr;
    if (!flushed || had_error()) fail("cannot finish writing");
  }

 private:
  std::string name_;
  tiff_messages messages_;
  TIFFOpenOptions* options_ = nullptr;
  TIFF* tif_ = nullptr;
};

// ---- one page's format -----------------------------------------------------------------------

struct page_format {
  std::uint32_t width = 0, height = 0;
  std::uint16_t samples = 1, bits = 1, sample_format = SAMPLEFORMAT_UINT;
  std::uint16_t planar = PLANARCONFIG_CONTIG, compression = COMPRESSION_NONE, photometric = PHOTOMETRIC_MINISBLACK;
  bool tiled = false;
  std::uint32_t tile_width = 0, tile_height = 0, rows_per_strip = 0;
  bool reduced = false;  // a reduced-resolution copy (thumbnail / pyramid level), not data
  std::optional<dtype> type;
  std::string unsupported;  // why this page cannot be decoded; empty when it can

  [[nodiscard]] bool same_data(const page_format& o) const {
    return width == o.width && height == o.height && samples == o.samples && bits == o.bits &&
           sample_format == o.sample_format;
  }
  [[nodiscard]] std::size_t bytes_per_sample() const { return bits < 8 ? 1 : bits / 8u; }
  [[nodiscard]] std::string describe() const {
    std::string s = std::to_string(width) + "x" + std::to_string(height) + " ";
    s += type ? std::string(dtype_name(*type)) : std::to_string(bits) + "-bit";
    if (bits < 8) s += std::string(" (") + std::to_string(bits) + "-bit)";
    if (samples > 1) s += std::string(" x") + std::to_string(samples) + " samples";
    return s;
  }
};

inline std::string compression_name(std::uint16_t c) {
  switch (c) {
    case COMPRESSION_NONE: return "none";
    case COMPRESSION_LZW: return "lzw";
    case COMPRESSION_ADOBE_DEFLATE:
    case COMPRESSION_DEFLATE: return "deflate";
    case COMPRESSION_PACKBITS: return "packbits";
    case COMPRESSION_JPEG: return "jpeg";
    case COMPRESSION_OJPEG: return "old-jpeg";
    case COMPRESSION_CCITTRLE:
    case COMPRESSION_CCITTRLEW:
    case COMPRESSION_CCITTFAX3:
    case COMPRESSION_CCITTFAX4: return "ccitt";
    case COMPRESSION_LZMA: return "lzma";
    case COMPRESSION_ZSTD: return "zstd";
    case COMPRESSION_WEBP: return "webp";
    case COMPRESSION_JBIG: return "jbig";
    case COMPRESSION_LERC: return "lerc";
    case COMPRESSION_JXL: return "jpegxl";
    default: return std::string("compression ") + std::to_string(c);
  }
}

inline std::optional<dtype> dtype_of(std::uint16_t sample_format, std::uint16_t bits) {
  switch (sample_format) {
    case SAMPLEFORMAT_UINT:
    case SAMPLEFORMAT_VOID:
      if (bits <= 8 && (bits == 1 || bits == 2 || bits == 4 || bits == 8)) return dtype::uint8;
      if (bits == 16) return dtype::uint16;
      if (bits == 32) return dtype::uint32;
      return std::nullopt;
    case SAMPLEFORMAT_INT:
      if (bits == 8) return dtype::int8;
      if (bits == 16) return dtype::int16;
      if (bits == 32) return dtype::int32;
      return std::nullopt;
    case SAMPLEFORMAT_IEEEFP:
      if (bits == 16) return dtype::float16;
      if (bits == 32) return dtype::float32;
      if (bits == 64) return dtype::float64;
      return std::nullopt;
    default: return std::nullopt;
  }
}

// The format of the current directory. JPEG-compressed YCbCr is switched to RGB output here
// (libtiff's JPEGCOLORMODE is per directory, so this runs after every directory change).
inline page_format read_page_format(TIFF* tif) {
  page_format f;
  TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &f.width);
  TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &f.height);
  TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLESPERPIXEL, &f.samples);
  TIFFGetFieldDefaulted(tif, TIFFTAG_BITSPERSAMPLE, &f.bits);
  TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLEFORMAT, &f.sample_format);
  TIFFGetFieldDefaulted(tif, TIFFTAG_PLANARCONFIG, &f.planar);
  TIFFGetFieldDefaulted(tif, TIFFTAG_COMPRESSION, &f.compression);
  if (!TIFFGetField(tif, TIFFTAG_PHOTOMETRIC, &f.photometric))
    f.photometric = f.samples >= 3 ? PHOTOMETRIC_RGB : PHOTOMETRIC_MINISBLACK;
  std::uint32_t subfile = 0;
  if (TIFFGetField(tif, TIFFTAG_SUBFILETYPE, &subfile)) f.reduced = (subfile & FILETYPE_REDUCEDIMAGE) != 0;
  f.tiled = TIFFIsTiled(tif) != 0;
  if (f.tiled) {
    TIFFGetField(tif, TIFFTAG_TILEWIDTH, &f.tile_width);
    TIFFGetField(tif, TIFFTAG_TILELENGTH, &f.tile_height);
  } else {
    TIFFGetFieldDefaulted(tif, TIFFTAG_ROWSPERSTRIP, &f.rows_per_strip);
    if (f.rows_per_strip == 0 || f.rows_per_strip > f.height) f.rows_per_strip = f.height;
  }
  if (f.compression == COMPRESSION_JPEG && f.photometric == PHOTOMETRIC_YCBCR) {
    TIFFSetField(tif, TIFFTAG_JPEGCOLORMODE, JPEGCOLORMODE_RGB);
    f.photometric = PHOTOMETRIC_RGB;
  }
  f.type = dtype_of(f.sample_format, f.bits);
  if (!f.type) {
    const char* kind = f.sample_format == SAMPLEFORMAT_IEEEFP ? "floating-point"
                       : f.sample_format == SAMPLEFORMAT_INT  ? "signed integer"
                       : (f.sample_format == SAMPLEFORMAT_COMPLEXINT || f.sample_format == SAMPLEFORMAT_COMPLEXIEEEFP)
                           ? "complex"
                           : "unsigned integer";
    f.unsupported = std::to_string(f.bits) + "-bit " + kind + " samples are not supported";
  } else if (f.bits < 8 && f.samples != 1) {
    f.unsupported = std::to_string(f.bits) + "-bit images with several samples per pixel are not supported";
  } else if (f.photometric == PHOTOMETRIC_YCBCR) {
    f.unsupported = "YCbCr images (other than JPEG-compressed) are not supported; convert to RGB";
  } else if (f.photometric == PHOTOMETRIC_LOGL || f.photometric == PHOTOMETRIC_LOGLUV) {
    f.unsupported = "LogL/LogLuv images are not supported";
  } else if (f.compression == COMPRESSION_OJPEG) {
    f.unsupported = "old-style JPEG compression (6) is not supported; re-save the file";
  } else if (!TIFFIsCODECConfigured(f.compression)) {
    f.unsupported = compression_name(f.compression) + " is not available in this libtiff";
  } else if (f.tiled && (f.tile_width == 0 || f.tile_height == 0)) {
    f.unsupported = "tile size is zero";
  }
  return f;
}

inline bool host_is_little_endian() { return std::endian::native == std::endian::little; }

// ---- the file's page map ---------------------------------------------------------------------

struct tiff_scan {
  std::vector<std::uint64_t> ifd_offsets;  // [pages]
  std::vector<page_format> formats;        // [pages]
  page_format data_format;                 // format shared by every page the layout uses
  axis_layout layout;
  bool bigtiff = false, big_endian = false;
  std::uint64_t contiguous_offset = 0;     // layout.contiguous: file offset of plane 0

  [[nodiscard]] std::size_t channels() const { return layout.planes * data_format.samples; }
};

inline std::string frames_channels_text(std::uint64_t f, std::uint64_t c, const page_format& p) {
  return std::to_string(f) + " frames x " + std::to_string(c) + " channels x " + std::to_string(p.height) + "x" +
         std::to_string(p.width);
}

// Checks a [frames, channels, H, W] float image against microcount::limits() before allocating.
inline void check_output_size(const std::string& name, std::uint64_t frames, std::uint64_t channels,
                              const page_format& p) {
  const unsigned __int128 bytes = static_cast<unsigned __int128>(frames) * channels * p.height * p.width * sizeof(float);
  if (bytes > limits().max_total_bytes)
    throw error(name, frames_channels_text(frames, channels, p) + " needs " +
                          std::to_string(static_cast<double>(bytes) / (1 << 20)) + " MiB as float, over the limit of " +
                          std::to_string(limits().max_total_bytes >> 20) + " MiB (microcount::limits().max_total_bytes)");
}

// Walks every IFD (headers only), interprets the metadata and checks that the pages agree.
inline tiff_scan scan_tiff(tiff_handle& h, const std::filesystem::path& path) {
  TIFF* tif = h.get();
  tiff_scan s;
  s.bigtiff = TIFFIsBigTIFF(tif) != 0;
  s.big_endian = (TIFFIsByteSwapped(tif) != 0) == host_is_little_endian();
  std::string description;
  for (;;) {
    if (s.ifd_offsets.size() >= limits().max_pages)
      throw error(h.name(), std::string("more than ") + std::to_string(limits().max_pages) +
                                " pages (microcount::limits().max_pages)");
    s.ifd_offsets.push_back(TIFFCurrentDirOffset(tif));
    s.formats.push_back(read_page_format(tif));
    if (s.ifd_offsets.size() == 1) {
      const char* text = nullptr;
      if (TIFFGetField(tif, TIFFTAG_IMAGEDESCRIPTION, &text) && text) description = text;
    }
    h.clear_errors();
    if (!TIFFReadDirectory(tif)) {
      if (h.had_error()) h.fail(std::string("cannot read page ") + std::to_string(s.ifd_offsets.size()));
      break;
    }
  }
  std::vector<std::uint32_t> image_pages;  // full-resolution pages, in file order
  for (std::size_t i = 0; i < s.formats.size(); ++i)
    if (!s.formats[i].reduced) image_pages.push_back(static_cast<std::uint32_t>(i));
  if (image_pages.empty()) image_pages.push_back(0);

  // Resolution tags of the first data page.
  resolution_tags res;
  {
    h.clear_errors();
    if (!TIFFSetSubDirectory(tif, s.ifd_offsets[image_pages[0]])) h.fail(std::string("cannot read page ") + std::to_string(image_pages[0]));
    read_page_format(tif);
    float x = 0, y = 0;
    if (TIFFGetField(tif, TIFFTAG_XRESOLUTION, &x)) res.x = x;
    if (TIFFGetField(tif, TIFFTAG_YRESOLUTION, &y)) res.y = y;
    TIFFGetFieldDefaulted(tif, TIFFTAG_RESOLUTIONUNIT, &res.unit);
  }

  const page_format& first = s.formats[image_pages[0]];
  layout_attempt attempt;
  if (is_ome_xml(description)) {
    attempt = ome_layout(description, first.width, first.height, first.samples, s.formats.size(),
                         path.filename().string());
  } else if (auto ij = parse_imagej(description)) {
    attempt = imagej_layout(*ij, image_pages, res);
    // Planes stored back to back after one IFD: only for an uncompressed, contiguous first page.
    if (attempt.layout && attempt.layout->contiguous) {
      const page_format& p = first;
      const std::uint64_t plane_bytes = std::uint64_t{p.width} * p.height * p.samples * p.bytes_per_sample();
      std::string why;
      if (p.compression != COMPRESSION_NONE || p.tiled || p.bits < 8)
        why = std::string("ImageJ metadata says images=") + std::to_string(attempt.layout->page_of.size()) + " but the file has " +
              std::to_string(image_pages.size()) + " pages";
      std::uint64_t offset = 0, expected_next = 0;
      const std::uint32_t strips = TIFFNumberOfStrips(tif);
      for (std::uint32_t k = 0; why.empty() && k < strips; ++k) {
        int ok = 0;
        const std::uint64_t at = TIFFGetStrileOffsetWithErr(tif, k, &ok), n = TIFFGetStrileByteCountWithErr(tif, k, &ok);
        if (k == 0) offset = at;
        else if (at != expected_next) why = "ImageJ stack with missing pages whose strips are not contiguous";
        expected_next = at + n;
      }
      std::error_code ec;
      const std::uint64_t file_size = std::filesystem::file_size(path, ec);
      const unsigned __int128 needed =
          static_cast<unsigned __int128>(offset) + static_cast<unsigned __int128>(plane_bytes) * attempt.layout->page_of.size();
      if (why.empty() && (ec || needed > file_size))
        why = std::string("ImageJ metadata says images=") + std::to_string(attempt.layout->page_of.size()) +
              " but the file holds only " + std::to_string(image_pages.size()) + " pages (truncated?)";
      if (!why.empty()) attempt = {std::nullopt, why};
      else s.contiguous_offset = offset;
    }
  } else if (auto shaped = tifffile_layout(description, image_pages, first.samples, res)) {
    attempt = std::move(*shaped);
  } else {
    attempt.layout = plain_layout(image_pages, res);
  }
  s.layout = attempt.layout ? std::move(*attempt.layout) : plain_layout(image_pages, res, attempt.why_not);

  // Every page the layout uses must be decodable and share size and type with the first.
  const std::uint32_t first_page = s.layout.contiguous ? image_pages[0] : s.layout.page_of[0];
  s.data_format = s.formats[first_page];
  const page_format& d = s.data_format;
  if (!d.unsupported.empty()) throw error(h.name(), std::string("page ") + std::to_string(first_page) + ": " + d.unsupported);
  if (d.width == 0 || d.height == 0) throw error(h.name(), "image has zero size (" + d.describe() + ")");
  if (d.width > limits().max_image_side || d.height > limits().max_image_side)
    throw error(h.name(), d.describe() + " is larger than " + std::to_string(limits().max_image_side) +
                              " pixels along a side (microcount::limits().max_image_side)");
  if (!s.layout.contiguous) {
    for (const std::uint32_t page : s.layout.page_of) {
      const page_format& p = s.formats[page];
      if (!p.same_data(d))
        throw error(h.name(), std::string("page ") + std::to_string(page) + " is " + p.describe() + " but page " +
                                  std::to_string(first_page) + " is " + d.describe() +
                                  " (all pages must share size and type)");
      if (!p.unsupported.empty()) throw error(h.name(), std::string("page ") + std::to_string(page) + ": " + p.unsupported);
    }
  }
  check_output_size(h.name(), s.layout.frames, s.channels(), d);
  // Uncompressed pixels must fit in the file: a header that promises more is caught before allocating.
  if (d.compression == COMPRESSION_NONE) {
    const unsigned __int128 page_bytes =
        static_cast<unsigned __int128>((std::uint64_t{d.width} * d.samples * d.bits + 7) / 8) * d.height;
    const std::uint64_t n_pages = s.layout.page_of.size();  // planes, also for a contiguous stack
    std::error_code ec;
    const std::uint64_t file_size = std::filesystem::file_size(path, ec);
    if (!ec && page_bytes * n_pages > file_size)
      throw error(h.name(), std::string("the header promises ") + std::to_string(static_cast<std::uint64_t>(page_bytes * n_pages)) +
                                " bytes of uncompressed pixels but the file has " + std::to_string(file_size) +
                                " bytes (truncated?)");
  }
  return s;
}

// ---- decoding --------------------------------------------------------------------------------

template <class T>
  requires std::is_arithmetic_v<T>
void convert_run(const unsigned char* src, std::size_t stride_samples, std::size_t n, float* dst) {
  const std::size_t step = stride_samples * sizeof(T);
  for (std::size_t i = 0; i < n; ++i) {
    T v;
    std::memcpy(&v, src + i * step, sizeof(T));
    dst[i] = static_cast<float>(v);
  }
}

inline void convert_half_run(const unsigned char* src, std::size_t stride_samples, std::size_t n, float* dst) {
  const std::size_t step = stride_samples * 2;
  for (std::size_t i = 0; i < n; ++i) {
    std::uint16_t v;
    std::memcpy(&v, src + i * step, 2);
    dst[i] = half_to_float(v);
  }
}

// n samples (native byte order) every `stride_samples`-th from src → float.
inline void convert_samples(dtype t, const unsigned char* src, std::size_t stride_samples, std::size_t n, float* dst) {
  switch (t) {
    case dtype::uint8: return convert_run<std::uint8_t>(src, stride_samples, n, dst);
    case dtype::int8: return convert_run<std::int8_t>(src, stride_samples, n, dst);
    case dtype::uint16: return convert_run<std::uint16_t>(src, stride_samples, n, dst);
    case dtype::int16: return convert_run<std::int16_t>(src, stride_samples, n, dst);
    case dtype::uint32: return convert_run<std::uint32_t>(src, stride_samples, n, dst);
    case dtype::int32: return convert_run<std::int32_t>(src, stride_samples, n, dst);
    case dtype::float16: return convert_half_run(src, stride_samples, n, dst);
    case dtype::float32: return convert_run<float>(src, stride_samples, n, dst);
    case dtype::float64: return convert_run<double>(src, stride_samples, n, dst);
  }
}

// Sub-byte samples (1, 2 or 4 bits, most significant first, one sample per pixel).
inline void unpack_bits(const unsigned char* row, unsigned bits, std::size_t first, std::size_t n, float* dst) {
  const unsigned mask = (1u << bits) - 1;
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t bit = (first + i) * bits;
    dst[i] = static_cast<float>((row[bit >> 3] >> (8 - bits - (bit & 7))) & mask);
  }
}

// An uninitialised byte buffer reused between chunks (untouched pages cost no memory).
struct scratch_bytes {
  std::unique_ptr<unsigned char[]> data;
  std::size_t size = 0;
  unsigned char* get(std::size_t n) {
    if (n > size) {
      data.reset(new unsigned char[n]);
      size = n;
    }
    return data.get();
  }
};

// Copies a decoded chunk (rows × row_bytes; `chunk_samples` interleaved samples per pixel) to the
// page's planes. out: [samples, H, W] of this page.
inline void place_chunk(const page_format& f, const unsigned char* chunk, std::size_t row_bytes,
                        std::size_t chunk_samples, std::size_t plane, std::size_t y0, std::size_t x0,
                        std::size_t rows, std::size_t cols, float* out) {
  const std::size_t H = f.height, W = f.width, bps = f.bytes_per_sample();
  for (std::size_t r = 0; r < rows; ++r) {
    const unsigned char* row = chunk + r * row_bytes;
    for (std::size_t s = 0; s < chunk_samples; ++s) {
      float* dst = out + ((plane + s) * H + y0 + r) * W + x0;  // [s][y][x0…]
      if (f.bits < 8) unpack_bits(row, f.bits, 0, cols, dst);
      else convert_samples(*f.type, row + s * bps, chunk_samples, cols, dst);
    }
  }
}

// Decodes the current directory into out: [samples, H, W].
inline void decode_current_page(tiff_handle& h, const page_format& f, std::size_t page, float* out,
                                scratch_bytes& scratch) {
  TIFF* tif = h.get();
  const bool separate = f.planar == PLANARCONFIG_SEPARATE && f.samples > 1;
  const std::size_t chunk_samples = separate ? 1 : f.samples;
  const std::size_t planes = separate ? f.samples : 1;
  const std::string where = std::string("page ") + std::to_string(page);
  auto check_chunk_size = [&](std::uint64_t bytes) {
    if (bytes == 0 || bytes > limits().max_total_bytes)
      throw error(h.name(), where + ": a strip or tile of " + std::to_string(bytes) + " bytes is not plausible");
  };
  if (f.tiled) {
    const std::size_t tw = f.tile_width, th = f.tile_height;
    const std::uint64_t tile_bytes = TIFFTileSize64(tif);
    check_chunk_size(tile_bytes);
    const std::size_t row_bytes = (tw * chunk_samples * f.bits + 7) / 8;
    if (tile_bytes < row_bytes * th) throw error(h.name(), where + ": tile size does not match the tile shape");
    unsigned char* buf = scratch.get(tile_bytes);
    for (std::size_t p = 0; p < planes; ++p)
      for (std::size_t y0 = 0; y0 < f.height; y0 += th)
        for (std::size_t x0 = 0; x0 < f.width; x0 += tw) {
          const std::uint32_t tile = TIFFComputeTile(tif, static_cast<std::uint32_t>(x0), static_cast<std::uint32_t>(y0),
                                                     0, static_cast<std::uint16_t>(p));
          h.clear_errors();
          const tmsize_t got = TIFFReadEncodedTile(tif, tile, buf, static_cast<tmsize_t>(tile_bytes));
          if (got < 0 || static_cast<std::uint64_t>(got) < tile_bytes)
            h.fail(where + ", tile " + std::to_string(tile) + ": cannot decode (truncated or corrupt file)");
          place_chunk(f, buf, row_bytes, chunk_samples, p, y0, x0, std::min(th, f.height - y0),
                      std::min(tw, f.width - x0), out);
        }
  } else {
    const std::size_t rps = f.rows_per_strip;
    const std::size_t row_bytes = (std::size_t{f.width} * chunk_samples * f.bits + 7) / 8;
    const std::uint64_t strip_bytes = TIFFVStripSize64(tif, static_cast<std::uint32_t>(rps));
    check_chunk_size(strip_bytes);
    if (strip_bytes < row_bytes * rps) throw error(h.name(), where + ": strip size does not match the strip shape");
    unsigned char* buf = scratch.get(strip_bytes);
    const std::uint32_t n_strips = TIFFNumberOfStrips(tif);
    for (std::size_t p = 0; p < planes; ++p)
      for (std::size_t y0 = 0; y0 < f.height; y0 += rps) {
        const std::size_t rows = std::min(rps, f.height - y0);
        const std::uint32_t strip =
            TIFFComputeStrip(tif, static_cast<std::uint32_t>(y0), static_cast<std::uint16_t>(p));
        if (strip >= n_strips) throw error(h.name(), where + ": strip " + std::to_string(strip) + " is missing");
        const tmsize_t want = static_cast<tmsize_t>(rows * row_bytes);
        h.clear_errors();
        const tmsize_t got = TIFFReadEncodedStrip(tif, strip, buf, want);
        if (got < want)
          h.fail(where + ", strip " + std::to_string(strip) + ": cannot decode (truncated or corrupt file)");
        place_chunk(f, buf, row_bytes, chunk_samples, p, y0, 0, rows, f.width, out);
      }
  }
}

// Reads plane k of an ImageJ-style contiguous stack straight from the file. out: [samples, H, W].
inline void decode_contiguous_plane(const tiff_handle& h, const std::filesystem::path& path, const tiff_scan& s,
                                    std::size_t k, float* out, scratch_bytes& scratch) {
  const page_format& f = s.data_format;
  const std::size_t bps = f.bytes_per_sample();
  const std::size_t plane_bytes = std::size_t{f.width} * f.height * f.samples * bps;
  unsigned char* buf = scratch.get(plane_bytes);
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!file) throw error(h.name(), "cannot open");
  const std::uint64_t at = s.contiguous_offset + static_cast<std::uint64_t>(k) * plane_bytes;
  if (::fseeko(file.get(), static_cast<off_t>(at), SEEK_SET) != 0 ||
      std::fread(buf, 1, plane_bytes, file.get()) != plane_bytes)
    throw error(h.name(), std::string("plane ") + std::to_string(k) + ": truncated (ImageJ contiguous stack)");
  if (s.big_endian == host_is_little_endian() && bps > 1)
    for (std::size_t i = 0; i < plane_bytes; i += bps) std::reverse(buf + i, buf + i + bps);
  // Samples are interleaved (contiguous planar configuration or a single sample).
  for (std::size_t y = 0; y < f.height; ++y)
    for (std::size_t c = 0; c < f.samples; ++c)
      convert_samples(*f.type, buf + (y * f.width * f.samples + c) * bps, f.samples, f.width,
                      out + (c * f.height + y) * f.width);
}

inline image read_frames(const std::filesystem::path& path, std::size_t first, std::optional<std::size_t> count) {
  const std::string name = path.string();
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) throw error(name, "no such file");
  if (std::filesystem::is_directory(path, ec)) throw error(name, "is a folder, not a TIFF file");
  tiff_handle h(path, "r", name);
  const tiff_scan s = scan_tiff(h, path);
  const std::size_t frames = s.layout.frames;
  const std::size_t n = count.value_or(frames - std::min(first, frames));
  if (n == 0 || first >= frames || n > frames - first)
    throw error(name, std::string("frames ") + std::to_string(first) + "…" + std::to_string(first + n) + " requested but the file has " +
                          std::to_string(frames) + " frames");
  const page_format& f = s.data_format;
  const std::size_t C = s.channels(), H = f.height, W = f.width, planes = s.layout.planes;
  check_output_size(name, n, C, f);

  image img;
  img.pixels = xt::xtensor<float, 4>::from_shape({n, C, H, W});  // [F, C, H, W]
  img.source_dtype = *f.type;
  img.calib = s.layout.calib;
  scratch_bytes scratch;
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t p = 0; p < planes; ++p) {
      const std::uint32_t page = s.layout.page_of[(first + i) * planes + p];
      float* out = img.pixels.data() + ((i * C) + p * f.samples) * H * W;  // [samples, H, W] of this page
      if (s.layout.contiguous) {
        decode_contiguous_plane(h, path, s, page, out, scratch);
        continue;
      }
      h.clear_errors();
      if (!TIFFSetSubDirectory(h.get(), s.ifd_offsets[page])) h.fail(std::string("cannot read page ") + std::to_string(page));
      const page_format current = read_page_format(h.get());
      decode_current_page(h, current, page, out, scratch);
    }
  return img;
}

// ---- writing ---------------------------------------------------------------------------------

// The ImageJ hyperstack description for F frames × C channels (planes in XYCZT order).
inline std::string imagej_description_for(std::size_t frames, std::size_t channels, const calibration& calib,
                                          double lo, double hi) {
  std::ostringstream d;
  d.precision(17);
  d << "ImageJ=1.54f\nimages=" << frames * channels << '\n';
  if (channels > 1) d << "channels=" << channels << '\n';
  // Z-stacks (a z step and no frame interval) stay slices so Fiji shows them as such.
  const bool as_slices = calib.pixel_size_z && !calib.frame_interval;
  if (frames > 1) d << (as_slices ? "slices=" : "frames=") << frames << '\n';
  if (channels > 1 || frames > 1) d << "hyperstack=true\nmode=grayscale\n";
  if (calib.pixel_size_x && !calib.unit.empty()) {
    std::string unit = normalize_length_unit(calib.unit);
    if (unit == "um") unit = "micron";
    for (char& ch : unit)
      if (ch == '\n' || ch == '=' || static_cast<unsigned char>(ch) >= 0x80) ch = '_';
    d << "unit=" << unit << '\n';
    if (as_slices && frames > 1) d << "spacing=" << *calib.pixel_size_z << '\n';
  }
  if (calib.frame_interval && frames > 1) d << "finterval=" << *calib.frame_interval << '\n';
  d << "loop=false\n";
  if (lo <= hi) d << "min=" << lo << "\nmax=" << hi << '\n';
  return d.str();
}

template <class T>
  requires std::is_integral_v<T> && std::is_unsigned_v<T>
T to_integer_sample(float v) {
  constexpr float top = static_cast<float>(std::numeric_limits<T>::max());
  if (!(v > 0.0f)) return 0;  // also NaN
  if (v >= top) return std::numeric_limits<T>::max();
  return static_cast<T>(std::lround(v));
}

}  // namespace detail

// Headers only: size, frames × channels, sample type, calibration, layout facts.
inline tiff_info read_tiff_info(const std::filesystem::path& path) {
  const std::string name = path.string();
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) throw error(name, "no such file");
  if (std::filesystem::is_directory(path, ec)) throw error(name, "is a folder, not a TIFF file");
  detail::tiff_handle h(path, "r", name);
  const detail::tiff_scan s = detail::scan_tiff(h, path);
  tiff_info info;
  info.width = s.data_format.width;
  info.height = s.data_format.height;
  info.frames = s.layout.frames;
  info.channels = s.channels();
  info.pages = s.ifd_offsets.size();
  info.sample_type = *s.data_format.type;
  info.calib = s.layout.calib;
  info.bigtiff = s.bigtiff;
  info.big_endian = s.big_endian;
  info.compression = detail::compression_name(s.data_format.compression);
  info.tiled = s.data_format.tiled;
  info.planar = s.data_format.planar == PLANARCONFIG_SEPARATE && s.data_format.samples > 1;
  info.metadata = s.layout.origin;
  return info;
}

// The whole file as [F, C, H, W] float, with source_dtype and calibration.
inline image read_tiff(const std::filesystem::path& path) { return detail::read_frames(path, 0, std::nullopt); }

// Frames [first, first + count) as [count, C, H, W]; a range past the end is an error.
inline image read_tiff_frames(const std::filesystem::path& path, std::size_t first, std::size_t count) {
  return detail::read_frames(path, first, count);
}

enum class tiff_compression : std::uint8_t { none, deflate };

// Writes img as F × C pages of `as` (float32, uint16 or uint8; integers rounded and clamped, NaN → 0)
// with ImageJ hyperstack metadata and calibration, so Fiji and read_tiff see [F, C, H, W].
// Deflate uses the horizontal predictor for integer types. Atomic: the old file stays on failure.
inline void write_tiff(const std::filesystem::path& path, const image& img, dtype as = dtype::float32,
                       tiff_compression compression = tiff_compression::none) {
  const std::string name = path.string();
  if (as != dtype::float32 && as != dtype::uint16 && as != dtype::uint8)
    throw error(name, "write_tiff writes float32, uint16 or uint8, not " + std::string(dtype_name(as)));
  const std::size_t F = img.frames(), C = img.channels(), H = img.height(), W = img.width();
  if (F == 0 || C == 0 || H == 0 || W == 0) throw error(name, "cannot write an empty image");
  if (H > 0xffffffffu || W > 0xffffffffu) throw error(name, "image too large for TIFF");
  const std::size_t bps = as == dtype::float32 ? 4 : as == dtype::uint16 ? 2 : 1;
  // BigTIFF when the classic 32-bit offsets might not reach (leave room for tags and compression overhead).
  const bool bigtiff = static_cast<unsigned __int128>(F) * C * H * W * bps > (std::uint64_t{1} << 32) - (1u << 26);

  float lo = std::numeric_limits<float>::infinity(), hi = -lo;
  for (const float v : img.pixels)
    if (std::isfinite(v)) {
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
  if (as != dtype::float32 && lo <= hi) {  // ImageJ's display range in the stored units
    const double top = as == dtype::uint16 ? 65535.0 : 255.0;
    lo = static_cast<float>(std::clamp<double>(std::round(lo), 0, top));
    hi = static_cast<float>(std::clamp<double>(std::round(hi), 0, top));
  }
  const std::string description = detail::imagej_description_for(F, C, img.calib, lo, hi);
  const std::size_t row_bytes = W * bps;
  const std::size_t rows_per_strip = std::max<std::size_t>(1, std::min<std::size_t>(H, (256u << 10) / row_bytes));

  write_atomically(path, [&](const std::filesystem::path& tmp) {
    detail::tiff_handle h(tmp, bigtiff ? "w8" : "w", name);
    TIFF* tif = h.get();
    std::vector<unsigned char> strip(rows_per_strip * row_bytes);
    for (std::size_t f = 0; f < F; ++f)
      for (std::size_t c = 0; c < C; ++c) {
        TIFFSetField(tif, TIFFTAG_IMAGEWIDTH, static_cast<std::uint32_t>(W));
        TIFFSetField(tif, TIFFTAG_IMAGELENGTH, static_cast<std::uint32_t>(H));
        TIFFSetField(tif, TIFFTAG_BITSPERSAMPLE, static_cast<std::uint16_t>(bps * 8));
        TIFFSetField(tif, TIFFTAG_SAMPLEFORMAT,
                     static_cast<std::uint16_t>(as == dtype::float32 ? SAMPLEFORMAT_IEEEFP : SAMPLEFORMAT_UINT));
        TIFFSetField(tif, TIFFTAG_SAMPLESPERPIXEL, std::uint16_t{1});
        TIFFSetField(tif, TIFFTAG_PHOTOMETRIC, std::uint16_t{PHOTOMETRIC_MINISBLACK});
        TIFFSetField(tif, TIFFTAG_PLANARCONFIG, std::uint16_t{PLANARCONFIG_CONTIG});
        TIFFSetField(tif, TIFFTAG_ROWSPERSTRIP, static_cast<std::uint32_t>(rows_per_strip));
        if (F * C > 1) TIFFSetField(tif, TIFFTAG_SUBFILETYPE, std::uint32_t{FILETYPE_PAGE});
        if (compression == tiff_compression::deflate) {
          TIFFSetField(tif, TIFFTAG_COMPRESSION, std::uint16_t{COMPRESSION_ADOBE_DEFLATE});
          if (as != dtype::float32) TIFFSetField(tif, TIFFTAG_PREDICTOR, std::uint16_t{PREDICTOR_HORIZONTAL});
        }
        if (f == 0 && c == 0) {
          TIFFSetField(tif, TIFFTAG_IMAGEDESCRIPTION, description.c_str());
          TIFFSetField(tif, TIFFTAG_SOFTWARE, "microcount");
        }
        if (img.calib.pixel_size_x && *img.calib.pixel_size_x > 0) {
          const double px = *img.calib.pixel_size_x, py = img.calib.pixel_size_y.value_or(px);
          TIFFSetField(tif, TIFFTAG_XRESOLUTION, 1.0 / px);
          TIFFSetField(tif, TIFFTAG_YRESOLUTION, 1.0 / py);
          TIFFSetField(tif, TIFFTAG_RESOLUTIONUNIT, std::uint16_t{RESUNIT_NONE});
        }
        const float* plane = img.pixels.data() + (f * C + c) * H * W;  // [H, W]
        for (std::size_t y0 = 0, k = 0; y0 < H; y0 += rows_per_strip, ++k) {
          const std::size_t rows = std::min(rows_per_strip, H - y0);
          const float* src = plane + y0 * W;
          const std::size_t n = rows * W;
          unsigned char* dst = strip.data();
          if (as == dtype::float32) {
            std::memcpy(dst, src, n * 4);
          } else if (as == dtype::uint16) {
            for (std::size_t i = 0; i < n; ++i) {
              const std::uint16_t v = detail::to_integer_sample<std::uint16_t>(src[i]);
              std::memcpy(dst + 2 * i, &v, 2);
            }
          } else {
            for (std::size_t i = 0; i < n; ++i) dst[i] = detail::to_integer_sample<std::uint8_t>(src[i]);
          }
          if (TIFFWriteEncodedStrip(tif, static_cast<std::uint32_t>(k), dst, static_cast<tmsize_t>(rows * row_bytes)) < 0)
            h.fail(std::string("cannot write page ") + std::to_string(f * C + c));
        }
        if (!TIFFWriteDirectory(tif)) h.fail(std::string("cannot write page ") + std::to_string(f * C + c));
      }
    h.close();
  });
}

}  // namespace microcount::io
