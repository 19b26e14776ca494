// Movies (io/movie.hpp) and event lists (io/objlist.hpp): the real deep-events and ExoDeepFinder files,
// frame folders, annotated-movie folders, the object-list round trip and bad input.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "microcount/io/movie.hpp"
#include "microcount/io/objlist.hpp"
#include "microcount/io/tiff.hpp"
#include "test_support.hpp"

using namespace microcount;
using post::event_object;

namespace {

void write_file(const std::filesystem::path& p, const std::string& text) {
  std::ofstream(p, std::ios::binary) << text;
}

xt::xtensor<float, 3> ramp_movie(std::size_t T, std::size_t H, std::size_t W) {
  auto m = xt::xtensor<float, 3>::from_shape({T, H, W});  // [T, H, W]
  for (std::size_t t = 0; t < T; ++t)
    for (std::size_t r = 0; r < H; ++r)
      for (std::size_t c = 0; c < W; ++c) m(t, r, c) = static_cast<float>(1000 * t + 10 * r + c) + 0.25f;
  return m;
}

// One grey frame [1, 1, H, W] holding `value` everywhere.
void write_frame(const std::filesystem::path& p, std::size_t H, std::size_t W, float value) {
  io::image img;
  img.pixels = xt::xtensor<float, 4>::from_shape({1, 1, H, W});  // [1, 1, H, W]
  img.pixels.fill(value);
  io::write_tiff(p, img);
}

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const microcount::error& e) {
    return e.what();
  }
  return "(no error)";
}

bool same_objects(const std::vector<event_object>& a, const std::vector<event_object>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (a[i].label != b[i].label || a[i].frame != b[i].frame || a[i].y != b[i].y || a[i].x != b[i].x || a[i].size != b[i].size)
      return false;
  return true;
}

}  // namespace

TEST_CASE("movie: the deep-events float16 multi-page TIFFs read as [T, H, W]") {
  MICROCOUNT_REQUIRE_DATA();
  const auto dir = test::data_dir() / "formats/deep-events";
  const io::movie m1 = io::read_movie(dir / "event1_images.tif");
  CHECK(m1.name == "event1_images");
  REQUIRE(m1.frames.shape()[0] == 5);
  CHECK(m1.frames.shape()[1] == 256);
  CHECK(m1.frames.shape()[2] == 256);
  const auto [lo, hi] = std::minmax_element(m1.frames.begin(), m1.frames.end());
  CHECK(*lo >= 78.0f);   // the README's stated range 78–626
  CHECK(*hi <= 626.0f);
  CHECK(*hi > 400.0f);
  // Same pixels as the generic reader, frame by frame (the channel axis dropped, no copy mistakes).
  const io::image raw = io::read_tiff(dir / "event1_images.tif");
  REQUIRE(raw.channels() == 1);
  CHECK(std::equal(raw.pixels.begin(), raw.pixels.end(), m1.frames.begin()));
  const io::movie m2 = io::read_movie(dir / "event2_ground_truth.tif");
  CHECK(m2.frames.shape()[0] == 7);
  CHECK(*std::max_element(m2.frames.begin(), m2.frames.end()) <= 254.0f);
}

TEST_CASE("movie: the deep-events napari CSV is a list of events (frame, y, x)") {
  MICROCOUNT_REQUIRE_DATA();
  const auto objects = io::read_movie_objects(test::data_dir() / "formats/deep-events/labels_1_f.csv");
  REQUIRE(objects.size() == 96);
  CHECK(std::all_of(objects.begin(), objects.end(), [](const event_object& o) { return o.label == 2 && o.size == 0; }));
  CHECK(objects[0].frame == 30.0);
  CHECK(objects[0].y == doctest::Approx(868.3638615643927));
  CHECK(objects[0].x == doctest::Approx(1282.0057908303665));
  CHECK(objects[1].frame == 29.0);
}

TEST_CASE("movie: ExoDeepFinder's objl_cell6.xml as event objects") {
  MICROCOUNT_REQUIRE_DATA();
  const auto objects = io::read_movie_objects(test::data_dir() / "formats/exodeepfinder/objl_cell6.xml");
  REQUIRE(objects.size() == 10216);
  CHECK(std::count_if(objects.begin(), objects.end(), [](const event_object& o) { return o.label == 2; }) == 216);
  CHECK(std::count_if(objects.begin(), objects.end(), [](const event_object& o) { return o.label == 1; }) == 10000);
  CHECK(objects[0].label == 2);
  CHECK(objects[0].x == 106.0);
  CHECK(objects[0].y == 128.0);
  CHECK(objects[0].frame == 0.0);
  CHECK(objects[1].frame == 9.0);
}

