// TIFF reader/writer tests. Fixtures are written here with libtiff's raw API (not with write_tiff)
// or byte by byte, with known pixel values, and read back exactly.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include <tiffio.h>
#include <unistd.h>
#include <zlib.h>

#include "microcount/core/rng.hpp"
#include "microcount/io/tiff.hpp"
#include "test_support.hpp"

using namespace microcount;
using io::dtype;
namespace fs = std::filesystem;

static_assert(std::endian::native == std::endian::little, "fixtures assume a little-endian host");

namespace {

// ---- known values ------------------------------------------------------------------------------

std::uint64_t mix(std::uint64_t k) {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdull;
  k ^= k >> 33;
  k *= 0xc4ceb9fe1a85ec53ull;
  return k ^ (k >> 33);
}

std::size_t bytes_of(dtype t) {
  switch (t) {
    case dtype::uint8: case dtype::int8: return 1;
    case dtype::uint16: case dtype::int16: case dtype::float16: return 2;
    case dtype::uint32: case dtype::int32: case dtype::float32: return 4;
    case dtype::float64: return 8;
  }
  return 0;
}

// The stored bits of sample (page, s, y, x): any pattern for integers, float16 and float32 (so NaN,
// inf and subnormals occur), ordinary values for float64.
std::uint64_t raw_sample(dtype t, std::size_t p, std::size_t s, std::size_t y, std::size_t x) {
  const std::uint64_t k = mix((((p * 8 + s) * 4096 + y) * 4096 + x) * 2654435761ull + 17);
  if (t == dtype::float64) {
    const double v = (static_cast<double>(k % 2000001) - 1e6) / 64.0 + static_cast<double>(k % 7) * 1e-9;
    return std::bit_cast<std::uint64_t>(v);
  }
  return k;
}

// The float an independent conversion gives (the compiler's _Float16 for half).
float expected_value(dtype t, std::uint64_t raw) {
  switch (t) {
    case dtype::uint8: return static_cast<float>(static_cast<std::uint8_t>(raw));
    case dtype::int8: return static_cast<float>(static_cast<std::int8_t>(static_cast<std::uint8_t>(raw)));
    case dtype::uint16: return static_cast<float>(static_cast<std::uint16_t>(raw));
    case dtype::int16: return static_cast<float>(static_cast<std::int16_t>(static_cast<std::uint16_t>(raw)));
    case dtype::uint32: return static_cast<float>(static_cast<std::uint32_t>(raw));
    case dtype::int32: return static_cast<float>(static_cast<std::int32_t>(static_cast<std::uint32_t>(raw)));
    case dtype::float16: return static_cast<float>(std::bit_cast<_Float16>(static_cast<std::uint16_t>(raw)));
    case dtype::float32: return std::bit_cast<float>(static_cast<std::uint32_t>(raw));
    case dtype::float64: return static_cast<float>(std::bit_cast<double>(raw));
  }
  return 0;
}

bool same_float(float a, float b) {
  return (std::isnan(a) && std::isnan(b)) || std::bit_cast<std::uint32_t>(a) == std::bit_cast<std::uint32_t>(b);
}

std::uint16_t format_of(dtype t) {
  switch (t) {
    case dtype::int8: case dtype::int16: case dtype::int32: return SAMPLEFORMAT_INT;
    case dtype::float16: case dtype::float32: case dtype::float64: return SAMPLEFORMAT_IEEEFP;
    default: return SAMPLEFORMAT_UINT;
  }
}

// ---- fixtures through libtiff's raw API ----------------------------------------------------------

struct fixture {
  dtype type = dtype::uint8;
  std::uint16_t samples = 1;
  bool separate = false;
  bool tiled = false;
  std::uint16_t compression = COMPRESSION_NONE;
  std::uint16_t predictor = PREDICTOR_NONE;
  bool bigtiff = false;
  bool big_endian = false;
  std::size_t pages = 1;
  std::uint32_t width = 37, height = 21;  // not multiples of the tile or strip size: partial edges

