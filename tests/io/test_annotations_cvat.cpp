// CVAT for Images / Video 1.1: real exports, round trips, malformed files.
#include <algorithm>
#include <chrono>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "microcount/core/limits.hpp"
#include "microcount/io/annotation_common.hpp"
#include "microcount/io/cvat_xml.hpp"
#include "test_annotations_support.hpp"

using namespace microcount;
using doctest::Contains;

namespace {
std::filesystem::path cvat_dir() { return test::data_dir() / "formats" / "cvat"; }
}  // namespace

TEST_CASE("cvat images: vgg-cells export, counts checked against a plain text scan") {
  MICROCOUNT_REQUIRE_DATA();
  const auto path = test::data_dir() / "vgg-cells" / "annotations.xml";
  const auto t0 = std::chrono::steady_clock::now();
  const io::annotations ann = io::read_cvat_xml(path);
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  MESSAGE("vgg-cells annotations.xml read in " << ms << " ms");
  CHECK(ann.format == "cvat_images");
  CHECK(ann.labels == std::vector<std::string>{"cell"});
  REQUIRE(ann.images.size() == 200);
  CHECK(ann.total_points() == 35192);
  CHECK(ann.points_per_label().at("cell") == 35192);
  CHECK(ann.skipped_shapes == 0);

  // Oracle: split the text at each "<image " and count `points="` in each piece.
  const std::string text = io::read_text(path);
  std::vector<std::size_t> starts;
  for (auto at = text.find("<image "); at != std::string::npos; at = text.find("<image ", at + 1)) starts.push_back(at);
  REQUIRE(starts.size() == 200);
  CHECK(test::count_substr(text, "points=\"") == 35192);
  std::size_t lo = SIZE_MAX, hi = 0;
  for (std::size_t i = 0; i < starts.size(); ++i) {
    const auto end = i + 1 < starts.size() ? starts[i + 1] : text.size();
    const std::string_view piece(text.data() + starts[i], end - starts[i]);
    const auto q = piece.find("name=\"") + 6;
    CHECK(ann.images[i].name == piece.substr(q, piece.find('"', q) - q));
    CHECK(ann.images[i].points.size() == test::count_substr(piece, "points=\""));
    CHECK(ann.images[i].width == 256);
    CHECK(ann.images[i].height == 256);
    lo = std::min(lo, ann.images[i].points.size());
    hi = std::max(hi, ann.images[i].points.size());
  }
  CHECK(lo == 74);
  CHECK(hi == 317);
  // The first cell of image_001: points="27.00,0.00".
  CHECK(ann.images[0].name == "image_001.tif");
  CHECK(ann.images[0].points[0].x == 27.0);
  CHECK(ann.images[0].points[0].y == 0.0);
  CHECK(ann.images[0].points[0].frame == -1);
  CHECK(io::validate(ann).empty());

  // Written back and read again: the same points, exactly.
  const auto out = test::scratch("cvat_vgg") / "annotations.xml";
  io::write_cvat_images(out, ann);
  test::check_same(ann, io::read_cvat_xml(out));
}

TEST_CASE("cvat images: datumaro task export keeps the <points> element's three points, skips the rest") {
  MICROCOUNT_REQUIRE_DATA();
  const io::annotations ann = io::read_cvat_xml(cvat_dir() / "datumaro_export_task.xml");
  CHECK(ann.format == "cvat_images");
  CHECK(ann.labels == std::vector<std::string>{"label1", "label2"});
  REQUIRE(ann.images.size() == 2);
  CHECK(ann.images[0].name == "img0.jpg");
  CHECK(ann.images[0].width == 8);
  CHECK(ann.images[0].points.empty());
  CHECK(ann.images[1].name == "img1.jpg");
  CHECK(ann.images[1].height == 10);
  REQUIRE(ann.images[1].points.size() == 3);  // points="1,2;3,4;5,6"
  for (int k = 0; k < 3; ++k) {
    CHECK(ann.images[1].points[k].x == 1 + 2 * k);
    CHECK(ann.images[1].points[k].y == 2 + 2 * k);
    CHECK(ann.labels[ann.images[1].points[k].label] == "label2");
  }
  CHECK(ann.points_per_label() == std::map<std::string, std::size_t>{{"label1", 0}, {"label2", 3}});
  CHECK(ann.skipped_shapes == 3);
  CHECK(ann.skipped_by_kind == std::map<std::string, std::size_t>{{"box", 1}, {"polygon", 1}, {"polyline", 1}});
}

