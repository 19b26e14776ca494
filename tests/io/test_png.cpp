// PNG round trips, PNGs written by libpng's own low-level API (palette, 16-bit, low bit depth,
// transparency), bad files, and the picture helpers.
#include <csetjmp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <vector>

#include <png.h>

#include "microcount/io/picture.hpp"
#include "microcount/io/png.hpp"
#include "test_support.hpp"

using namespace microcount;
namespace fs = std::filesystem;

namespace {

// Writes rows with libpng's classic API (independent of write_png). Any error fails the test.
void write_raw_png(const fs::path& path, png_uint_32 w, png_uint_32 h, int bit_depth, int colour_type,
                   const std::vector<std::vector<unsigned char>>& rows, const std::vector<png_color>& palette = {},
                   const std::vector<png_byte>& trans = {}) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  REQUIRE(f != nullptr);
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  std::vector<png_bytep> pointers;
  for (const auto& r : rows) pointers.push_back(const_cast<png_bytep>(r.data()));
  bool ok = false;
  if (!setjmp(png_jmpbuf(png))) {
    png_init_io(png, f);
    png_set_IHDR(png, info, w, h, bit_depth, colour_type, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    if (!palette.empty()) png_set_PLTE(png, info, palette.data(), static_cast<int>(palette.size()));
    if (!trans.empty()) png_set_tRNS(png, info, trans.data(), static_cast<int>(trans.size()), nullptr);
    png_write_info(png, info);
    png_write_image(png, pointers.data());
    png_write_end(png, nullptr);
    ok = true;
  }
  png_destroy_write_struct(&png, &info);
  std::fclose(f);
  REQUIRE(ok);
}

}  // namespace

TEST_CASE("png: write → read round trip for 1, 2, 3 and 4 channels") {
  const fs::path dir = test::scratch("png_roundtrip");
  for (std::size_t c : {1, 2, 3, 4}) {
    auto pic = xt::xtensor<std::uint8_t, 3>::from_shape({17, 23, c});  // [H, W, C]
    for (std::size_t i = 0; i < pic.size(); ++i) pic.data()[i] = static_cast<std::uint8_t>((i * 37 + c) % 256);
    const fs::path p = dir / (std::to_string(c) + "-channels.png");
    io::write_png(p, pic);
    const auto back = io::read_png(p);
    CHECK(back.shape() == pic.shape());
    CHECK(back == pic);
  }
  CHECK_THROWS_AS(io::write_png(dir / "bad.png", xt::xtensor<std::uint8_t, 3>::from_shape({2, 2, 5})), error);
  CHECK_THROWS_AS(io::write_png(dir / "bad.png", xt::xtensor<std::uint8_t, 3>::from_shape({0, 2, 1})), error);
  CHECK_FALSE(fs::exists(dir / "bad.png"));
}

TEST_CASE("png: any PNG reads as 8 bits: palette, 16-bit, 1-bit grey, transparency") {
  const fs::path dir = test::scratch("png_kinds");
  // Palette with transparency → RGBA.
  write_raw_png(dir / "palette.png", 3, 1, 8, PNG_COLOR_TYPE_PALETTE, {{0, 1, 2}},
                {{255, 0, 0}, {0, 255, 0}, {10, 20, 30}}, {255, 128});
  auto p = io::read_png(dir / "palette.png");
  REQUIRE(p.shape() == std::array<std::size_t, 3>{1, 3, 4});
  CHECK(p(0, 0, 0) == 255);
  CHECK(p(0, 0, 3) == 255);
  CHECK(p(0, 1, 1) == 255);
  CHECK(p(0, 1, 3) == 128);
  CHECK(p(0, 2, 2) == 30);
  CHECK(p(0, 2, 3) == 255);  // beyond the tRNS entries: opaque
  // 16-bit grey → 8 bits, rounded: 65535 → 255, 257·100 → 100, 32896 (≈127.5·257) → 128.
  write_raw_png(dir / "g16.png", 3, 1, 16, PNG_COLOR_TYPE_GRAY, {{0xff, 0xff, 0x64, 0x64, 0x80, 0x80}});
  p = io::read_png(dir / "g16.png");
  REQUIRE(p.shape() == std::array<std::size_t, 3>{1, 3, 1});
  CHECK(p(0, 0, 0) == 255);
  CHECK(p(0, 1, 0) == 100);
  CHECK(p(0, 2, 0) == 128);
  // 1-bit grey → 0 / 255.
  write_raw_png(dir / "g1.png", 10, 1, 1, PNG_COLOR_TYPE_GRAY, {{0b10100000, 0b01000000}});
  p = io::read_png(dir / "g1.png");
  REQUIRE(p.shape() == std::array<std::size_t, 3>{1, 10, 1});
  const int want[10] = {255, 0, 255, 0, 0, 0, 0, 0, 0, 255};
  for (int x = 0; x < 10; ++x) CHECK(p(0, x, 0) == want[x]);
}