  std::string text() const {
    return std::string(io::dtype_name(type)) + " samples=" + std::to_string(samples) + (separate ? " planar" : "") +
           (tiled ? " tiled" : " strips") + " compression=" + std::to_string(compression) +
           " predictor=" + std::to_string(predictor) + (bigtiff ? " bigtiff" : "") + (big_endian ? " BE" : " LE") +
           " pages=" + std::to_string(pages);
  }
};

// Writes the fixture with libtiff. Strips of 4 rows, tiles of 16×16.
void write_fixture(const fs::path& path, const fixture& f) {
  std::string mode = "w";
  if (f.bigtiff) mode += "8";
  mode += f.big_endian ? "b" : "l";
  TIFF* tif = TIFFOpen(path.c_str(), mode.c_str());
  REQUIRE(tif != nullptr);
  const std::size_t bps = bytes_of(f.type);
  const std::size_t chunk_samples = f.separate ? 1 : f.samples;
  const std::uint32_t cw = f.tiled ? 16 : f.width, ch = f.tiled ? 16 : 4;
  for (std::size_t p = 0; p < f.pages; ++p) {
    TIFFSetField(tif, TIFFTAG_IMAGEWIDTH, f.width);
    TIFFSetField(tif, TIFFTAG_IMAGELENGTH, f.height);
    TIFFSetField(tif, TIFFTAG_BITSPERSAMPLE, static_cast<std::uint16_t>(bps * 8));
    TIFFSetField(tif, TIFFTAG_SAMPLEFORMAT, format_of(f.type));
    TIFFSetField(tif, TIFFTAG_SAMPLESPERPIXEL, f.samples);
    TIFFSetField(tif, TIFFTAG_PHOTOMETRIC,
                 static_cast<std::uint16_t>(f.samples >= 3 ? PHOTOMETRIC_RGB : PHOTOMETRIC_MINISBLACK));
    if (f.samples == 4) {
      const std::uint16_t extra[1] = {EXTRASAMPLE_UNASSALPHA};
      TIFFSetField(tif, TIFFTAG_EXTRASAMPLES, 1, extra);
    }
    TIFFSetField(tif, TIFFTAG_PLANARCONFIG,
                 static_cast<std::uint16_t>(f.separate ? PLANARCONFIG_SEPARATE : PLANARCONFIG_CONTIG));
    TIFFSetField(tif, TIFFTAG_COMPRESSION, f.compression);
    if (f.predictor != PREDICTOR_NONE) TIFFSetField(tif, TIFFTAG_PREDICTOR, f.predictor);
    if (f.tiled) {
      TIFFSetField(tif, TIFFTAG_TILEWIDTH, cw);
      TIFFSetField(tif, TIFFTAG_TILELENGTH, ch);
    } else {
      TIFFSetField(tif, TIFFTAG_ROWSPERSTRIP, ch);
    }
    const std::size_t planes = f.separate ? f.samples : 1;
    std::vector<unsigned char> buf;
    for (std::size_t plane = 0; plane < planes; ++plane)
      for (std::uint32_t y0 = 0; y0 < f.height; y0 += ch)
        for (std::uint32_t x0 = 0; x0 < f.width; x0 += cw) {
          const std::uint32_t rows = f.tiled ? ch : std::min(ch, f.height - y0);
          buf.assign(std::size_t{rows} * cw * chunk_samples * bps, 0);
          for (std::uint32_t r = 0; r < rows; ++r)
            for (std::uint32_t c = 0; c < cw; ++c)
              for (std::size_t s = 0; s < chunk_samples; ++s) {
                const std::size_t y = y0 + r, x = x0 + c, sample = f.separate ? plane : s;
                if (y >= f.height || x >= f.width) continue;  // tile padding
                const std::uint64_t raw = raw_sample(f.type, p, sample, y, x);
                std::memcpy(&buf[((std::size_t{r} * cw + c) * chunk_samples + s) * bps], &raw, bps);
              }
          if (f.tiled) {
            const auto tile = TIFFComputeTile(tif, x0, y0, 0, static_cast<std::uint16_t>(plane));
            REQUIRE(TIFFWriteEncodedTile(tif, tile, buf.data(), static_cast<tmsize_t>(buf.size())) >= 0);
          } else {
            const auto strip = TIFFComputeStrip(tif, y0, static_cast<std::uint16_t>(plane));
            REQUIRE(TIFFWriteEncodedStrip(tif, strip, buf.data(), static_cast<tmsize_t>(buf.size())) >= 0);
          }
        }
    REQUIRE(TIFFWriteDirectory(tif));
  }
  TIFFClose(tif);
}

// Number of samples of `img` that differ from the fixture's known values.
std::size_t mismatches(const io::image& img, const fixture& f, std::size_t first_page = 0) {
  std::size_t bad = 0;
  for (std::size_t p = 0; p < img.frames(); ++p)
    for (std::size_t s = 0; s < img.channels(); ++s)
      for (std::size_t y = 0; y < img.height(); ++y)
        for (std::size_t x = 0; x < img.width(); ++x)
          if (!same_float(img.pixels(p, s, y, x), expected_value(f.type, raw_sample(f.type, first_page + p, s, y, x))))
            ++bad;
  return bad;
}

// ---- byte-level TIFFs, independent of libtiff's writer ---------------------------------------------

struct handmade {
  bool big_endian = false;
  std::uint32_t width = 4, height = 3;
  std::uint16_t bits = 16, sample_format = SAMPLEFORMAT_IEEEFP;
  std::uint16_t compression = COMPRESSION_NONE, predictor = PREDICTOR_NONE;
  std::vector<std::vector<unsigned char>> planes;  // each page's one strip, already encoded, in file byte order
  std::string description;
  bool only_first_ifd = false;  // ImageJ > 4 GiB style: one IFD, planes back to back
};

// Header, IFDs, description, then the strips: the IFDs come first, so cutting the file damages pixels only.
std::vector<unsigned char> build(const handmade& m) {
  std::vector<unsigned char> out;
  auto put16 = [&](std::uint32_t v) {
    if (m.big_endian) { out.push_back(static_cast<unsigned char>(v >> 8)); out.push_back(static_cast<unsigned char>(v)); }
    else { out.push_back(static_cast<unsigned char>(v)); out.push_back(static_cast<unsigned char>(v >> 8)); }
  };
  auto put32 = [&](std::uint32_t v) {
    if (m.big_endian) { put16(v >> 16); put16(v & 0xffff); }
    else { put16(v & 0xffff); put16(v >> 16); }
  };
  struct entry { std::uint16_t tag, type; std::uint32_t count, value; };
  const std::size_t n_ifds = m.only_first_ifd ? 1 : m.planes.size();
  const std::uint32_t n_entries = 10 + (m.description.empty() ? 0 : 1) + (m.predictor != PREDICTOR_NONE ? 1 : 0);
  const std::uint32_t ifd_size = 2 + n_entries * 12 + 4;
  const std::uint32_t desc_at = 8 + static_cast<std::uint32_t>(n_ifds) * ifd_size;
  const std::uint32_t data_at = desc_at + static_cast<std::uint32_t>(m.description.size()) + 1;
  std::vector<std::uint32_t> plane_at;
  std::uint32_t at = data_at;
  for (const auto& p : m.planes) { plane_at.push_back(at); at += static_cast<std::uint32_t>(p.size()); }

  out.push_back(m.big_endian ? 'M' : 'I');
  out.push_back(m.big_endian ? 'M' : 'I');
  put16(42);
  put32(8);
  for (std::size_t i = 0; i < n_ifds; ++i) {
    std::vector<entry> e = {{256, 4, 1, m.width}, {257, 4, 1, m.height}, {258, 3, 1, m.bits},
                            {259, 3, 1, m.compression}, {262, 3, 1, 1}, {273, 4, 1, plane_at[i]}, {277, 3, 1, 1},
                            {278, 4, 1, m.height}, {279, 4, 1, static_cast<std::uint32_t>(m.planes[i].size())},
                            {339, 3, 1, m.sample_format}};
    if (!m.description.empty())  // page 0 holds the text, later pages an empty string
      e.push_back(i == 0 ? entry{270, 2, static_cast<std::uint32_t>(m.description.size() + 1), desc_at} : entry{270, 2, 1, 0});
    if (m.predictor != PREDICTOR_NONE) e.push_back({317, 3, 1, m.predictor});
    std::sort(e.begin(), e.end(), [](const entry& a, const entry& b) { return a.tag < b.tag; });
    put16(static_cast<std::uint16_t>(e.size()));
    for (const entry& x : e) {
      put16(x.tag); put16(x.type); put32(x.count);
      if (x.type == 3) { put16(x.value); put16(0); }  // one SHORT, left-justified
      else put32(x.value);
    }
    put32(i + 1 < n_ifds ? 8 + static_cast<std::uint32_t>(i + 1) * ifd_size : 0);
  }
  for (char c : m.description) out.push_back(static_cast<unsigned char>(c));
  out.push_back(0);
  for (const auto& p : m.planes) out.insert(out.end(), p.begin(), p.end());
  return out;
}

// The floating-point predictor of Adobe's TIFF Technical Note 3, written from the note: each row's
// sample bytes are regrouped most-significant byte first (independent of the file's byte order),
// then byte-wise differenced. `row` holds native little-endian samples of `bps` bytes.
std::vector<unsigned char> float_predict(const std::vector<unsigned char>& rows, std::size_t width, std::size_t bps) {
  std::vector<unsigned char> out(rows.size());
  const std::size_t row_bytes = width * bps;
  for (std::size_t r = 0; r * row_bytes < rows.size(); ++r) {
    const unsigned char* in = rows.data() + r * row_bytes;
    unsigned char* o = out.data() + r * row_bytes;
    for (std::size_t i = 0; i < width; ++i)
      for (std::size_t b = 0; b < bps; ++b) o[b * width + i] = in[i * bps + (bps - 1 - b)];
    for (std::size_t j = row_bytes - 1; j >= 1; --j) o[j] = static_cast<unsigned char>(o[j] - o[j - 1]);
  }
  return out;
}

std::vector<unsigned char> deflate(const std::vector<unsigned char>& in) {
  uLongf size = compressBound(static_cast<uLong>(in.size()));
  std::vector<unsigned char> out(size);
  REQUIRE(compress(out.data(), &size, in.data(), static_cast<uLong>(in.size())) == Z_OK);
  out.resize(size);
  return out;
}

void save(const fs::path& path, const std::vector<unsigned char>& bytes) {
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()),
                                              static_cast<std::streamsize>(bytes.size()));
}

// 16-bit words in the requested byte order.
std::vector<unsigned char> words16(const std::vector<std::uint16_t>& v, bool big_endian) {
  std::vector<unsigned char> out;
  for (auto w : v) {
    out.push_back(static_cast<unsigned char>(big_endian ? w >> 8 : w & 0xff));
    out.push_back(static_cast<unsigned char>(big_endian ? w & 0xff : w >> 8));
  }
  return out;
}

// Captures what is written to file descriptor 2 while alive (libtiff must print nothing).
class stderr_capture {
 public:
  stderr_capture() {
    std::fflush(stderr);
    saved_ = ::dup(2);
    file_ = std::tmpfile();
    ::dup2(::fileno(file_), 2);
  }
  ~stderr_capture() { release(); }
  std::string release() {
    if (saved_ < 0) return text_;
    std::fflush(stderr);
    ::dup2(saved_, 2);
    ::close(saved_);
    saved_ = -1;
    std::rewind(file_);
    char buf[4096];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, file_)) > 0) text_.append(buf, n);
    std::fclose(file_);
    return text_;
  }

 private:
  int saved_ = -1;
  std::FILE* file_ = nullptr;
  std::string text_;
};

// Simple libtiff writer for metadata tests: `pages` uint16 pages whose pixel (y, x) on page p is
// 1000·p + 10·y + x, an optional description on page 0 and optional resolution tags.
void write_pages(const fs::path& path, std::size_t pages, const std::string& description, std::uint32_t w = 5,
                 std::uint32_t h = 4, std::optional<float> xres = {}, std::uint16_t resunit = RESUNIT_NONE) {
  TIFF* tif = TIFFOpen(path.c_str(), "w");
  REQUIRE(tif != nullptr);
  for (std::size_t p = 0; p < pages; ++p) {
    TIFFSetField(tif, TIFFTAG_IMAGEWIDTH, w);
    TIFFSetField(tif, TIFFTAG_IMAGELENGTH, h);
    TIFFSetField(tif, TIFFTAG_BITSPERSAMPLE, 16);
    TIFFSetField(tif, TIFFTAG_SAMPLESPERPIXEL, 1);
    TIFFSetField(tif, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISBLACK);
    TIFFSetField(tif, TIFFTAG_ROWSPERSTRIP, h);
    if (p == 0 && !description.empty()) TIFFSetField(tif, TIFFTAG_IMAGEDESCRIPTION, description.c_str());
    if (xres) {
      TIFFSetField(tif, TIFFTAG_XRESOLUTION, static_cast<double>(*xres));
      TIFFSetField(tif, TIFFTAG_YRESOLUTION, static_cast<double>(*xres));
      TIFFSetField(tif, TIFFTAG_RESOLUTIONUNIT, resunit);
    }
    std::vector<std::uint16_t> data(std::size_t{w} * h);
    for (std::uint32_t y = 0; y < h; ++y)
      for (std::uint32_t x = 0; x < w; ++x) data[y * w + x] = static_cast<std::uint16_t>(1000 * p + 10 * y + x);
    REQUIRE(TIFFWriteEncodedStrip(tif, 0, data.data(), static_cast<tmsize_t>(data.size() * 2)) >= 0);
    REQUIRE(TIFFWriteDirectory(tif));
  }
  TIFFClose(tif);
}