TEST_CASE("cvat images: project export repeats images per subset; each subset stays a distinct image") {
  MICROCOUNT_REQUIRE_DATA();
  const io::annotations ann = io::read_cvat_xml(cvat_dir() / "datumaro_export_project.xml");
  CHECK(ann.labels == std::vector<std::string>{"label1", "label2"});
  REQUIRE(ann.images.size() == 6);
  std::set<std::string> names;
  for (const auto& im : ann.images) names.insert(im.name);
  CHECK(names == std::set<std::string>{"Test/img0.jpg", "Test/img1.jpg", "Train/img0.jpg", "Train/img1.jpg",
                                       "Validation/img0.jpg", "Validation/img1.jpg"});
  CHECK(ann.total_points() == 9);
  for (const auto& im : ann.images) CHECK(im.points.size() == (im.name.find("img1") != std::string::npos ? 3u : 0u));
  CHECK(ann.skipped_by_kind == std::map<std::string, std::size_t>{{"box", 3}, {"polygon", 3}, {"polyline", 3}});
  CHECK(ann.skipped_shapes == 9);
}

TEST_CASE("cvat video: tracks become one movie; outside frames dropped; other shapes counted per visible frame") {
  MICROCOUNT_REQUIRE_DATA();
  const io::annotations ann = io::read_cvat_xml(cvat_dir() / "datumaro_video.xml");
  CHECK(ann.format == "cvat_video");
  CHECK(ann.labels == std::vector<std::string>{"klhg", "z U k", "II"});
  REQUIRE(ann.images.size() == 1);
  const auto& movie = ann.images[0];
  CHECK(movie.name == "t.mp4");  // <meta><source>
  CHECK(movie.width == 25);
  CHECK(movie.height == 20);
  CHECK(movie.frames == 20);  // stop_frame 19
  // Track 1 at frame 10: points="21.95,8.00;2.55,15.09;2.23,3.16"; its frame-13 element is outside.
  REQUIRE(movie.points.size() == 3);
  const double xs[] = {21.95, 2.55, 2.23}, ys[] = {8.0, 15.09, 3.16};
  for (int k = 0; k < 3; ++k) {
    CHECK(movie.points[k].x == xs[k]);
    CHECK(movie.points[k].y == ys[k]);
    CHECK(movie.points[k].frame == 10);
    CHECK(ann.labels[movie.points[k].label] == "klhg");
  }
  // Boxes at frames 10 (visible), 13 and 16 (outside); polylines at 13 (visible) and 16 (outside).
  CHECK(ann.skipped_by_kind == std::map<std::string, std::size_t>{{"box", 1}, {"polyline", 1}});
}

TEST_CASE("cvat images: writer -> reader round trip keeps names, sizes, labels (also empty ones), exact points") {
  io::annotations a = test::random_annotations(11, 5, {"cell", "nucleus & <co>", "\"quoted\" label", "empty"});
  a.images.push_back(io::image_points{"no points.tif", 64, 32, 0, {}});
  a.images[1].width = 0;  // size unknown is kept unknown
  a.images[1].height = 0;
  const auto f = test::scratch("cvat_rt") / "out.xml";
  io::write_cvat_images(f, a);
  const io::annotations b = io::read_cvat_xml(f);
  CHECK(b.format == "cvat_images");
  CHECK(b.labels == a.labels);
  test::check_same(a, b);
  CHECK(b.points_per_label().at("empty") == 0);
}

