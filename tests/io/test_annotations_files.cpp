// Format detection, folders, write_annotations for every format, dot images, validate().
#include <algorithm>
#include <filesystem>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include <xtensor/xtensor.hpp>

#include "microcount/io/annotation_files.hpp"
#include "microcount/io/dot_image.hpp"
#include "microcount/io/png.hpp"
#include "microcount/io/tiff.hpp"
#include "test_annotations_support.hpp"

using namespace microcount;
namespace fs = std::filesystem;

TEST_CASE("annotation files: the format is found from the content of every real fixture") {
  MICROCOUNT_REQUIRE_DATA();
  const auto d = test::data_dir();
  CHECK(io::detect_annotation_format(d / "vgg-cells" / "annotations.xml") == "cvat_images");
  CHECK(io::detect_annotation_format(d / "formats" / "cvat" / "datumaro_export_task.xml") == "cvat_images");
  CHECK(io::detect_annotation_format(d / "formats" / "cvat" / "datumaro_export_project.xml") == "cvat_images");
  CHECK(io::detect_annotation_format(d / "formats" / "cvat" / "datumaro_video.xml") == "cvat_video");
  CHECK(io::detect_annotation_format(d / "formats" / "exodeepfinder" / "objl_cell6.xml") == "objlist_xml");
  CHECK(io::detect_annotation_format(d / "formats" / "deep-events" / "labels_1_f.csv") == "napari_csv");
  CHECK(io::detect_annotation_format(d / "mbm" / "BM_GRAZ_HE_0001_01_000.csv") == "napari_csv");
  CHECK(io::detect_annotation_format(d / "mbm" / "BM_GRAZ_HE_0001_01_000.tif") == "dot_image");

  // Read through the one entry point, the format is set and the counts match the format readers.
  CHECK(io::read_annotations(d / "formats" / "cvat" / "datumaro_video.xml").format == "cvat_video");
  const auto objl = io::read_annotations(d / "formats" / "exodeepfinder" / "objl_cell6.xml");
  CHECK(objl.format == "objlist_xml");
  CHECK(objl.points_per_label() == std::map<std::string, std::size_t>{{"1", 10000}, {"2", 216}});
  // A napari CSV with no image beside it names its image "<stem>.tif".
  const auto events = io::read_annotations(d / "formats" / "deep-events" / "labels_1_f.csv");
  CHECK(events.images.at(0).name == "labels_1_f.tif");
  CHECK(events.total_points() == 96);
}

TEST_CASE("annotation files: folders — CVAT annotations.xml, napari CSVs beside images, mixed formats refused") {
  MICROCOUNT_REQUIRE_DATA();
  const auto d = test::data_dir();
  const auto vgg = io::read_annotations(d / "vgg-cells");
  CHECK(vgg.format == "cvat_images");
  CHECK(vgg.total_points() == 35192);

  const auto mbm = io::read_annotations(d / "mbm");
  CHECK(mbm.format == "napari_csv");
  REQUIRE(mbm.images.size() == 44);
  CHECK(mbm.total_points() == 5553);
  for (const auto& im : mbm.images) {
    CAPTURE(im.name);
    CHECK(fs::exists(d / "mbm" / im.name));  // named after the image beside the CSV
    CHECK(fs::path(im.name).extension() == ".tif");
    CHECK(im.width == 600);  // from the TIFF's headers
    CHECK(im.height == 600);
  }
  CHECK(io::validate(mbm).empty());
  test::check_error([&] { io::read_annotations(d / "formats" / "cvat"); },
                    {"cvat", "mixes cvat_images", "cvat_video (datumaro_video.xml)"});
  test::check_error([&] { io::read_annotations(d / "formats"); }, {"no annotation files"});
  test::check_error([&] { io::read_annotations(d / "no-such-folder"); }, {"no-such-folder", "no such file"});
}