TEST_CASE("png: bad files are errors naming the file") {
  const fs::path dir = test::scratch("png_bad");
  CHECK_THROWS_WITH_AS(io::read_png(dir / "missing.png"), doctest::Contains("missing.png: cannot open"), error);
  std::ofstream(dir / "text.png") << "not a png at all";
  CHECK_THROWS_WITH_AS(io::read_png(dir / "text.png"), doctest::Contains("text.png: not a PNG file"), error);
  auto pic = xt::xtensor<std::uint8_t, 3>::from_shape({64, 64, 3});
  for (std::size_t i = 0; i < pic.size(); ++i) pic.data()[i] = static_cast<std::uint8_t>(i * 7919 % 251);
  io::write_png(dir / "full.png", pic);
  const auto size = fs::file_size(dir / "full.png");
  fs::copy_file(dir / "full.png", dir / "cut.png");
  fs::resize_file(dir / "cut.png", size / 2);
  CHECK_THROWS_WITH_AS(io::read_png(dir / "cut.png"), doctest::Contains("cut.png: "), error);
  // A header claiming a picture bigger than the limits.
  const auto saved = limits().max_total_bytes;
  limits().max_total_bytes = 1000;
  CHECK_THROWS_WITH_AS(io::read_png(dir / "full.png"), doctest::Contains("max_total_bytes"), error);
  limits().max_total_bytes = saved;
}

TEST_CASE("picture: percentile stretch, circles, crosses and dots") {
  xt::xtensor<float, 2> grey = xt::xtensor<float, 2>::from_shape({10, 10});  // [H, W]
  for (std::size_t i = 0; i < 100; ++i) grey.data()[i] = static_cast<float>(i);
  grey(9, 9) = 1e6f;  // a hot pixel must not wash the picture out
  grey(0, 1) = NAN;
  CHECK(io::percentile(grey, 0) == 0.0f);
  CHECK(io::percentile(grey, 50) == 50.0f);  // 99 finite values, nearest rank 49 → 50 (1 is NaN)
  auto pic = io::grey_to_rgb(grey, 0, 98);
  REQUIRE(pic.shape() == std::array<std::size_t, 3>{10, 10, 3});
  const float hi = io::percentile(grey, 98);
  CHECK(pic(0, 0, 0) == 0);
  CHECK(pic(0, 1, 0) == 0);  // NaN → black
  CHECK(pic(9, 9, 1) == 255);
  CHECK(pic(5, 0, 2) == static_cast<int>(std::lround(50.0f * 255.0f / hi)));

  auto canvas = xt::xtensor<std::uint8_t, 3>::from_shape({21, 21, 3});
  canvas.fill(0);
  io::draw_circle(canvas, 10, 10, 5, io::colours::red);
  CHECK(canvas(10, 15, 0) == io::colours::red.r);  // on the ring
  CHECK(canvas(5, 10, 1) == io::colours::red.g);
  CHECK(canvas(10, 10, 0) == 0);                   // centre untouched
  CHECK(canvas(10, 17, 0) == 0);                   // outside
  // Every painted pixel lies within half a pixel of the ring; the ring is closed (≥ 4·r pixels).
  int painted = 0;
  for (int y = 0; y < 21; ++y)
    for (int x = 0; x < 21; ++x)
      if (canvas(y, x, 0)) {
        ++painted;
        CHECK(std::abs(std::hypot(x - 10.0, y - 10.0) - 5.0) <= 0.5);
      }
  CHECK(painted >= 20);
  io::draw_cross(canvas, 2.2, 2.6, 2, io::colours::green);  // centred on pixel (x 2, y 3)
  CHECK(canvas(3, 0, 1) == io::colours::green.g);
  CHECK(canvas(5, 2, 1) == io::colours::green.g);
  CHECK(canvas(4, 3, 1) == 0);
  io::draw_dot(canvas, 20.4, 20.4, 1.0, io::colours::blue);  // clipped at the border, no crash
  CHECK(canvas(20, 20, 2) == io::colours::blue.b);
  io::draw_circle(canvas, -100, -100, 3, io::colours::white);  // entirely outside: nothing happens
}