TEST_CASE("cvat video: writer -> reader round trip of a movie; stills become frames; movie -> images by frame") {
  io::annotations movie = test::random_annotations(12, 1, {"event", "spot"}, 50);
  movie.images[0].points.push_back({3.5, 4.25, 0, 49, -1});  // the last frame: no closing outside key frame
  const auto dir = test::scratch("cvat_video_rt");
  io::write_cvat_video(dir / "v.xml", movie);
  const io::annotations back = io::read_cvat_xml(dir / "v.xml");
  CHECK(back.format == "cvat_video");
  CHECK(back.images[0].frames == 50);
  test::check_same(movie, back);

  // The same movie in the images format: one <image> per frame holding that frame's points.
  io::write_cvat_images(dir / "frames.xml", movie);
  const io::annotations frames = io::read_cvat_xml(dir / "frames.xml");
  REQUIRE(frames.images.size() == 50);
  std::map<int, std::size_t> per_frame;
  for (const auto& p : movie.images[0].points) ++per_frame[p.frame];
  for (int f = 0; f < 50; ++f) {
    char name[32];
    std::snprintf(name, sizeof name, "frame_%06d", f);
    CHECK(frames.images[f].name == name);
    CHECK(frames.images[f].points.size() == per_frame[f]);
  }
  CHECK(frames.total_points() == movie.total_points());

  // Still images written as a video: image i is frame i.
  const io::annotations stills = test::random_annotations(13, 3, {"cell"});
  io::write_cvat_video(dir / "stills.xml", stills);
  const io::annotations as_video = io::read_cvat_xml(dir / "stills.xml");
  REQUIRE(as_video.images.size() == 1);
  CHECK(as_video.images[0].frames == 3);
  std::size_t k = 0;
  for (int i = 0; i < 3; ++i)
    for (const auto& p : stills.images[i].points) {
      CHECK(as_video.images[0].points[k].frame == i);
      CHECK(as_video.images[0].points[k].x == p.x);
      ++k;
    }
  // Two movies cannot share one video.
  io::annotations two = test::random_annotations(14, 2, {"cell"}, 5);
  CHECK_THROWS_WITH_AS(io::cvat_video_xml(two), Contains("one movie"), error);
}

TEST_CASE("cvat: malformed files fail with the file name, the line and the problem") {
  const auto dir = test::scratch("cvat_bad");
  const auto bad = [&](const std::string& name, const std::string& text, const std::string& needle) {
    const auto f = test::write_fixture(dir, name, text);
    CAPTURE(name);
    test::check_error([&] { io::read_cvat_xml(f); }, {name, needle});
  };
  const std::string head = "<annotations>\n<version>1.1</version>\n";
  bad("unclosed.xml", head + "<image name=\"a\" width=\"4\" height=\"4\">\n<points label=\"c\" points=\"1,2\">\n</annotations>",
      "line ");
  bad("unclosed2.xml", head + "<image name=\"a\">\n<points label=\"c\" points=\"1,2\">\n</annotations>", "XML error");
  bad("empty.xml", "", "XML error");
  bad("root.xml", "<objlist><object/></objlist>", "expected <annotations>");
  bad("nopoints.xml", head + "<image name=\"a\">\n\n<points label=\"c\"/></image></annotations>", "line 5");
  bad("nopoints2.xml", head + "<image name=\"a\"><points label=\"c\"/></image></annotations>", "no 'points' attribute");
  bad("nolabel.xml", head + "<image name=\"a\"><points points=\"1,2\"/></image></annotations>", "no 'label'");
  bad("noname.xml", head + "<image width=\"3\"><points label=\"c\" points=\"1,2\"/></image></annotations>", "no 'name'");
  bad("text.xml", head + "<image name=\"a\"><points label=\"c\" points=\"1,abc\"/></image></annotations>",
      "'abc' is not a finite number");
  bad("nan.xml", head + "<image name=\"a\"><points label=\"c\" points=\"nan,1\"/></image></annotations>", "finite");
  bad("inf.xml", head + "<image name=\"a\"><points label=\"c\" points=\"1;inf,2\"/></image></annotations>", "pair");
  bad("inf2.xml", head + "<image name=\"a\"><points label=\"c\" points=\"1,2;inf,2\"/></image></annotations>", "finite");
  bad("neg.xml", head + "<image name=\"a\"><points label=\"c\" points=\"-3,4\"/></image></annotations>", "negative");
  bad("triple.xml", head + "<image name=\"a\"><points label=\"c\" points=\"1,2,3\"/></image></annotations>", "x,y pair");
  bad("emptypts.xml", head + "<image name=\"a\"><points label=\"c\" points=\"\"/></image></annotations>", "empty points");
  bad("width.xml", head + "<image name=\"a\" width=\"wide\"><points label=\"c\" points=\"1,2\"/></image></annotations>",
      "width 'wide'");
  bad("hugewidth.xml", head + "<image name=\"a\" width=\"99999999999\"></image></annotations>", "whole number");
  bad("twice.xml", head + "<image name=\"a\"/><image name=\"a\"/></annotations>", "appears twice");
  bad("mixed.xml", head + "<image name=\"a\"/><track label=\"c\"/></annotations>", "mixes <image> and <track>");
  bad("noframe.xml", head + "<track label=\"c\"><points outside=\"0\" points=\"1,2\"/></track></annotations>", "'frame'");
  bad("badframe.xml", head + "<track label=\"c\"><points frame=\"-2\" points=\"1,2\"/></track></annotations>", "frame '-2'");
  CHECK_THROWS_WITH_AS(io::read_cvat_xml(dir / "missing.xml"), Contains("missing.xml"), error);
}