// The page index (1000·p + …) a [F, C] slot holds in a write_pages fixture.
int page_at(const io::image& img, std::size_t f, std::size_t c) {
  return static_cast<int>(std::lround(img.pixels(f, c, 0, 0))) / 1000;
}

}  // namespace

// ---- half precision ----------------------------------------------------------------------------------

TEST_CASE("half_to_float agrees with the compiler's _Float16 on all 65536 patterns") {
  std::size_t bad = 0;
  for (std::uint32_t h = 0; h < 65536; ++h) {
    const float ours = io::half_to_float(static_cast<std::uint16_t>(h));
    const float ref = static_cast<float>(std::bit_cast<_Float16>(static_cast<std::uint16_t>(h)));
    if (!same_float(ours, ref)) ++bad;
  }
  CHECK(bad == 0);
  CHECK(io::half_to_float(0x0001) == std::ldexp(1.0f, -24));  // smallest subnormal
  CHECK(io::half_to_float(0x03ff) == 1023.0f * std::ldexp(1.0f, -24));
  CHECK(io::half_to_float(0x3c00) == 1.0f);
  CHECK(io::half_to_float(0x7bff) == 65504.0f);
  CHECK(std::isinf(io::half_to_float(0x7c00)));
  CHECK(std::isinf(io::half_to_float(0xfc00)));
  CHECK(io::half_to_float(0xfc00) < 0);
  CHECK(std::isnan(io::half_to_float(0x7e00)));
  CHECK(std::signbit(io::half_to_float(0x8000)));
}

// ---- every combination family ---------------------------------------------------------------------

TEST_CASE("tiff: every sample type × samples × planar × strips/tiles × compression × predictor × byte order, classic/BigTIFF, 1/3 pages") {
  const fs::path dir = test::scratch("tiff_matrix");
  const dtype types[] = {dtype::uint8, dtype::int8, dtype::uint16, dtype::int16, dtype::uint32,
                         dtype::int32, dtype::float16, dtype::float32, dtype::float64};
  struct codec { std::uint16_t compression, predictor; };
  std::size_t files = 0;
  for (dtype t : types) {
    const bool is_float = format_of(t) == SAMPLEFORMAT_IEEEFP;
    std::vector<codec> codecs = {{COMPRESSION_NONE, PREDICTOR_NONE},       {COMPRESSION_LZW, PREDICTOR_NONE},
                                 {COMPRESSION_LZW, PREDICTOR_HORIZONTAL},   {COMPRESSION_ADOBE_DEFLATE, PREDICTOR_NONE},
                                 {COMPRESSION_ADOBE_DEFLATE, PREDICTOR_HORIZONTAL}, {COMPRESSION_PACKBITS, PREDICTOR_NONE}};
    if (is_float) {
      codecs.push_back({COMPRESSION_LZW, PREDICTOR_FLOATINGPOINT});
      codecs.push_back({COMPRESSION_ADOBE_DEFLATE, PREDICTOR_FLOATINGPOINT});
    }
    for (const codec& c : codecs)
      for (std::uint16_t samples : {1, 3, 4})
        for (bool separate : {false, true}) {
          if (separate && samples == 1) continue;
          for (bool tiled : {false, true})
            for (bool big_endian : {false, true})
              // BigTIFF and the page count only change offsets, not decoding: each combination gets both
              // BigTIFF values and both page counts, paired one way or the other in turn.
              for (int variant = 0; variant < 2; ++variant) {
                const bool bigtiff = variant == 1;
                const std::size_t pages = (variant ^ (files / 2 % 2)) != 0 ? 3 : 1;
                  // libtiff 4.5.0's writer byte-swaps floating-point-predicted data twice in big-endian
                  // files (its reader is right); that case is covered by a byte-built file below.
                  if (big_endian && c.predictor == PREDICTOR_FLOATINGPOINT) continue;
                  fixture f{t, samples, separate, tiled, c.compression, c.predictor, bigtiff, big_endian, pages};
                  INFO(f.text());
                  // A fresh name each time: rewriting one file makes ext4 flush it to disk on close.
                  const fs::path file = dir / (std::string("fixture") + std::to_string(files++) + ".tif");
                  write_fixture(file, f);
                  const io::tiff_info info = io::read_tiff_info(file);
                  CHECK(info.width == f.width);
                  CHECK(info.height == f.height);
                  CHECK(info.frames == pages);
                  CHECK(info.pages == pages);
                  CHECK(info.channels == samples);
                  CHECK(info.sample_type == t);
                  CHECK(info.bigtiff == bigtiff);
                  CHECK(info.big_endian == big_endian);
                  CHECK(info.tiled == tiled);
                  CHECK(info.planar == separate);
                  CHECK(info.compression == io::detail::compression_name(c.compression));
                  const io::image img = io::read_tiff(file);
                  REQUIRE(img.pixels.shape() == std::array<std::size_t, 4>{pages, samples, f.height, f.width});
                  CHECK(img.source_dtype == t);
                  CHECK(mismatches(img, f) == 0);
                  fs::remove(file);
                }
        }
  }
  MESSAGE(files << " fixture files written and read back");
}

TEST_CASE("tiff: other codecs this libtiff has (ZSTD, LZMA) read exactly; JPEG reads close") {
  const fs::path dir = test::scratch("tiff_codecs");
  for (std::uint16_t comp : {std::uint16_t{COMPRESSION_ZSTD}, std::uint16_t{COMPRESSION_LZMA}}) {
    if (!TIFFIsCODECConfigured(comp)) continue;
    fixture f{dtype::uint16, 1, false, false, comp, PREDICTOR_HORIZONTAL, false, false, 2};
    INFO(f.text());
    write_fixture(dir / "c.tif", f);
    CHECK(mismatches(io::read_tiff(dir / "c.tif"), f) == 0);
  }
  if (TIFFIsCODECConfigured(COMPRESSION_JPEG)) {
    // A smooth RGB ramp, JPEG-compressed as YCbCr: read as RGB within JPEG's error.
    const fs::path path = dir / "jpeg.tif";
    TIFF* tif = TIFFOpen(path.c_str(), "w");
    const std::uint32_t w = 64, h = 32;
    TIFFSetField(tif, TIFFTAG_IMAGEWIDTH, w);
    TIFFSetField(tif, TIFFTAG_IMAGELENGTH, h);
    TIFFSetField(tif, TIFFTAG_BITSPERSAMPLE, 8);
    TIFFSetField(tif, TIFFTAG_SAMPLESPERPIXEL, 3);
    TIFFSetField(tif, TIFFTAG_COMPRESSION, COMPRESSION_JPEG);
    TIFFSetField(tif, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_YCBCR);
    TIFFSetField(tif, TIFFTAG_JPEGCOLORMODE, JPEGCOLORMODE_RGB);
    TIFFSetField(tif, TIFFTAG_JPEGQUALITY, 95);
    TIFFSetField(tif, TIFFTAG_ROWSPERSTRIP, 16);
    std::vector<unsigned char> rgb(w * 16 * 3);
    for (std::uint32_t s = 0; s < 2; ++s) {
      for (std::uint32_t y = 0; y < 16; ++y)
        for (std::uint32_t x = 0; x < w; ++x) {
          rgb[(y * w + x) * 3 + 0] = static_cast<unsigned char>(60 + 2 * x);
          rgb[(y * w + x) * 3 + 1] = static_cast<unsigned char>(40 + 3 * (y + 16 * s));
          rgb[(y * w + x) * 3 + 2] = 128;
        }
      REQUIRE(TIFFWriteEncodedStrip(tif, s, rgb.data(), static_cast<tmsize_t>(rgb.size())) >= 0);
    }
    TIFFClose(tif);
    const io::image img = io::read_tiff(path);
    REQUIRE(img.pixels.shape() == std::array<std::size_t, 4>{1, 3, h, w});
    double worst = 0;
    for (std::uint32_t y = 0; y < h; ++y)
      for (std::uint32_t x = 0; x < w; ++x) {
        worst = std::max(worst, std::abs(img.pixels(0, 0, y, x) - (60.0 + 2 * x)));
        worst = std::max(worst, std::abs(img.pixels(0, 1, y, x) - (40.0 + 3 * y)));
        worst = std::max(worst, std::abs(img.pixels(0, 2, y, x) - 128.0));
      }
    CHECK(worst < 8);
    CHECK(io::read_tiff_info(path).compression == "jpeg");
  }
}