TEST_CASE("movie: write_movie → read_movie is exact; a two-channel TIFF is refused by name") {
  const auto dir = test::scratch("movie_roundtrip");
  const auto frames = ramp_movie(4, 6, 7);
  io::write_movie(dir / "m.tif", frames);
  const io::movie back = io::read_movie(dir / "m.tif");
  CHECK(back.name == "m");
  REQUIRE(back.frames.shape() == frames.shape());
  CHECK(back.frames == frames);
  // uint16 stores whole numbers: the 0.25 is rounded away.
  io::write_movie(dir / "m16.tif", frames, io::dtype::uint16);
  CHECK(io::read_movie(dir / "m16.tif").frames(3, 5, 6) == 3056.0f);

  io::image rgb;
  rgb.pixels = xt::xtensor<float, 4>::from_shape({2, 2, 5, 5});  // [F, C, H, W]
  rgb.pixels.fill(1);
  io::write_tiff(dir / "two.tif", rgb);
  const std::string e = error_of([&] { io::read_movie(dir / "two.tif"); });
  CHECK(e.find("two.tif") != std::string::npos);
  CHECK(e.find("one channel") != std::string::npos);
  CHECK(error_of([&] { io::read_movie(dir / "absent.tif"); }).find("absent.tif") != std::string::npos);
}

TEST_CASE("movie: a folder of frames is ordered by the last number in the names") {
  const auto dir = test::scratch("movie_frames") / "cell6";
  std::filesystem::create_directories(dir);
  // The cell number 2 comes before the frame number; 10 must follow 9, not 1.
  const std::vector<int> order{10, 1, 9, 0, 2};
  for (int n : order) write_frame(dir / ("cell2_t" + std::to_string(n) + ".tif"), 3, 4, static_cast<float>(n));
  write_file(dir / "notes.txt", "ignored");
  const io::movie m = io::read_movie(dir);
  CHECK(m.name == "cell6");
  REQUIRE(m.frames.shape()[0] == 5);
  const std::vector<float> want{0, 1, 2, 9, 10};
  for (std::size_t t = 0; t < 5; ++t) CHECK(m.frames(t, 2, 3) == want[t]);

  SUBCASE("a name without a number") {
    write_frame(dir / "extra.tif", 3, 4, 0);
    CHECK(error_of([&] { io::read_movie(dir); }).find("extra.tif: no frame number") != std::string::npos);
  }
  SUBCASE("a frame number twice") {
    write_frame(dir / "other_0010.tif", 3, 4, 0);
    CHECK(error_of([&] { io::read_movie(dir); }).find("frame number 10 appears twice") != std::string::npos);
  }
  SUBCASE("a frame of another size") {
    write_frame(dir / "cell2_t11.tif", 5, 4, 0);
    CHECK(error_of([&] { io::read_movie(dir); }).find("cell2_t11.tif: frame is 4×5") != std::string::npos);
  }
  SUBCASE("a movie above the byte limit is refused before reading pixels") {
    const auto saved = limits().max_total_bytes;
    limits().max_total_bytes = 5 * 3 * 4 * sizeof(float) - 1;
    const std::string e = error_of([&] { io::read_movie(dir); });
    limits().max_total_bytes = saved;
    CHECK(e.find("exceeds the limit") != std::string::npos);
  }
  SUBCASE("an empty folder") {
    const auto empty = test::scratch("movie_frames_empty");
    CHECK(error_of([&] { io::read_movie(empty); }).find("no TIFF files") != std::string::npos);
  }
}

TEST_CASE("event lists: XML and CSV round trip is exact, cluster_size included") {
  const auto dir = test::scratch("event_list_roundtrip");
  const std::vector<event_object> objects{{2, 445.333333333333, 12.5, 100.125, 37}, {1, 0, 0, 0, 0},
                                          {2, 7, 255.99999, 1e-3, 123456789}, {1, 3.5, 1.0 / 3.0, 2.0 / 3.0, 1}};
  io::write_event_list_xml(dir / "a.xml", objects);
  io::write_event_list_csv(dir / "a.csv", objects);
  CHECK(same_objects(io::read_movie_objects(dir / "a.xml"), objects));
  CHECK(same_objects(io::read_movie_objects(dir / "a.csv"), objects));
  // The XML is DeepFinder's objl: the first object as objl.write_xml names its attributes.
  const std::string xml = io::read_text(dir / "a.xml");
  CHECK(xml.find("<object tomo_idx=\"0\" obj_id=\"0\" class_label=\"2\" x=\"100.125\" y=\"12.5\" z=\"445.333333333333\" "
                 "cluster_size=\"37\"/>") != std::string::npos);
  CHECK(io::read_text(dir / "a.csv").rfind("tomo_idx,obj_id,class_label,x,y,z,cluster_size\n0,0,2,100.125,12.5,", 0) == 0);
  // Also readable as annotations by the generic object-list reader (frames rounded there).
  const auto ann = io::read_objlist_xml(dir / "a.xml");
  CHECK(ann.total_points() == 4);
  // Empty lists round trip too.
  io::write_event_list_xml(dir / "e.xml", {});
  CHECK(io::read_movie_objects(dir / "e.xml").empty());
}