TEST_CASE("annotation files: ExoDeepFinder training folder, <movie>_objl.xml beside <movie>.h5") {
  const auto dir = test::scratch("edf_folder");
  test::write_fixture(dir, "movie1.h5", "not really h5");
  test::write_fixture(dir, "movie1_objl.xml", "<objlist><object tomo_idx=\"0\" class_label=\"1\" x=\"1\" y=\"2\" z=\"3\"/></objlist>");
  io::image movie2;
  movie2.pixels = xt::zeros<float>({std::size_t{6}, std::size_t{1}, std::size_t{24}, std::size_t{40}});  // [F, C, H, W]
  io::write_tiff(dir / "movie2.tif", movie2, io::dtype::uint8);
  test::write_fixture(dir, "movie2.xml",
                      "<objlist><object tomo_idx=\"0\" class_label=\"2\" x=\"1\" y=\"2\" z=\"3\"/>"
                      "<object tomo_idx=\"0\" class_label=\"1\" x=\"1\" y=\"2\" z=\"4\"/></objlist>");
  const auto ann = io::read_annotations(dir);
  CHECK(ann.format == "objlist_xml");
  REQUIRE(ann.images.size() == 2);
  CHECK(ann.images[0].name == "movie1.h5");
  CHECK(ann.images[1].name == "movie2.tif");
  CHECK(ann.labels == std::vector<std::string>{"1", "2"});
  CHECK(ann.points_per_label() == std::map<std::string, std::size_t>{{"1", 2}, {"2", 1}});
  // Sizes come from the TIFF beside the list (headers only); an .h5 movie leaves them unknown.
  CHECK(ann.images[1].width == 40);
  CHECK(ann.images[1].height == 24);
  CHECK(ann.images[1].frames == 6);
  CHECK(ann.images[0].width == 0);
  CHECK(io::validate(ann).empty());
  test::write_fixture(dir, "movie2.xml", "<objlist><object class_label=\"1\" x=\"40\" y=\"2\" z=\"6\"/></objlist>");
  const auto outside = io::validate(io::read_annotations(dir / "movie2.xml"));
  REQUIRE(outside.size() == 2);
  CHECK(outside[0].find("outside the 40x24 image") != std::string::npos);
  CHECK(outside[1].find("frame past the last of 6 frames") != std::string::npos);
  test::write_fixture(dir, "movie2.tif", "not really a tiff");
  test::check_error([&] { io::read_annotations(dir); }, {"movie2.tif"});
  fs::remove(dir / "movie2.tif");
  test::write_fixture(dir, "notes.csv", "what,ever\n1,2\n");
  test::check_error([&] { io::read_annotations(dir); }, {"notes.csv", "not a known annotation format"});
  test::write_fixture(dir, "notes.csv", "");
  test::check_error([&] { io::read_annotations(dir / "notes.csv"); }, {"notes.csv", "empty file"});
  test::write_fixture(dir, "notes.csv", "<html></html>");
  test::check_error([&] { io::read_annotations(dir / "notes.csv"); }, {"notes.csv", "<html> is not an annotation format"});
}

TEST_CASE("annotation files: write_annotations + read_annotations round trip for every writable format") {
  const auto dir = test::scratch("files_rt");
  const auto stills = test::random_annotations(51, 3, {"cell", "other"});
  const std::vector<std::pair<std::string, std::string>> cases{{"cvat_images", "a.xml"},
                                                               {"points_csv", "a.csv"},
                                                               {"napari_csv", "napari_folder"}};
  for (const auto& [format, name] : cases) {
    CAPTURE(format);
    io::write_annotations(dir / name, stills, format);
    const auto back = io::read_annotations(dir / name);
    CHECK(back.format == format);
    test::check_same(stills, back, format == "cvat_images");
  }
  auto movie = test::random_annotations(52, 1, {"1", "2"}, 20, 64, 64, "tomo_");
  movie.images[0].name = "tomo_0";
  movie.images[0].width = movie.images[0].height = movie.images[0].frames = 0;
  for (const auto& [format, name] : std::vector<std::pair<std::string, std::string>>{
           {"cvat_video", "v.xml"}, {"objlist_xml", "o.xml"}, {"objlist_csv", "o.csv"}, {"napari_csv", "one.csv"}}) {
    CAPTURE(format);
    io::write_annotations(dir / name, movie, format);
    auto back = io::read_annotations(dir / name);
    CHECK(back.format == format);
    REQUIRE(back.images.size() == 1);
    back.images[0].name = "tomo_0";  // video: named by <source>; napari: after the file
    back.images[0].frames = 0;
    test::check_same(movie, back);
  }
  test::check_error([&] { io::write_annotations(dir / "x.csv", stills, "napari_csv"); }, {"x.csv", "holds one image"});
  test::check_error([&] { io::write_annotations(dir / "x.tif", stills, "dot_image"); }, {"x.tif", "not supported"});
  test::check_error([&] { io::write_annotations(dir / "x.txt", stills, "yaml"); }, {"x.txt", "unknown annotation format 'yaml'"});
  io::annotations evil = stills;
  evil.images[0].name = "../../evil.tif";
  test::check_error([&] { io::write_annotations(dir / "evil", evil, "napari_csv"); }, {"evil.tif", "outside"});
  CHECK_FALSE(fs::exists(dir / "evil.csv"));
}