TEST_CASE("tiff: 1-bit and 4-bit images read as 0…1 and 0…15; palette images give their indices") {
  const fs::path dir = test::scratch("tiff_bits");
  for (std::uint16_t bits : {1, 4}) {
    const fs::path path = dir / (std::string("bits") + std::to_string(bits) + ".tif");
    const std::uint32_t w = 13, h = 5;  // rows not a whole number of bytes
    TIFF* tif = TIFFOpen(path.c_str(), "w");
    TIFFSetField(tif, TIFFTAG_IMAGEWIDTH, w);
    TIFFSetField(tif, TIFFTAG_IMAGELENGTH, h);
    TIFFSetField(tif, TIFFTAG_BITSPERSAMPLE, bits);
    TIFFSetField(tif, TIFFTAG_SAMPLESPERPIXEL, 1);
    TIFFSetField(tif, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISBLACK);
    TIFFSetField(tif, TIFFTAG_COMPRESSION, COMPRESSION_PACKBITS);
    TIFFSetField(tif, TIFFTAG_ROWSPERSTRIP, 2);
    const std::size_t row_bytes = (w * bits + 7) / 8;
    auto value = [&](std::uint32_t y, std::uint32_t x) { return (y * 7 + x * 3) % (1u << bits); };
    for (std::uint32_t y0 = 0, s = 0; y0 < h; y0 += 2, ++s) {
      const std::uint32_t rows = std::min(2u, h - y0);
      std::vector<unsigned char> buf(rows * row_bytes, 0);
      for (std::uint32_t r = 0; r < rows; ++r)
        for (std::uint32_t x = 0; x < w; ++x) {
          const std::size_t bit = std::size_t{x} * bits;
          buf[r * row_bytes + bit / 8] |= static_cast<unsigned char>(value(y0 + r, x) << (8 - bits - bit % 8));
        }
      REQUIRE(TIFFWriteEncodedStrip(tif, s, buf.data(), static_cast<tmsize_t>(buf.size())) >= 0);
    }
    TIFFClose(tif);
    const io::image img = io::read_tiff(path);
    REQUIRE(img.pixels.shape() == std::array<std::size_t, 4>{1, 1, h, w});
    CHECK(img.source_dtype == dtype::uint8);
    std::size_t bad = 0;
    for (std::uint32_t y = 0; y < h; ++y)
      for (std::uint32_t x = 0; x < w; ++x) bad += img.pixels(0, 0, y, x) != static_cast<float>(value(y, x));
    CHECK(bad == 0);
  }
  // Palette: ImageJ saves 8-bit images with a colour table this way; the data are the indices.
  const fs::path path = dir / "palette.tif";
  TIFF* tif = TIFFOpen(path.c_str(), "w");
  TIFFSetField(tif, TIFFTAG_IMAGEWIDTH, 16);
  TIFFSetField(tif, TIFFTAG_IMAGELENGTH, 2);
  TIFFSetField(tif, TIFFTAG_BITSPERSAMPLE, 8);
  TIFFSetField(tif, TIFFTAG_SAMPLESPERPIXEL, 1);
  TIFFSetField(tif, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_PALETTE);
  std::vector<std::uint16_t> r(256), g(256), b(256);
  for (int i = 0; i < 256; ++i) r[i] = static_cast<std::uint16_t>(i * 257), g[i] = 0, b[i] = static_cast<std::uint16_t>(65535 - i * 257);
  TIFFSetField(tif, TIFFTAG_COLORMAP, r.data(), g.data(), b.data());
  std::vector<unsigned char> idx(32);
  for (int i = 0; i < 32; ++i) idx[i] = static_cast<unsigned char>(i * 8);
  REQUIRE(TIFFWriteEncodedStrip(tif, 0, idx.data(), 32) >= 0);
  TIFFClose(tif);
  const io::image img = io::read_tiff(path);
  REQUIRE(img.pixels.shape() == std::array<std::size_t, 4>{1, 1, 2, 16});
  CHECK(img.pixels(0, 0, 1, 3) == 19 * 8);
}

TEST_CASE("tiff: a byte-by-byte big-endian float16 stack reads the same as libtiff-independent values") {
  const fs::path dir = test::scratch("tiff_handmade");
  // Values chosen to cover signs, fractions, subnormals, the largest half, ±inf and NaN.
  const std::vector<std::uint16_t> page0 = {0x3c00, 0xbc00, 0x3555, 0x0001, 0x03ff, 0x7bff,
                                            0x7c00, 0xfc00, 0x7e00, 0x8000, 0x5640, 0x4d80};
  std::vector<std::uint16_t> page1(12);
  for (std::size_t i = 0; i < 12; ++i) page1[i] = static_cast<std::uint16_t>(0x4000 + 0x40 * i);  // 2, 2.125, …
  for (bool be : {true, false}) {
    handmade m;
    m.big_endian = be;
    m.planes = {words16(page0, be), words16(page1, be)};
    const fs::path path = dir / (be ? "be.tif" : "le.tif");
    save(path, build(m));
    const io::tiff_info info = io::read_tiff_info(path);
    CHECK(info.big_endian == be);
    CHECK(info.sample_type == dtype::float16);
    const io::image img = io::read_tiff(path);
    REQUIRE(img.pixels.shape() == std::array<std::size_t, 4>{2, 1, 3, 4});
    CHECK(img.pixels(0, 0, 0, 0) == 1.0f);
    CHECK(img.pixels(0, 0, 0, 1) == -1.0f);
    CHECK(img.pixels(0, 0, 0, 2) == 0x3555 * 0 + 0.333251953125f);  // 0x3555 = 1365/4096
    CHECK(img.pixels(0, 0, 0, 3) == std::ldexp(1.0f, -24));
    CHECK(img.pixels(0, 0, 1, 0) == 1023 * std::ldexp(1.0f, -24));
    CHECK(img.pixels(0, 0, 1, 1) == 65504.0f);
    CHECK(img.pixels(0, 0, 1, 2) == INFINITY);
    CHECK(img.pixels(0, 0, 1, 3) == -INFINITY);
    CHECK(std::isnan(img.pixels(0, 0, 2, 0)));
    CHECK(std::signbit(img.pixels(0, 0, 2, 1)));
    CHECK(img.pixels(0, 0, 2, 2) == 100.0f);  // 0x5640
    CHECK(img.pixels(0, 0, 2, 3) == 22.0f);   // 0x4d80
    for (std::size_t i = 0; i < 12; ++i) CHECK(img.pixels(1, 0, i / 4, i % 4) == 2.0f + 0.125f * static_cast<float>(i));
  }
}

TEST_CASE("tiff: floating-point predictor + Deflate, both byte orders, from a byte-built file") {
  const fs::path dir = test::scratch("tiff_fpredict");
  const std::size_t w = 7, h = 3;
  for (dtype t : {dtype::float16, dtype::float32, dtype::float64})
    for (bool be : {false, true}) {
      const std::size_t bps = bytes_of(t);
      std::vector<unsigned char> native(w * h * bps);
      for (std::size_t y = 0; y < h; ++y)
        for (std::size_t x = 0; x < w; ++x) {
          const std::uint64_t raw = raw_sample(t, 0, 0, y, x);
          std::memcpy(&native[(y * w + x) * bps], &raw, bps);
        }
      handmade m;
      m.big_endian = be;
      m.width = w;
      m.height = h;
      m.bits = static_cast<std::uint16_t>(bps * 8);
      m.compression = COMPRESSION_ADOBE_DEFLATE;
      m.predictor = PREDICTOR_FLOATINGPOINT;
      m.planes = {deflate(float_predict(native, w, bps))};
      const fs::path path = dir / (std::string(io::dtype_name(t)) + (be ? "_be.tif" : "_le.tif"));
      save(path, build(m));
      INFO(path.string());
      const io::image img = io::read_tiff(path);
      REQUIRE(img.pixels.shape() == std::array<std::size_t, 4>{1, 1, h, w});
      CHECK(img.source_dtype == t);
      CHECK(mismatches(img, fixture{t, 1, false, false, COMPRESSION_ADOBE_DEFLATE, PREDICTOR_FLOATINGPOINT, false, be,
                                    1, static_cast<std::uint32_t>(w), static_cast<std::uint32_t>(h)}) == 0);
    }
}