TEST_CASE("event lists: ExoDeepFinder's plain CSV columns, and bad input named by file") {
  const auto dir = test::scratch("event_list_bad");
  write_file(dir / "plain.csv", "tomo_idx,class_label,x,y,z\n0,2,10,20,3\n0,1,5,6,7.5\n");
  const auto plain = io::read_movie_objects(dir / "plain.csv");
  REQUIRE(plain.size() == 2);
  CHECK(plain[1].label == 1);
  CHECK(plain[1].frame == 7.5);
  CHECK(plain[0].size == 0);

  const auto message = [&](const std::string& name, const std::string& text) {
    write_file(dir / name, text);
    return error_of([&] { io::read_movie_objects(dir / name); });
  };
  CHECK(message("two.xml", "<objlist><object tomo_idx=\"0\" class_label=\"2\" x=\"1\" y=\"1\" z=\"1\"/>\n"
                           "<object tomo_idx=\"1\" class_label=\"2\" x=\"1\" y=\"1\" z=\"1\"/></objlist>")
            .find("two.xml: line 2: tomo_idx 1 after tomo_idx 0") != std::string::npos);
  CHECK(message("noz.xml", "<objlist><object class_label=\"2\" x=\"1\" y=\"1\"/></objlist>").find("noz.xml: line 1: <object> has no 'z'") !=
        std::string::npos);
  CHECK(message("size.csv", "class_label,x,y,z,cluster_size\n2,1,1,1,-4\n").find("size.csv: line 2: cluster_size") != std::string::npos);
  CHECK(message("flat.csv", "index,axis-0,axis-1\n0,1,2\n").find("flat.csv: napari CSV with 2 axes") != std::string::npos);
  CHECK(message("other.csv", "a,b\n1,2\n").find("other.csv: neither an object-list CSV") != std::string::npos);
  CHECK(message("nan.csv", "class_label,x,y,z\n2,nan,1,1\n").find("nan.csv: line 2: x") != std::string::npos);
  CHECK(message("a.txt", "").find("a.txt: not a movie annotation") != std::string::npos);
  const std::vector<event_object> bad{{2, NAN, 0, 0, 0}};
  CHECK_THROWS_AS(io::write_event_list_csv(dir / "bad.csv", bad), microcount::error);
  CHECK_FALSE(std::filesystem::exists(dir / "bad.csv"));
}

TEST_CASE("annotated movies: pairs found beside each other, unmatched files named") {
  const auto dir = test::scratch("annotated_movies");
  const auto frames = ramp_movie(2, 4, 4);
  io::write_movie(dir / "b.tif", frames);
  write_file(dir / "b.csv", "index,axis-0,axis-1,axis-2\n0,1,2,3\n");
  io::write_movie(dir / "a.tiff", frames);
  io::write_event_list_xml(dir / "a.xml", std::vector<event_object>{{2, 1, 1, 1, 0}});
  std::filesystem::create_directories(dir / "c");
  write_frame(dir / "c" / "f_1.tif", 4, 4, 1);
  write_file(dir / "c.csv", "class_label,x,y,z\n2,1,1,0\n");
  write_file(dir / "readme.md", "ignored");
  std::filesystem::create_directories(dir / "run");  // a folder without annotation is not a movie
  const auto pairs = io::find_annotated_movies(dir);
  REQUIRE(pairs.size() == 3);
  CHECK(pairs[0].first.filename() == "a.tiff");
  CHECK(pairs[0].second.filename() == "a.xml");
  CHECK(pairs[1].first.filename() == "b.tif");
  CHECK(pairs[1].second.filename() == "b.csv");
  CHECK(pairs[2].first.filename() == "c");
  CHECK(io::read_movie(pairs[2].first).frames.shape()[0] == 1);
  CHECK(io::read_movie_objects(pairs[1].second).size() == 1);

  SUBCASE("a movie without annotation") {
    io::write_movie(dir / "d.tif", frames);
    CHECK(error_of([&] { io::find_annotated_movies(dir); }).find("d.tif has no d.xml or d.csv") != std::string::npos);
  }
  SUBCASE("an annotation without movie") {
    write_file(dir / "e.xml", "<objlist/>");
    CHECK(error_of([&] { io::find_annotated_movies(dir); }).find("e.xml has no movie e.tif") != std::string::npos);
  }
  SUBCASE("two annotations for one movie") {
    write_file(dir / "a.csv", "class_label,x,y,z\n");
    CHECK(error_of([&] { io::find_annotated_movies(dir); }).find("a has two annotations") != std::string::npos);
  }
  SUBCASE("no movie at all") {
    const auto empty = test::scratch("annotated_movies_empty");
    CHECK(error_of([&] { io::find_annotated_movies(empty); }).find("no annotated movies") != std::string::npos);
    CHECK(error_of([&] { io::find_annotated_movies(empty / "nope"); }).find("not a folder") != std::string::npos);
  }
}