TEST_CASE("annotation files: vgg-cells CVAT -> napari folder -> read back: same points per image") {
  MICROCOUNT_REQUIRE_DATA();
  const auto vgg = io::read_annotations(test::data_dir() / "vgg-cells" / "annotations.xml");
  const auto dir = test::scratch("vgg_napari");
  io::write_annotations(dir, vgg, "napari_csv");
  const auto back = io::read_annotations(dir);
  CHECK(back.format == "napari_csv");
  test::check_same(vgg, back, false);
}

TEST_CASE("dot images: non-zero pixels become points; channels, value maps and frames pick labels") {
  MICROCOUNT_REQUIRE_DATA();
  // Rasterize the vgg image_001 points (whole pixels) and read them back: the same set of pixels.
  const auto vgg = io::read_cvat_xml(test::data_dir() / "vgg-cells" / "annotations.xml");
  const auto& truth = vgg.images[0];
  io::image dots;
  dots.pixels = xt::zeros<float>({std::size_t{1}, std::size_t{1}, std::size_t{256}, std::size_t{256}});  // [F, C, H, W]
  std::vector<std::pair<double, double>> expected;
  for (const auto& p : truth.points) {
    dots.pixels(0, 0, static_cast<std::size_t>(p.y), static_cast<std::size_t>(p.x)) = 255.0f;
    expected.emplace_back(p.y, p.x);
  }
  std::sort(expected.begin(), expected.end());
  expected.erase(std::unique(expected.begin(), expected.end()), expected.end());
  io::dot_image_options opt;
  opt.image_name = "image_001.tif";
  opt.label = "cell";
  const auto got = io::points_from_dot_image(dots, opt);
  CHECK(got.format == "dot_image");
  CHECK(got.labels == std::vector<std::string>{"cell"});
  REQUIRE(got.images.size() == 1);
  CHECK(got.images[0].width == 256);
  std::vector<std::pair<double, double>> found;
  for (const auto& p : got.images[0].points) {
    found.emplace_back(p.y, p.x);
    CHECK(p.frame == -1);
  }
  CHECK(found == expected);  // row-major order equals sorted (y, x)
  CHECK(got.total_points() == expected.size());
  CHECK(expected.size() == truth.points.size());  // no two vgg cells share a pixel
}

TEST_CASE("dot images: multi-channel, value map, frames, bad pixels") {
  io::image im;
  im.pixels = xt::zeros<float>({std::size_t{2}, std::size_t{3}, std::size_t{4}, std::size_t{5}});  // [F, C, H, W]
  im.pixels(0, 0, 1, 2) = 1;
  im.pixels(0, 2, 3, 4) = 7;
  im.pixels(1, 1, 0, 0) = 0.5f;
  const auto by_channel = io::points_from_dot_image(im);
  CHECK(by_channel.labels == std::vector<std::string>{"0", "1", "2"});
  REQUIRE(by_channel.images[0].points.size() == 3);
  CHECK(by_channel.images[0].frames == 2);
  const auto& p0 = by_channel.images[0].points[0];
  CHECK((p0.x == 2 && p0.y == 1 && p0.frame == 0 && p0.label == 0));
  const auto& p1 = by_channel.images[0].points[1];
  CHECK((p1.x == 4 && p1.y == 3 && p1.frame == 0 && p1.label == 2));
  const auto& p2 = by_channel.images[0].points[2];
  CHECK((p2.x == 0 && p2.y == 0 && p2.frame == 1 && p2.label == 1));
  io::dot_image_options named;
  named.channel_labels = {"red", "green", "blue"};
  CHECK(io::points_from_dot_image(im, named).labels == named.channel_labels);
  named.channel_labels = {"red"};
  test::check_error([&] { io::points_from_dot_image(im, named, "d.tif"); }, {"d.tif", "1 channel labels for 3 channels"});

  io::image grey;
  grey.pixels = xt::zeros<float>({std::size_t{1}, std::size_t{1}, std::size_t{3}, std::size_t{3}});  // [F, C, H, W]
  grey.pixels(0, 0, 0, 1) = 1;
  grey.pixels(0, 0, 2, 2) = 2;
  grey.pixels(0, 0, 1, 1) = 1;
  io::dot_image_options values;
  values.value_labels = {{1, "spot"}, {2, "event"}};
  const auto v = io::points_from_dot_image(grey, values, "g.tif");
  CHECK(v.points_per_label() == std::map<std::string, std::size_t>{{"event", 1}, {"spot", 2}});
  CHECK(v.images[0].frames == 0);
  grey.pixels(0, 0, 0, 0) = 3;
  test::check_error([&] { io::points_from_dot_image(grey, values, "g.tif"); }, {"g.tif", "pixel value 3", "row 0, column 0"});
  test::check_error([&] { io::points_from_dot_image(im, values, "d.tif"); }, {"d.tif", "single-channel"});
  grey.pixels(0, 0, 0, 0) = std::numeric_limits<float>::quiet_NaN();
  test::check_error([&] { io::points_from_dot_image(grey, {}, "g.tif"); }, {"g.tif", "not finite"});
  const auto saved = limits().max_points;
  limits().max_points = 2;
  grey.pixels(0, 0, 0, 0) = 0;
  test::check_error([&] { io::points_from_dot_image(grey, {}, "g.tif"); }, {"g.tif", "more than 2 points"});
  limits().max_points = saved;
}