TEST_CASE("tiff: ImageJ stack over 4 GiB style (one IFD, planes back to back) reads every plane") {
  const fs::path dir = test::scratch("tiff_contiguous");
  for (bool be : {false, true}) {
    handmade m;
    m.big_endian = be;
    m.sample_format = SAMPLEFORMAT_UINT;
    m.only_first_ifd = true;
    m.description = "ImageJ=1.53t\nimages=4\nframes=4\nhyperstack=true\n";
    for (std::uint16_t k = 0; k < 4; ++k) {
      std::vector<std::uint16_t> v(12);
      for (std::uint16_t i = 0; i < 12; ++i) v[i] = static_cast<std::uint16_t>(1000 * k + 100 + i);
      m.planes.push_back(words16(v, be));
    }
    const fs::path path = dir / "stack.tif";
    save(path, build(m));
    const io::tiff_info info = io::read_tiff_info(path);
    CHECK(info.pages == 1);
    CHECK(info.frames == 4);
    CHECK(info.metadata == "imagej");
    const io::image img = io::read_tiff(path);
    REQUIRE(img.pixels.shape() == std::array<std::size_t, 4>{4, 1, 3, 4});
    for (std::size_t k = 0; k < 4; ++k) CHECK(img.pixels(k, 0, 2, 3) == static_cast<float>(1000 * k + 111));
    const io::image tail = io::read_tiff_frames(path, 2, 2);
    CHECK(tail.pixels(1, 0, 0, 0) == 3100.0f);
    // Cut the file inside plane 3: the metadata no longer fits, so the one real page is read plain.
    auto bytes = build(m);
    bytes.resize(bytes.size() - 10);
    save(path, bytes);
    const io::tiff_info cut = io::read_tiff_info(path);
    CHECK(cut.frames == 1);
    CHECK(cut.metadata.find("truncated") != std::string::npos);
  }
}

// ---- metadata: ImageJ, OME, tifffile, resolution tags ------------------------------------------

TEST_CASE("tiff: ImageJ hyperstacks map to [frames, channels] with calibration") {
  const fs::path dir = test::scratch("tiff_imagej");
  // 2 channels × 3 slices, no time axis: slices become frames. ImageJ order: channel fastest.
  write_pages(dir / "cz.tif", 6,
              "ImageJ=1.54f\nimages=6\nchannels=2\nslices=3\nhyperstack=true\nmode=composite\nunit=micron\n"
              "spacing=1.5\nloop=false\n",
              5, 4, 2.0f);
  io::image img = io::read_tiff(dir / "cz.tif");
  REQUIRE(img.pixels.shape() == std::array<std::size_t, 4>{3, 2, 4, 5});
  for (std::size_t f = 0; f < 3; ++f)
    for (std::size_t c = 0; c < 2; ++c) CHECK(page_at(img, f, c) == static_cast<int>(f * 2 + c));
  CHECK(img.pixels(2, 1, 3, 4) == 5034.0f);
  CHECK(img.calib.unit == "um");
  CHECK(img.calib.pixel_size_x.value() == doctest::Approx(0.5));
  CHECK(img.calib.pixel_size_y.value() == doctest::Approx(0.5));
  CHECK(img.calib.pixel_size_z.value() == doctest::Approx(1.5));
  CHECK_FALSE(img.calib.frame_interval.has_value());
  CHECK(io::read_tiff_info(dir / "cz.tif").metadata == "imagej");

  // 2 channels × 2 slices × 3 time points: frames = 6, z fastest (frame = z + 2·t).
  write_pages(dir / "czt.tif", 12,
              "ImageJ=1.54f\nimages=12\nchannels=2\nslices=2\nframes=3\nhyperstack=true\nunit=\\u00B5m\n"
              "finterval=250\ntunit=ms\n",
              5, 4, 10.0f);
  img = io::read_tiff(dir / "czt.tif");
  REQUIRE(img.pixels.shape() == std::array<std::size_t, 4>{6, 2, 4, 5});
  for (std::size_t t = 0; t < 3; ++t)
    for (std::size_t z = 0; z < 2; ++z)
      for (std::size_t c = 0; c < 2; ++c) CHECK(page_at(img, z + 2 * t, c) == static_cast<int>(c + 2 * (z + 2 * t)));
  CHECK(img.calib.unit == "um");
  CHECK(img.calib.pixel_size_x.value() == doctest::Approx(0.1));
  CHECK(img.calib.frame_interval.value() == doctest::Approx(0.25));

  // A plain ImageJ stack ("images=5" alone) is 5 frames; inconsistent metadata falls back to plain.
  write_pages(dir / "stack.tif", 5, "ImageJ=1.54f\nimages=5\nslices=5\n");
  CHECK(io::read_tiff_info(dir / "stack.tif").frames == 5);
  write_pages(dir / "bad.tif", 4, "ImageJ=1.54f\nimages=4\nchannels=3\nframes=2\n");
  const io::tiff_info bad = io::read_tiff_info(dir / "bad.tif");
  CHECK(bad.frames == 4);
  CHECK(bad.channels == 1);
  CHECK(bad.metadata.rfind("plain (ImageJ metadata says images=4 but channels", 0) == 0);
}

TEST_CASE("tiff: OME-XML maps pages through DimensionOrder and TiffData, with physical sizes") {
  const fs::path dir = test::scratch("tiff_ome");
  auto ome = [](const std::string& pixels_attrs, const std::string& inner) {
    return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<OME xmlns=\"http://www.openmicroscopy.org/Schemas/OME/2016-06\">"
           "<Image ID=\"Image:0\"><Pixels ID=\"Pixels:0\" Type=\"uint16\" SizeX=\"5\" SizeY=\"4\" " +
           pixels_attrs + ">" + inner + "</Pixels></Image></OME>";
  };
  // XYTCZ, T=3, C=2, Z=1: page = t + 3·c.
  write_pages(dir / "tc.ome.tif", 6,
              ome("DimensionOrder=\"XYTCZ\" SizeZ=\"1\" SizeC=\"2\" SizeT=\"3\" PhysicalSizeX=\"0.1\" "
                  "PhysicalSizeY=\"100\" PhysicalSizeYUnit=\"nm\" TimeIncrement=\"2\" TimeIncrementUnit=\"min\"",
                  "<Channel ID=\"Channel:0:0\" SamplesPerPixel=\"1\"/><Channel ID=\"Channel:0:1\" SamplesPerPixel=\"1\"/>"
                  "<TiffData PlaneCount=\"6\"/>"));
  io::image img = io::read_tiff(dir / "tc.ome.tif");
  REQUIRE(img.pixels.shape() == std::array<std::size_t, 4>{3, 2, 4, 5});
  for (std::size_t t = 0; t < 3; ++t)
    for (std::size_t c = 0; c < 2; ++c) CHECK(page_at(img, t, c) == static_cast<int>(t + 3 * c));
  CHECK(img.calib.unit == "um");
  CHECK(img.calib.pixel_size_x.value() == doctest::Approx(0.1));
  CHECK(img.calib.pixel_size_y.value() == doctest::Approx(0.1));
  CHECK(img.calib.frame_interval.value() == doctest::Approx(120.0));
  CHECK(io::read_tiff_info(dir / "tc.ome.tif").metadata == "ome");

  // Explicit per-plane TiffData in reverse page order, with a namespace prefix; Z=4 → 4 frames.
  std::string planes;
  for (int z = 0; z < 4; ++z)
    planes += std::string("<ome:TiffData FirstZ=\"") + std::to_string(z) + "\" IFD=\"" + std::to_string(3 - z) + "\" PlaneCount=\"1\"/>";
  std::string text = ome("DimensionOrder=\"XYZCT\" SizeZ=\"4\" SizeC=\"1\" SizeT=\"1\" PhysicalSizeX=\"0.2\" "
                         "PhysicalSizeY=\"0.2\" PhysicalSizeZ=\"1\" PhysicalSizeZUnit=\"µm\"",
                         planes);
  // Prefix every element with ome: (OME writers differ in this).
  for (const std::string tag : {"OME", "Image", "Pixels"}) {
    for (std::size_t at = 0; (at = text.find("<" + tag, at)) != std::string::npos; at += 5) text.insert(at + 1, "ome:");
    for (std::size_t at = 0; (at = text.find("</" + tag, at)) != std::string::npos; at += 6) text.insert(at + 2, "ome:");
  }
  text.replace(text.find("xmlns="), 6, "xmlns:ome=");
  write_pages(dir / "z.ome.tif", 4, text);
  img = io::read_tiff(dir / "z.ome.tif");
  REQUIRE(img.frames() == 4);
  for (std::size_t z = 0; z < 4; ++z) CHECK(page_at(img, z, 0) == static_cast<int>(3 - z));
  CHECK(img.calib.pixel_size_z.value() == doctest::Approx(1.0));
  CHECK(img.calib.pixel_size_x.value() == doctest::Approx(0.2));

  // A plane stored in another file of a multi-file set: read this file plain, saying why.
  write_pages(dir / "multi.ome.tif", 1,
              ome("DimensionOrder=\"XYZCT\" SizeZ=\"2\" SizeC=\"1\" SizeT=\"1\"",
                  "<TiffData FirstZ=\"1\" IFD=\"0\"><UUID FileName=\"other.ome.tif\">urn:uuid:1</UUID></TiffData>"));
  const io::tiff_info multi = io::read_tiff_info(dir / "multi.ome.tif");
  CHECK(multi.frames == 1);
  CHECK(multi.metadata.find("other.ome.tif") != std::string::npos);
}