TEST_CASE("cvat: a DOCTYPE entity bomb is not expanded; the point limit is enforced") {
  const auto dir = test::scratch("cvat_hostile");
  std::string bomb = "<?xml version=\"1.0\"?>\n<!DOCTYPE annotations [\n <!ENTITY lol \"lol\">\n";
  for (int i = 1; i <= 9; ++i)
    bomb += " <!ENTITY lol" + std::to_string(i) + " \"" + [&] {
      std::string s;
      for (int k = 0; k < 10; ++k) s += "&lol" + (i == 1 ? std::string() : std::to_string(i - 1)) + ";";
      return s;
    }() + "\">\n";
  bomb += "]>\n<annotations><meta><task><name>&lol9;</name></task></meta>\n"
          "<image name=\"a\"><points label=\"&lol9;\" points=\"1,2\"/></image></annotations>\n";
  const io::annotations ann = io::read_cvat_xml(test::write_fixture(dir, "bomb.xml", bomb));
  REQUIRE(ann.labels.size() == 1);
  CHECK(ann.labels[0].size() < 16);  // the literal "&lol9;", never 10^9 "lol"s
  // An entity in a coordinate stays literal text, so it is not a coordinate.
  const auto f = test::write_fixture(dir, "bomb2.xml", bomb.substr(0, bomb.find("]>") + 2) +
                                                           "<annotations><image name=\"a\"><points label=\"c\" "
                                                           "points=\"&lol9;,1\"/></image></annotations>");
  test::check_error([&] { io::read_cvat_xml(f); }, {"bomb2.xml", "line ", "'&lol9'"});

  const auto saved = limits().max_points;
  limits().max_points = 5;
  const auto many = test::write_fixture(
      dir, "many.xml", "<annotations><image name=\"a\"><points label=\"c\" points=\"1,1;2,2;3,3;4,4;5,5;6,6\"/></image></annotations>");
  test::check_error([&] { io::read_cvat_xml(many); }, {"many.xml", "more than 5 points"});
  limits().max_points = saved;
  CHECK(io::read_cvat_xml(many).total_points() == 6);
}

TEST_CASE("cvat: points outside the stated image are read and reported by validate()") {
  const auto dir = test::scratch("cvat_outside");
  const auto f = test::write_fixture(dir, "out.xml",
                                     "<annotations><image name=\"a.tif\" width=\"10\" height=\"8\">"
                                     "<points label=\"c\" points=\"9.4,7.4;9.5,1;1,7.5;-0.5,-0.5\"/></image></annotations>");
  const io::annotations ann = io::read_cvat_xml(f);
  CHECK(ann.total_points() == 4);
  const auto problems = io::validate(ann);
  REQUIRE(problems.size() == 2);  // x 9.5 and y 7.5 lie past the last pixel; (9.4, 7.4) and (-0.5, -0.5) are inside
  CHECK(problems[0].find("a.tif point 1") != std::string::npos);
  CHECK(problems[0].find("outside the 10x8 image") != std::string::npos);
  CHECK(problems[1].find("point 2") != std::string::npos);
}