TEST_CASE("dot images from files: TIFF (frames, classes by value) and PNG (RGBA: alpha dropped)") {
  const auto dir = test::scratch("dot_files");
  io::image movie;
  movie.pixels = xt::zeros<float>({std::size_t{3}, std::size_t{1}, std::size_t{16}, std::size_t{20}});  // [F, C, H, W]
  movie.pixels(0, 0, 2, 3) = 1;
  movie.pixels(2, 0, 15, 19) = 2;
  movie.pixels(2, 0, 0, 0) = 1;
  io::write_tiff(dir / "dots.tif", movie, io::dtype::uint16);
  const auto tif = io::read_annotations(dir / "dots.tif");
  CHECK(tif.format == "dot_image");
  REQUIRE(tif.images.size() == 1);
  CHECK(tif.images[0].name == "dots.tif");
  CHECK(tif.images[0].frames == 3);
  CHECK(tif.images[0].width == 20);
  REQUIRE(tif.total_points() == 3);
  CHECK((tif.images[0].points[1].x == 0 && tif.images[0].points[1].y == 0 && tif.images[0].points[1].frame == 2));
  CHECK((tif.images[0].points[2].x == 19 && tif.images[0].points[2].y == 15));
  io::dot_image_options classes;
  classes.value_labels = {{1, "spot"}, {2, "event"}};
  const auto by_value = io::read_dot_image(dir / "dots.tif", classes);
  CHECK(by_value.points_per_label() == std::map<std::string, std::size_t>{{"event", 1}, {"spot", 2}});

  xt::xtensor<std::uint8_t, 3> rgba = xt::zeros<std::uint8_t>({std::size_t{8}, std::size_t{10}, std::size_t{4}});  // [H, W, C]
  for (std::size_t y = 0; y < 8; ++y)
    for (std::size_t x = 0; x < 10; ++x) rgba(y, x, 3) = 255;  // opaque everywhere
  rgba(1, 2, 0) = 255;  // a red dot
  rgba(5, 7, 2) = 200;  // a blue dot
  io::write_png(dir / "dots.png", rgba);
  const auto png = io::read_annotations(dir / "dots.png");
  CHECK(png.format == "dot_image");
  CHECK(png.labels == std::vector<std::string>{"0", "1", "2"});
  REQUIRE(png.total_points() == 2);
  CHECK((png.images[0].points[0].x == 2 && png.images[0].points[0].y == 1 && png.labels[png.images[0].points[0].label] == "0"));
  CHECK((png.images[0].points[1].x == 7 && png.images[0].points[1].y == 5 && png.labels[png.images[0].points[1].label] == "2"));
  test::write_fixture(dir, "cut.png", std::string("\x89PNG\r\n\x1a\n", 8) + "garbage");
  test::check_error([&] { io::read_annotations(dir / "cut.png"); }, {"cut.png"});
  test::write_fixture(dir, "cut.tif", std::string("II*\0", 4) + "garbage");
  test::check_error([&] { io::read_annotations(dir / "cut.tif"); }, {"cut.tif"});
}

TEST_CASE("validate: outside points, frames past the end, nameless labels, duplicate images") {
  io::annotations a;
  a.label_index("cell");
  a.images.push_back({"a.tif", 10, 10, 5, {{1, 1, 0, 2, -1}, {10, 1, 0, 1, -1}, {1, 1, 3, 1, -1}, {1, 1, 0, 5, -1}}});
  a.images.push_back({"a.tif", 0, 0, 0, {{1e9, 1e9, 0, -1, -1}}});  // size unknown: nothing to check against
  const auto problems = io::validate(a);
  REQUIRE(problems.size() == 4);
  CHECK(problems[0].find("point 1") != std::string::npos);
  CHECK(problems[0].find("outside the 10x10 image") != std::string::npos);
  CHECK(problems[1].find("label index 3 has no name") != std::string::npos);
  CHECK(problems[2].find("frame past the last of 5 frames") != std::string::npos);
  CHECK(problems[3].find("'a.tif' appears more than once") != std::string::npos);
}