TEST_CASE("tiff: tifffile's JSON shape with axes, and resolution tags") {
  const fs::path dir = test::scratch("tiff_shaped");
  write_pages(dir / "tcyx.tif", 6, "{\"shape\": [2, 3, 4, 5], \"axes\": \"TCYX\"}");
  io::image img = io::read_tiff(dir / "tcyx.tif");
  REQUIRE(img.pixels.shape() == std::array<std::size_t, 4>{2, 3, 4, 5});
  for (std::size_t t = 0; t < 2; ++t)
    for (std::size_t c = 0; c < 3; ++c) CHECK(page_at(img, t, c) == static_cast<int>(t * 3 + c));
  write_pages(dir / "ctyx.tif", 6, "{\"shape\": [3, 2, 4, 5], \"axes\": \"CTYX\"}");
  img = io::read_tiff(dir / "ctyx.tif");
  REQUIRE(img.pixels.shape() == std::array<std::size_t, 4>{2, 3, 4, 5});
  for (std::size_t t = 0; t < 2; ++t)
    for (std::size_t c = 0; c < 3; ++c) CHECK(page_at(img, t, c) == static_cast<int>(c * 2 + t));
  CHECK(io::read_tiff_info(dir / "ctyx.tif").metadata == "tifffile");

  // Resolution tags alone: centimetres and inches convert to micrometres; unit "none" means uncalibrated.
  write_pages(dir / "cm.tif", 1, "", 5, 4, 20000.0f, RESUNIT_CENTIMETER);
  const io::tiff_info cm = io::read_tiff_info(dir / "cm.tif");
  CHECK(cm.calib.unit == "um");
  CHECK(cm.calib.pixel_size_x.value() == doctest::Approx(0.5));
  write_pages(dir / "inch.tif", 1, "", 5, 4, 25400.0f, RESUNIT_INCH);
  CHECK(io::read_tiff_info(dir / "inch.tif").calib.pixel_size_y.value() == doctest::Approx(1.0));
  write_pages(dir / "none.tif", 1, "", 5, 4, 1.0f, RESUNIT_NONE);
  CHECK_FALSE(io::read_tiff_info(dir / "none.tif").calib.pixel_size_x.has_value());
}

TEST_CASE("tiff: reduced-resolution pages are skipped; pages that disagree are an error") {
  const fs::path dir = test::scratch("tiff_pages");
  const fs::path path = dir / "thumb.tif";
  TIFF* tif = TIFFOpen(path.c_str(), "w");
  for (std::uint32_t p = 0; p < 3; ++p) {
    const std::uint32_t side = p == 1 ? 2 : 8;  // page 1 is a thumbnail
    TIFFSetField(tif, TIFFTAG_IMAGEWIDTH, side);
    TIFFSetField(tif, TIFFTAG_IMAGELENGTH, side);
    TIFFSetField(tif, TIFFTAG_BITSPERSAMPLE, 8);
    TIFFSetField(tif, TIFFTAG_SAMPLESPERPIXEL, 1);
    TIFFSetField(tif, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISBLACK);
    if (p == 1) TIFFSetField(tif, TIFFTAG_SUBFILETYPE, FILETYPE_REDUCEDIMAGE);
    std::vector<unsigned char> d(side * side, static_cast<unsigned char>(10 + p));
    TIFFWriteEncodedStrip(tif, 0, d.data(), static_cast<tmsize_t>(d.size()));
    TIFFWriteDirectory(tif);
  }
  TIFFClose(tif);
  const io::tiff_info info = io::read_tiff_info(path);
  CHECK(info.pages == 3);
  CHECK(info.frames == 2);
  const io::image img = io::read_tiff(path);
  CHECK(img.pixels(1, 0, 7, 7) == 12.0f);

  fixture a{dtype::uint8};
  write_fixture(dir / "mixed.tif", a);
  // Append a page of another size by writing a second file's pages after a first one's.
  tif = TIFFOpen((dir / "mixed.tif").c_str(), "a");
  TIFFSetField(tif, TIFFTAG_IMAGEWIDTH, 9);
  TIFFSetField(tif, TIFFTAG_IMAGELENGTH, 9);
  TIFFSetField(tif, TIFFTAG_BITSPERSAMPLE, 16);
  TIFFSetField(tif, TIFFTAG_SAMPLESPERPIXEL, 1);
  TIFFSetField(tif, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISBLACK);
  std::vector<std::uint16_t> d(81, 7);
  TIFFWriteEncodedStrip(tif, 0, d.data(), 162);
  TIFFWriteDirectory(tif);
  TIFFClose(tif);
  CHECK_THROWS_WITH_AS(io::read_tiff(dir / "mixed.tif"),
                       doctest::Contains("mixed.tif: page 1 is 9x9 uint16 but page 0 is 37x21 uint8 (all pages must share size and type)"),
                       error);
}

TEST_CASE("tiff: read_tiff_frames returns a slice; out-of-range slices are errors") {
  const fs::path dir = test::scratch("tiff_frames");
  fixture f{dtype::uint16, 2, true, true, COMPRESSION_LZW, PREDICTOR_HORIZONTAL, false, false, 5};
  write_fixture(dir / "movie.tif", f);
  const io::image part = io::read_tiff_frames(dir / "movie.tif", 2, 3);
  REQUIRE(part.pixels.shape() == std::array<std::size_t, 4>{3, 2, f.height, f.width});
  CHECK(mismatches(part, f, 2) == 0);
  CHECK_THROWS_WITH_AS(io::read_tiff_frames(dir / "movie.tif", 4, 2), doctest::Contains("movie.tif: frames 4"), error);
  CHECK_THROWS_AS(io::read_tiff_frames(dir / "movie.tif", 0, 0), error);
}

// ---- bad input -------------------------------------------------------------------------------------

