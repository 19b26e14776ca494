// Input limits and bad input across readers (docs/reliability.md): a header may not ask for more than
// microcount::limits() allows, whatever the file's size; images without annotations and annotations
// without images are reported by name; NaN / infinite pixels reach the caller unchanged, are left out of
// intensity statistics and become 0 when normalised; NaN / infinite coordinates are rejected by every text reader.
#include <doctest/doctest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>

#include "microcount/core/limits.hpp"
#include "microcount/data/dataset.hpp"
#include "microcount/data/normalize.hpp"
#include "microcount/io/atomic_file.hpp"
#include "microcount/io/cvat_xml.hpp"
#include "microcount/io/napari_csv.hpp"
#include "microcount/io/objlist.hpp"
#include "microcount/io/points_csv.hpp"
#include "microcount/io/tiff.hpp"
#include "test_support.hpp"

using namespace microcount;

namespace {

// A classic little-endian TIFF whose single IFD claims width x height 8-bit grey pixels in one strip of
// `strip_bytes` bytes (the file holds only those): the shape of a hostile or truncated header.
std::string lying_tiff(std::uint32_t width, std::uint32_t height, std::uint32_t strip_bytes) {
  std::string b = "II*";
  b += '\0';
  const auto u16 = [&](std::uint16_t v) { b.append(reinterpret_cast<const char*>(&v), 2); };
  const auto u32 = [&](std::uint32_t v) { b.append(reinterpret_cast<const char*>(&v), 4); };
  u32(8);
  const std::uint32_t entries = 9, strip_at = 8 + 2 + entries * 12 + 4;
  u16(entries);
  const auto entry = [&](std::uint16_t tag, std::uint16_t type, std::uint32_t value) {
    u16(tag);
    u16(type);
    u32(1);
    if (type == 3) {
      u16(static_cast<std::uint16_t>(value));
      u16(0);
    } else {
      u32(value);
    }
  };
  entry(256, 4, width);        // ImageWidth
  entry(257, 4, height);       // ImageLength
  entry(258, 3, 8);            // BitsPerSample
  entry(259, 3, 1);            // Compression: none
  entry(262, 3, 1);            // Photometric: min-is-black
  entry(273, 4, strip_at);     // StripOffsets
  entry(277, 3, 1);            // SamplesPerPixel
  entry(278, 4, height);       // RowsPerStrip
  entry(279, 4, strip_bytes);  // StripByteCounts
  u32(0);                      // no next IFD
  b.append(strip_bytes, '\x7f');
  return b;
}

// Restores the process-wide limits when a test case ends, whatever it changed.
struct limits_guard {
  input_limits saved = limits();
  ~limits_guard() { limits() = saved; }
};

}  // namespace

TEST_CASE("reliability: a TIFF header cannot ask for more than limits() allow") {
  const auto dir = test::scratch("reliability_tiff");
  limits_guard keep;
  SUBCASE("100000 x 100000 pixels in a 200-byte file: over max_total_bytes, refused before allocating") {
    const auto f = dir / "huge.tif";
    io::write_text_atomically(f, lying_tiff(100000, 100000, 16));
    test::throws_naming([&] { (void)io::read_tiff(f); }, {"huge.tif", "max_total_bytes"});
  }
  SUBCASE("a side over max_image_side") {
    const auto f = dir / "wide.tif";
    io::write_text_atomically(f, lying_tiff(5000, 2, 16));
    limits().max_image_side = 4096;
    test::throws_naming([&] { (void)io::read_tiff_info(f); }, {"wide.tif", "max_image_side"});
  }
  SUBCASE("more pages than max_pages") {
    io::image movie;
    movie.pixels = xt::zeros<float>({std::size_t{3}, std::size_t{1}, std::size_t{4}, std::size_t{4}});  // [F, C, H, W]
    const auto f = dir / "movie.tif";
    io::write_tiff(f, movie, io::dtype::uint8);
    CHECK(io::read_tiff(f).frames() == 3);
    limits().max_pages = 2;
    test::throws_naming([&] { (void)io::read_tiff(f); }, {"movie.tif", "max_pages"});
  }
  SUBCASE("a strip shorter than the header says is an error naming the file, not a read past the data") {
    const auto f = dir / "short_strip.tif";
    io::write_text_atomically(f, lying_tiff(64, 64, 100));
    test::throws_naming([&] { (void)io::read_tiff(f); }, {"short_strip.tif"});
  }
}