TEST_CASE("tiff: missing, garbage, truncated, empty, zero-size, lying and unsupported files are clear errors, and libtiff prints nothing") {
  const fs::path dir = test::scratch("tiff_bad");
  stderr_capture capture;
  auto fails_with = [](const fs::path& p, const std::string& needle) {
    INFO(p.string() << " should fail with '" << needle << "'");
    std::string message;
    try {
      (void)io::read_tiff(p);
    } catch (const error& e) {
      message = e.what();
    }
    CHECK(message.rfind(p.string() + ": ", 0) == 0);
    CHECK(message.find(needle) != std::string::npos);
    if (message.find(needle) == std::string::npos) MESSAGE("got: " << message);
  };
  fails_with(dir / "missing.tif", "no such file");
  fails_with(dir, "is a folder");
  save(dir / "garbage.tif", {'h', 'e', 'l', 'l', 'o', ' ', 'w', 'o', 'r', 'l', 'd', '\n'});
  fails_with(dir / "garbage.tif", "not a TIFF file");
  save(dir / "empty.tif", {});
  fails_with(dir / "empty.tif", "not a TIFF file (too short for a TIFF header)");
  save(dir / "header.tif", {'I', 'I', 42, 0, 8, 0, 0, 0});  // points at an IFD that is not there
  fails_with(dir / "header.tif", "");

  // Truncated pixel data (IFD before the data, so the header reads fine).
  handmade m;
  m.width = 64;
  m.height = 64;
  m.sample_format = SAMPLEFORMAT_UINT;
  m.planes = {std::vector<unsigned char>(64 * 64 * 2, 7)};
  auto bytes = build(m);
  bytes.resize(bytes.size() - 100);
  save(dir / "truncated.tif", bytes);
  fails_with(dir / "truncated.tif", "cannot decode (truncated or corrupt file)");

  // A libtiff-written LZW file cut short: the IFD (at the end) is gone.
  fixture lzw{dtype::uint16, 1, false, false, COMPRESSION_LZW, PREDICTOR_NONE, false, false, 2};
  write_fixture(dir / "cut.tif", lzw);
  const auto full = fs::file_size(dir / "cut.tif");
  fs::resize_file(dir / "cut.tif", full / 2);
  fails_with(dir / "cut.tif", "");

  // Compressed strip data cut in the middle, IFD intact: LZW decode must fail, not read garbage.
  {
    fixture big{dtype::uint8, 1, false, false, COMPRESSION_LZW, PREDICTOR_NONE, false, false, 1, 200, 50};
    write_fixture(dir / "lzw.tif", big);
    TIFF* tif = TIFFOpen((dir / "lzw.tif").c_str(), "r+");
    REQUIRE(tif != nullptr);
    const auto count = TIFFGetStrileByteCount(tif, 0);
    TIFFClose(tif);
    std::ifstream in(dir / "lzw.tif", std::ios::binary);
    std::vector<unsigned char> raw((std::istreambuf_iterator<char>(in)), {});
    // Corrupt the compressed stream: replace the second half of strip 0 with an LZW "end" code mess.
    const std::size_t start = 8 + count / 2;
    for (std::size_t i = start; i < 8 + count; ++i) raw[i] = 0xff;
    save(dir / "lzw_bad.tif", raw);
    fails_with(dir / "lzw_bad.tif", "page 0, strip");
  }

  // Zero width.
  handmade zero;
  zero.width = 0;
  zero.sample_format = SAMPLEFORMAT_UINT;
  zero.planes = {std::vector<unsigned char>(2, 0)};
  save(dir / "zero.tif", build(zero));
  fails_with(dir / "zero.tif", "");

  // Headers asking for more than the limits, with a tiny file behind them.
  handmade huge;
  huge.width = 100000;
  huge.height = 100000;
  huge.bits = 8;
  huge.sample_format = SAMPLEFORMAT_UINT;
  huge.planes = {std::vector<unsigned char>(16, 1)};
  save(dir / "huge.tif", build(huge));
  fails_with(dir / "huge.tif", "max_total_bytes");
  huge.width = 300000;
  huge.height = 1;
  save(dir / "wide.tif", build(huge));
  fails_with(dir / "wide.tif", "max_image_side");
  const auto saved_limit = limits().max_total_bytes;
  limits().max_total_bytes = 1000;
  fixture small{dtype::float32, 1, false, false, COMPRESSION_NONE, PREDICTOR_NONE, false, false, 1, 20, 20};
  write_fixture(dir / "over.tif", small);
  fails_with(dir / "over.tif", "over the limit");
  limits().max_total_bytes = saved_limit;

  // Unsupported sample layouts: clear words, never garbage.
  handmade twelve;
  twelve.bits = 12;
  twelve.sample_format = SAMPLEFORMAT_UINT;
  twelve.planes = {std::vector<unsigned char>(18, 0)};
  save(dir / "twelve.tif", build(twelve));
  fails_with(dir / "twelve.tif", "12-bit unsigned integer samples are not supported");
  handmade i64;
  i64.bits = 64;
  i64.sample_format = SAMPLEFORMAT_INT;
  i64.planes = {std::vector<unsigned char>(96, 0)};
  save(dir / "int64.tif", build(i64));
  fails_with(dir / "int64.tif", "64-bit signed integer samples are not supported");

  const std::string printed = capture.release();
  CHECK_MESSAGE(printed.empty(), "libtiff printed: " << printed);
}

TEST_CASE("tiff: damaged files (random byte flips and cuts) give a microcount::error or a good read, never a crash") {
  const fs::path dir = test::scratch("tiff_mutate");
  std::vector<std::vector<unsigned char>> sources;
  for (const fixture& f : {fixture{dtype::uint16, 3, false, true, COMPRESSION_LZW, PREDICTOR_HORIZONTAL, false, false, 2},
                           fixture{dtype::float32, 1, false, false, COMPRESSION_ADOBE_DEFLATE, PREDICTOR_FLOATINGPOINT, true, false, 2},
                           fixture{dtype::uint8, 4, true, false, COMPRESSION_PACKBITS, PREDICTOR_NONE, false, true, 2}}) {
    write_fixture(dir / "src.tif", f);
    std::ifstream in(dir / "src.tif", std::ios::binary);
    sources.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  rng r(2024);
  int errors = 0, reads = 0;
  for (int i = 0; i < 300; ++i) {
    std::vector<unsigned char> bytes = sources[static_cast<std::size_t>(i) % sources.size()];
    if (i % 4 == 3) {
      bytes.resize(r.below(bytes.size()));
    } else {
      const int flips = 1 + static_cast<int>(r.below(8));
      for (int k = 0; k < flips; ++k) bytes[r.below(bytes.size())] = static_cast<unsigned char>(r.below(256));
    }
    const fs::path p = dir / (std::to_string(i) + "-mutant.tif");
    save(p, bytes);
    try {
      const io::image img = io::read_tiff(p);
      CHECK(img.pixels.size() > 0);
      ++reads;
    } catch (const error& e) {
      CHECK(std::string(e.what()).rfind(p.string() + ": ", 0) == 0);
      ++errors;
    }
    fs::remove(p);
  }
  MESSAGE(reads << " damaged files still read, " << errors << " rejected with an error");
  CHECK(errors > 0);
}

// ---- the real files -----------------------------------------------------------------------------------

TEST_CASE("tiff: real files from the data set") {
  MICROCOUNT_REQUIRE_DATA();
  const fs::path data = test::data_dir();
  auto stats = [](const io::image& img) {
    double lo = INFINITY, hi = -INFINITY, sum = 0;
    for (float v : img.pixels) lo = std::min<double>(lo, v), hi = std::max<double>(hi, v), sum += v;
    return std::array<double, 3>{lo, hi, sum / static_cast<double>(img.pixels.size())};
  };
  SUBCASE("vgg-cells: 256×256 uint8 uncompressed") {
    const fs::path p = data / "vgg-cells/image_001.tif";
    const io::tiff_info info = io::read_tiff_info(p);
    CHECK(info.width == 256);
    CHECK(info.height == 256);
    CHECK(info.sample_type == dtype::uint8);
    CHECK(info.compression == "none");
    const io::image img = io::read_tiff(p);
    REQUIRE(img.pixels.shape() == std::array<std::size_t, 4>{1, 1, 256, 256});
    // Reference values from Pillow 9.4 (/usr/bin/python3, np.asarray(Image.open(p))), computed once.
    CHECK(img.pixels(0, 0, 0, 0) == 4.0f);
    CHECK(img.pixels(0, 0, 128, 128) == 74.0f);
    CHECK(img.pixels(0, 0, 255, 255) == 13.0f);
    CHECK(img.pixels(0, 0, 10, 200) == 92.0f);
    const auto [lo, hi, mean] = stats(img);
    CHECK(lo == 4.0);
    CHECK(hi == 252.0);
    CHECK(mean * 65536 == doctest::Approx(5098789.0));
  }
  SUBCASE("mbm: 600×600 RGB LZW") {
    const fs::path p = data / "mbm/BM_GRAZ_HE_0001_01_000.tif";
    const io::tiff_info info = io::read_tiff_info(p);
    CHECK(info.compression == "lzw");
    CHECK(info.channels == 3);
    const io::image img = io::read_tiff(p);
    REQUIRE(img.pixels.shape() == std::array<std::size_t, 4>{1, 3, 600, 600});
    // Reference values from Pillow 9.4, computed once: pixel [y, x] → (R, G, B).
    CHECK(img.pixels(0, 0, 0, 0) == 221.0f);
    CHECK(img.pixels(0, 1, 0, 0) == 172.0f);
    CHECK(img.pixels(0, 2, 0, 0) == 201.0f);
    CHECK(img.pixels(0, 0, 300, 300) == 190.0f);
    CHECK(img.pixels(0, 1, 123, 456) == 225.0f);
    CHECK(img.pixels(0, 2, 599, 599) == 199.0f);
    const auto [lo, hi, mean] = stats(img);
    CHECK(lo == 10.0);
    CHECK(hi == 255.0);
    CHECK(mean == doctest::Approx(168.4769388888889).epsilon(1e-9));
  }
  SUBCASE("deep-events: float16 movies written by tifffile") {
    // Reference values from tifffile 2023.2.3 (/usr/bin/python3, tifffile.imread(p).astype(float)), computed once.
    const fs::path p1 = data / "formats/deep-events/event1_images.tif";
    const io::tiff_info info = io::read_tiff_info(p1);
    CHECK(info.sample_type == dtype::float16);
    CHECK(info.frames == 5);
    CHECK(info.pages == 5);
    CHECK(info.metadata == "tifffile");
    CHECK_FALSE(info.calib.pixel_size_x.has_value());  // XResolution 1/1 with unit NONE is no calibration
    const io::image e1 = io::read_tiff(p1);
    REQUIRE(e1.pixels.shape() == std::array<std::size_t, 4>{5, 1, 256, 256});
    CHECK(e1.source_dtype == dtype::float16);
    CHECK(e1.pixels(0, 0, 0, 0) == 119.0f);
    CHECK(e1.pixels(0, 0, 128, 128) == 133.0f);
    CHECK(e1.pixels(2, 0, 17, 200) == 121.0f);
    CHECK(e1.pixels(4, 0, 255, 255) == 125.0f);
    CHECK(e1.pixels(1, 0, 100, 30) == 220.0f);
    CHECK(e1.pixels(3, 0, 183, 197) == 626.0f);  // the maximum
    const auto [lo, hi, mean] = stats(e1);
    CHECK(lo == 78.0);
    CHECK(hi == 626.0);
    CHECK(mean == doctest::Approx(156.5051483154297).epsilon(1e-9));
    const io::image f3 = io::read_tiff_frames(p1, 3, 1);
    double s3 = 0;
    for (float v : f3.pixels) s3 += v;
    CHECK(s3 / 65536 == doctest::Approx(156.21437072753906).epsilon(1e-9));

    const io::image e2 = io::read_tiff(data / "formats/deep-events/event2_images.tif");
    REQUIRE(e2.pixels.shape() == std::array<std::size_t, 4>{7, 1, 256, 256});
    CHECK(e2.pixels(0, 0, 255, 16) == 555.0f);
    CHECK(e2.pixels(0, 0, 0, 0) == 132.0f);
    const auto [lo2, hi2, mean2] = stats(e2);
    CHECK(lo2 == 86.0);
    CHECK(hi2 == 555.0);
    CHECK(mean2 == doctest::Approx(146.73687090192522).epsilon(1e-9));
  }
}

// ---- writing -----------------------------------------------------------------------------------------

TEST_CASE("write_tiff: float32, uint16 and uint8 round trips, stacks and calibration") {
  const fs::path dir = test::scratch("tiff_write");
  io::image img;
  img.pixels = xt::xtensor<float, 4>::from_shape({3, 2, 7, 9});  // [F, C, H, W]
  for (std::size_t i = 0; i < img.pixels.size(); ++i)
    img.pixels.data()[i] = static_cast<float>(i) * 0.75f - 20.0f + 1e-3f * static_cast<float>(i % 3);
  img.calib.pixel_size_x = 0.65;
  img.calib.pixel_size_y = 0.65;
  img.calib.frame_interval = 0.5;
  img.calib.unit = "um";

  for (const auto compression : {io::tiff_compression::none, io::tiff_compression::deflate}) {
    io::write_tiff(dir / "f32.tif", img, dtype::float32, compression);
    const io::image back = io::read_tiff(dir / "f32.tif");
    REQUIRE(back.pixels.shape() == img.pixels.shape());
    CHECK(back.pixels == img.pixels);
    CHECK(back.source_dtype == dtype::float32);
    CHECK(back.calib.unit == "um");
    CHECK(back.calib.pixel_size_x.value() == doctest::Approx(0.65).epsilon(1e-6));
    CHECK(back.calib.pixel_size_y.value() == doctest::Approx(0.65).epsilon(1e-6));
    CHECK(back.calib.frame_interval.value() == doctest::Approx(0.5));
    const io::tiff_info info = io::read_tiff_info(dir / "f32.tif");
    CHECK(info.metadata == "imagej");
    CHECK(info.pages == 6);
    CHECK(info.compression == (compression == io::tiff_compression::none ? "none" : "deflate"));
  }

  // Integers: rounded (half away from zero) and clamped, NaN → 0.
  io::image edge;
  edge.pixels = xt::xtensor<float, 4>{{{{-3.0f, 0.4f, 0.5f, 2.5f, 254.6f, 255.0f, 300.0f, NAN, INFINITY, 70000.0f}}}};
  io::write_tiff(dir / "u8.tif", edge, dtype::uint8);
  io::image u8 = io::read_tiff(dir / "u8.tif");
  CHECK(u8.source_dtype == dtype::uint8);
  const float want8[] = {0, 0, 1, 3, 255, 255, 255, 0, 255, 255};
  for (std::size_t x = 0; x < 10; ++x) CHECK(u8.pixels(0, 0, 0, x) == want8[x]);
  io::write_tiff(dir / "u16.tif", edge, dtype::uint16, io::tiff_compression::deflate);
  io::image u16 = io::read_tiff(dir / "u16.tif");
  CHECK(u16.source_dtype == dtype::uint16);
  const float want16[] = {0, 0, 1, 3, 255, 255, 300, 0, 65535, 65535};
  for (std::size_t x = 0; x < 10; ++x) CHECK(u16.pixels(0, 0, 0, x) == want16[x]);

  // A z-stack (z step, no frame interval) is written as ImageJ slices and comes back as frames with z.
  io::image z;
  z.pixels = xt::xtensor<float, 4>::from_shape({4, 1, 3, 3});
  for (std::size_t i = 0; i < z.pixels.size(); ++i) z.pixels.data()[i] = static_cast<float>(i);
  z.calib.pixel_size_x = 0.1;
  z.calib.pixel_size_y = 0.2;
  z.calib.pixel_size_z = 0.5;
  z.calib.unit = "nm";
  io::write_tiff(dir / "z.tif", z, dtype::uint16);
  const io::image zb = io::read_tiff(dir / "z.tif");
  CHECK(zb.pixels == z.pixels);
  CHECK(zb.calib.unit == "nm");
  CHECK(zb.calib.pixel_size_y.value() == doctest::Approx(0.2).epsilon(1e-6));
  CHECK(zb.calib.pixel_size_z.value() == doctest::Approx(0.5));
  CHECK_FALSE(zb.calib.frame_interval.has_value());

  // The description Fiji reads.
  TIFF* tif = TIFFOpen((dir / "f32.tif").c_str(), "r");
  const char* description = nullptr;
  REQUIRE(TIFFGetField(tif, TIFFTAG_IMAGEDESCRIPTION, &description));
  const std::string d = description;
  TIFFClose(tif);
  CHECK(d.rfind("ImageJ=", 0) == 0);
  CHECK(d.find("images=6\nchannels=2\nframes=3\nhyperstack=true\n") != std::string::npos);
  CHECK(d.find("unit=micron\n") != std::string::npos);
  CHECK(d.find("finterval=0.5\n") != std::string::npos);

  // Atomic: a failed write leaves the old file and no temporary.
  CHECK_THROWS_WITH_AS(io::write_tiff(dir / "u8.tif", img, dtype::int16), doctest::Contains("u8.tif: write_tiff writes"), error);
  io::image empty;
  CHECK_THROWS_AS(io::write_tiff(dir / "u8.tif", empty), error);
  CHECK(io::read_tiff(dir / "u8.tif").pixels == u8.pixels);
  int files = 0;
  for (const auto& e : fs::directory_iterator(dir)) files += e.path().filename().string().find(".tmp-") == std::string::npos;
  for (const auto& e : fs::directory_iterator(dir)) CHECK(e.path().filename().string().find(".tmp-") == std::string::npos);
  CHECK(files == 4);
}