TEST_CASE("reliability: NaN and infinite pixels reach the caller unchanged, stay out of intensity statistics and become 0 when normalised") {
  const auto dir = test::scratch("reliability_nan");
  io::image img;
  img.pixels = xt::xtensor<float, 4>::from_shape({1, 1, 4, 4});  // [F, C, H, W]
  for (std::size_t i = 0; i < 16; ++i) img.pixels.data()[i] = static_cast<float>(i);
  img.pixels(0, 0, 0, 1) = std::numeric_limits<float>::quiet_NaN();
  img.pixels(0, 0, 2, 2) = std::numeric_limits<float>::infinity();
  img.pixels(0, 0, 3, 3) = -std::numeric_limits<float>::infinity();
  io::write_tiff(dir / "nan.tif", img, io::dtype::float32);
  const io::image back = io::read_tiff(dir / "nan.tif");
  CHECK(std::isnan(back.pixels(0, 0, 0, 1)));
  CHECK(back.pixels(0, 0, 2, 2) == std::numeric_limits<float>::infinity());
  CHECK(back.pixels(0, 0, 3, 3) == -std::numeric_limits<float>::infinity());
  // The 0 % / 100 % percentiles are the finite extremes 0 and 14: finite pixels map onto [0, 1].
  data::sample s;
  s.name = "nan.tif";
  s.image = back;
  data::normalize_percentile(s, 0, 100);
  CHECK(s.image.pixels(0, 0, 0, 0) == doctest::Approx(0.0));
  CHECK(s.image.pixels(0, 0, 3, 2) == doctest::Approx(14.0 / 14.0));
  // Normalisation sets the non-finite pixels to 0, the background level: a network never sees them.
  CHECK(s.image.pixels(0, 0, 0, 1) == 0.0f);
  CHECK(s.image.pixels(0, 0, 2, 2) == 0.0f);
  CHECK(s.image.pixels(0, 0, 3, 3) == 0.0f);
  data::sample fixed = s;
  fixed.image = back;
  data::normalize_fixed(fixed, 1, 2);
  CHECK(fixed.image.pixels(0, 0, 0, 2) == doctest::Approx(0.5));
  CHECK(fixed.image.pixels(0, 0, 0, 1) == 0.0f);
  CHECK(fixed.image.pixels(0, 0, 2, 2) == 0.0f);
  // Integer output has no NaN: the writer stores 0.
  io::write_tiff(dir / "nan_u8.tif", img, io::dtype::uint8);
  CHECK(io::read_tiff(dir / "nan_u8.tif").pixels(0, 0, 0, 1) == 0.0f);
}

TEST_CASE("reliability: NaN and infinite coordinates are rejected by every text reader, naming the line") {
  for (const char* bad : {"nan", "inf", "-inf", "1e999"}) {
    const std::string v = bad;
    CAPTURE(v);
    test::throws_naming([&] { (void)io::parse_napari_csv("index,axis-0,axis-1\n0,1," + v + "\n", "n.csv", "a.tif"); }, {"n.csv", "line 2"});
    test::throws_naming([&] { (void)io::parse_points_csv("image,x,y\na.tif," + v + ",2\n", "p.csv"); }, {"p.csv", "line 2"});
    test::throws_naming([&] { (void)io::parse_objlist_csv("tomo_idx,class_label,x,y,z\n0,1,2," + v + ",0\n", "o.csv"); }, {"o.csv", "line 2"});
    test::throws_naming([&] { (void)io::parse_cvat_xml("<annotations><image id=\"0\" name=\"a.tif\" width=\"9\" height=\"9\">\n"
                           "<points label=\"c\" points=\"1," + v + "\"/></image></annotations>",
                           "c.xml"); }, {"c.xml", "line 2"});
  }
}

TEST_CASE("reliability: images without annotations and annotations without images are named") {
  const auto dir = test::scratch("reliability_dataset");
  io::image img;
  img.pixels = xt::zeros<float>({std::size_t{1}, std::size_t{1}, std::size_t{8}, std::size_t{8}});  // [F, C, H, W]
  io::write_tiff(dir / "a.tif", img, io::dtype::uint8);
  io::write_tiff(dir / "stray.tif", img, io::dtype::uint8);
  io::write_text_atomically(dir / "annotations.csv", "image,x,y\na.tif,1,2\n");
  const data::dataset ds = data::open_dataset(dir);
  REQUIRE(ds.warnings().size() == 1);
  CHECK(ds.warnings()[0].find("stray.tif: no annotation") != std::string::npos);

  io::write_text_atomically(dir / "annotations.csv", "image,x,y\na.tif,1,2\nmissing_007.tif,3,4\n");
  test::throws_naming([&] { (void)data::open_dataset(dir); }, {"missing_007.tif", "not in the folder"});
}

TEST_CASE("reliability: temporary files of killed writers are removed, those of live processes kept") {
  const auto dir = test::scratch("reliability_stale_tmp");
  // A pid that is surely gone: a child that has exited and been reaped.
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  REQUIRE(child > 0);
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  const auto dead = dir / (".latest_model.mcm.tmp-" + std::to_string(child));
  const auto alive = dir / (".best_model.mcm.tmp-" + std::to_string(::getpid()));
  const auto other = dir / ".notes.tmp-abc";
  for (const auto& f : {dead, alive, other}) io::write_text_atomically(f, "x");
  io::write_text_atomically(dir / "latest_model.mcm", "kept");
  CHECK(io::remove_stale_temporaries(dir) == 1);
  CHECK_FALSE(std::filesystem::exists(dead));
  CHECK(std::filesystem::exists(alive));
  CHECK(std::filesystem::exists(other));
  CHECK(io::read_text(dir / "latest_model.mcm") == "kept");
  CHECK(io::remove_stale_temporaries(dir / "no_such_folder") == 0);
}
