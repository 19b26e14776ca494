// The CSV tokenizer and the CSV-based formats: napari points, plain points CSV, ExoDeepFinder object
// lists (XML and CSV).
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "microcount/io/csv.hpp"
#include "microcount/io/napari_csv.hpp"
#include "microcount/io/objlist.hpp"
#include "microcount/io/points_csv.hpp"
#include "test_annotations_support.hpp"

using namespace microcount;

namespace {
std::vector<io::csv::row> all_rows(std::string_view text) {
  io::csv::tokenizer tok(text, "t.csv");
  std::vector<io::csv::row> rows;
  io::csv::row r;
  while (tok.next(r)) rows.push_back(r);
  return rows;
}
}  // namespace

TEST_CASE("csv tokenizer: BOM, CRLF, quotes with commas, quotes and line breaks, blank lines, line numbers") {
  const auto rows = all_rows("\xEF\xBB\xBF" "a,b\r\n1,\"x,y\"\r\n\r\n  \n\"q\"\"q\",\"two\nlines\"\n3,\n\n4,5");
  REQUIRE(rows.size() == 5);
  CHECK(rows[0].line == 1);
  CHECK(rows[0].fields == std::vector<std::string>{"a", "b"});
  CHECK(rows[1].line == 2);
  CHECK(rows[1].fields == std::vector<std::string>{"1", "x,y"});
  CHECK(rows[2].line == 5);
  CHECK(rows[2].fields == std::vector<std::string>{"q\"q", "two\nlines"});
  CHECK(rows[3].line == 7);
  CHECK(rows[3].fields == std::vector<std::string>{"3", ""});
  CHECK(rows[4].line == 9);
  CHECK(rows[4].fields == std::vector<std::string>{"4", "5"});
  CHECK(all_rows("").empty());
  CHECK(all_rows("\n\r\n").empty());
  CHECK(all_rows("\"\"").size() == 1);  // one empty quoted field is a row, not a blank line
  CHECK(all_rows("a\rb").size() == 2);  // lone CR ends a line too

  test::check_error([] { all_rows("a,b\n1,\"open\n2,3\n"); }, {"t.csv", "line 2", "never closed"});
  test::check_error([] { all_rows("a\n\"x\"y\n"); }, {"t.csv", "line 2", "after a closing quote"});
  for (const std::string field : {"plain", "a,b", "say \"hi\"", "line\nbreak", " padded ", ""}) {
    const auto back = all_rows(io::csv::quoted(field) + ",end\n");
    REQUIRE(back.size() == 1);
    CHECK(back[0].fields[0] == field);
  }
}

TEST_CASE("napari csv: the 44 MBM files, counts and first points checked against the raw lines") {
  MICROCOUNT_REQUIRE_DATA();
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(test::data_dir() / "mbm"))
    if (e.path().extension() == ".csv") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  REQUIRE(files.size() == 44);
  std::size_t total = 0, lo = SIZE_MAX, hi = 0;
  for (const auto& f : files) {
    const auto ann = io::read_napari_csv(f, f.stem().string() + ".tif");
    CHECK(ann.format == "napari_csv");
    CHECK(ann.labels == std::vector<std::string>{"point"});
    const std::string text = io::read_text(f);
    // Oracle: one point per non-empty line after the header.
    const std::size_t lines = test::count_substr(text, "\n") + (text.back() == '\n' ? 0 : 1) - 1;
    REQUIRE(ann.images.size() == 1);
    CHECK(ann.images[0].points.size() == lines);
    // The first data row "0,<row>,<col>": axis-0 is y, axis-1 is x.
    const auto row_start = text.find('\n') + 1;
    const std::string first = text.substr(row_start, text.find('\n', row_start) - row_start);
    const auto c1 = first.find(','), c2 = first.find(',', c1 + 1);
    CHECK(ann.images[0].points[0].y == std::strtod(first.substr(c1 + 1, c2 - c1 - 1).c_str(), nullptr));
    CHECK(ann.images[0].points[0].x == std::strtod(first.substr(c2 + 1).c_str(), nullptr));
    CHECK(ann.images[0].points[0].frame == -1);
    total += lines;
    lo = std::min(lo, lines);
    hi = std::max(hi, lines);
  }
  CHECK(total == 5553);
  CHECK(lo == 65);
  CHECK(hi == 195);
  const auto first = io::read_napari_csv(files[0], "x.tif");
  CHECK(first.images[0].points[0].x == 247.0);  // "0,8.0,247.0"
  CHECK(first.images[0].points[0].y == 8.0);
}

TEST_CASE("napari csv: deep-events 2D+t file (frame, y, x), float frames, full-precision coordinates") {
  MICROCOUNT_REQUIRE_DATA();
  const auto path = test::data_dir() / "formats" / "deep-events" / "labels_1_f.csv";
  const auto ann = io::read_napari_csv(path, "event1_images.tif");
  const auto& pts = ann.images.at(0).points;
  REQUIRE(pts.size() == 96);
  CHECK(pts[0].frame == 30);  // "0.0,30.0,868.3638615643927,1282.0057908303665"
  CHECK(pts[0].y == 868.3638615643927);
  CHECK(pts[0].x == 1282.0057908303665);
  CHECK(pts[95].frame == 39);  // "95.0,39.0,842.8396747462048,81.47885198539879"
  CHECK(pts[95].x == 81.47885198539879);
  // The round trip through the writer gives the same points.
  const auto out = test::scratch("napari_events") / "labels.csv";
  io::write_napari_csv(out, ann, ann.images[0]);
  CHECK(io::read_text(out).substr(0, 27) == "index,axis-0,axis-1,axis-2\n");
  test::check_same(ann, io::read_napari_csv(out, "event1_images.tif"));
}

TEST_CASE("napari csv: writer -> reader round trips for 2, 3 and 4 axes, with and without labels") {
  const auto dir = test::scratch("napari_rt");
  // 2 axes, one default label: no label column.
  auto plain = test::random_annotations(21, 1, {"point"});
  io::write_napari_csv(dir / "plain.csv", plain, plain.images[0]);
  CHECK(io::read_text(dir / "plain.csv").substr(0, 20) == "index,axis-0,axis-1\n");
  test::check_same(plain, io::read_napari_csv(dir / "plain.csv", "img_0.tif"), false);
  // 3 axes with labels that need quoting.
  auto movie = test::random_annotations(22, 1, {"a,b", "say \"x\"", "unused"}, 9);
  movie.images[0].frames = 0;  // only the points carry frames
  io::write_napari_csv(dir / "movie.csv", movie, movie.images[0]);
  test::check_same(movie, io::read_napari_csv(dir / "movie.csv", "img_0.tif"), false);
  // 4 axes: frame, channel, y, x.
  auto stack = test::random_annotations(23, 1, {"c0", "c1"}, 4);
  for (std::size_t i = 0; i < stack.images[0].points.size(); ++i) stack.images[0].points[i].channel = static_cast<int>(i % 3);
  io::write_napari_csv(dir / "stack.csv", stack, stack.images[0]);
  CHECK(io::read_text(dir / "stack.csv").substr(0, 33) == "index,axis-0,axis-1,axis-2,axis-3");
  test::check_same(stack, io::read_napari_csv(dir / "stack.csv", "img_0.tif"), false);
  // A folder of images: one CSV per image named after it.
  const auto many = test::random_annotations(24, 3, {"cell", "other"});
  io::write_napari_csv_folder(dir / "folder", many);
  for (const auto& im : many.images) {
    const auto f = dir / "folder" / (std::filesystem::path(im.name).stem().string() + ".csv");
    REQUIRE(std::filesystem::exists(f));
    CHECK(io::read_napari_csv(f, im.name).images[0].points.size() == im.points.size());
  }
  CHECK_THROWS_AS(io::napari_csv_name("../outside.tif"), error);
  CHECK_THROWS_AS(io::napari_csv_name("/abs.tif"), error);
}

TEST_CASE("napari csv: property columns give labels; explicit label column; default label for empty cells") {
  const std::string text =
      "index,axis-0,axis-1,confidence,kind\n0,1,2,0.9,big\n1,3,4,0.5,\n2,5,6,0.9,small\n";
  const auto by_first = io::parse_napari_csv(text, "p.csv", "p.tif");
  CHECK(by_first.labels == std::vector<std::string>{"0.9", "0.5"});
  io::napari_options opt;
  opt.label_column = "kind";
  opt.default_label = "unknown";
  const auto by_kind = io::parse_napari_csv(text, "p.csv", "p.tif", opt);
  CHECK(by_kind.labels == std::vector<std::string>{"big", "unknown", "small"});
  const auto named = io::parse_napari_csv("index,axis-0,axis-1,size,label\n0,1,2,3,cell\n", "p.csv", "p.tif");
  CHECK(named.labels == std::vector<std::string>{"cell"});
  // Without the index column (a hand-trimmed file), axes start at the first column.
  const auto no_index = io::parse_napari_csv("axis-0,axis-1,axis-2,label\n7,3,4,cell\n", "p.csv", "p.tif");
  REQUIRE(no_index.images[0].points.size() == 1);
  CHECK(no_index.images[0].points[0].frame == 7);
  CHECK(no_index.images[0].points[0].y == 3.0);
  CHECK(no_index.images[0].points[0].x == 4.0);
  CHECK(no_index.labels == std::vector<std::string>{"cell"});
  opt.label_column = "nope";
  test::check_error([&] { io::parse_napari_csv(text, "p.csv", "p.tif", opt); }, {"p.csv", "no column named 'nope'"});
}

TEST_CASE("napari csv: malformed files name the file and the line") {
  const auto dir = test::scratch("napari_bad");
  const auto bad = [&](const std::string& name, const std::string& text, std::initializer_list<std::string_view> needles) {
    const auto f = test::write_fixture(dir, name, text);
    CAPTURE(name);
    test::check_error([&] { io::read_napari_csv(f, "x.tif"); }, needles);
    test::check_error([&] { io::read_napari_csv(f, "x.tif"); }, {name});
  };
  bad("header.csv", "x,y\n1,2\n", {"not a napari points CSV"});
  bad("empty.csv", "", {"empty file"});
  bad("onlyaxis0.csv", "index,axis-0\n0,1\n", {"not a napari"});
  bad("axes5.csv", "index,axis-0,axis-1,axis-2,axis-3,axis-4\n0,1,2,3,4,5\n", {"5 axes"});
  bad("halfframe.csv", "index,axis-0,axis-1,axis-2\n0,1,2,3\n1,30.5,2,3\n", {"line 3", "axis-0 (frame) '30.5'"});
  bad("nan.csv", "index,axis-0,axis-1\n0,nan,2\n", {"line 2", "axis-0 'nan' is not a finite number"});
  bad("inf.csv", "index,axis-0,axis-1\n0,1,-inf\n", {"line 2", "axis-1"});
  bad("neg.csv", "index,axis-0,axis-1\n0,1,2\n1,-4,2\n", {"line 3", "negative"});
  bad("width.csv", "index,axis-0,axis-1\n0,1,2,3\n", {"line 2", "4 fields where the header has 3"});
  bad("text.csv", "index,axis-0,axis-1\n0,1,2x\n", {"'2x'"});
  bad("quote.csv", "index,axis-0,axis-1\n0,\"1,2\n", {"line 2", "never closed"});
  // Accepted: CRLF, BOM, blank lines, quoted numbers, "+" signs, float frames.
  const auto ok = test::write_fixture(dir, "ok.csv", "\xEF\xBB\xBFindex,axis-0,axis-1,axis-2\r\n\r\n0,\"30.0\",+1.5,2\r\n");
  const auto a = io::read_napari_csv(ok, "ok.tif");
  REQUIRE(a.images[0].points.size() == 1);
  CHECK(a.images[0].points[0].frame == 30);
  CHECK(a.images[0].points[0].y == 1.5);
  CHECK(a.images[0].points[0].x == 2.0);
}

TEST_CASE("points csv: round trip with names and labels that need quoting, frames and channels") {
  const auto dir = test::scratch("points_csv");
  auto a = test::random_annotations(31, 4, {"cell, round", "nucleus", "empty"}, 0, 300, 200, "im \"x\",");
  a.images[2].points[0].frame = 7;
  a.images[3].points[1].channel = 2;
  io::write_points_csv(dir / "p.csv", a);
  const auto b = io::read_points_csv(dir / "p.csv");
  CHECK(b.format == "points_csv");
  test::check_same(a, b, false);
  CHECK(io::read_text(dir / "p.csv").substr(0, 30) == "image,x,y,label,frame,channel\n");

  // Columns in any order, optional label, extra columns ignored.
  const auto c = io::parse_points_csv("Y,id,X,Image\n2,9,1,a.tif\n4,9,3,b.tif\n6,9,5,a.tif\n", "q.csv", "cell");
  REQUIRE(c.images.size() == 2);
  CHECK(c.images[0].name == "a.tif");
  CHECK(c.images[0].points.size() == 2);
  CHECK(c.images[0].points[1].x == 5.0);
  CHECK(c.images[0].points[1].y == 6.0);
  CHECK(c.labels == std::vector<std::string>{"cell"});

  test::check_error([] { io::parse_points_csv("x,y\n1,2\n", "q.csv"); }, {"q.csv", "expected a header with image, x, y"});
  test::check_error([] { io::parse_points_csv("image,x,y\n,1,2\n", "q.csv"); }, {"q.csv", "line 2", "empty image name"});
  test::check_error([] { io::parse_points_csv("image,x,y\na,1,b\n", "q.csv"); }, {"q.csv", "line 2", "y 'b'"});
  test::check_error([] { io::parse_points_csv("image,x,y,frame\na,1,2,-1\n", "q.csv"); }, {"q.csv", "frame '-1'"});
  test::check_error([] { io::parse_points_csv("image,x,y\na,-1,2\n", "q.csv"); }, {"q.csv", "negative"});
}

TEST_CASE("objlist: ExoDeepFinder objl_cell6.xml, class counts checked against a text scan") {
  MICROCOUNT_REQUIRE_DATA();
  const auto path = test::data_dir() / "formats" / "exodeepfinder" / "objl_cell6.xml";
  const auto ann = io::read_objlist_xml(path);
  const std::string text = io::read_text(path);
  CHECK(ann.format == "objlist_xml");
  CHECK(ann.labels == std::vector<std::string>{"1", "2"});
  REQUIRE(ann.images.size() == 1);
  CHECK(ann.images[0].name == "tomo_0");
  CHECK(ann.total_points() == test::count_substr(text, "<object "));
  CHECK(ann.total_points() == 10216);
  CHECK(ann.points_per_label().at("1") == test::count_substr(text, "class_label=\"1\""));
  CHECK(ann.points_per_label() == std::map<std::string, std::size_t>{{"1", 10000}, {"2", 216}});
  const auto& first = ann.images[0].points.front();  // x="106" y="128" z="0", class 2
  CHECK(first.x == 106.0);
  CHECK(first.y == 128.0);
  CHECK(first.frame == 0);
  CHECK(ann.labels[first.label] == "2");
  const auto& last = ann.images[0].points.back();  // x="66.4" y="144.2" z="334", class 1
  CHECK(last.x == 66.4);
  CHECK(last.y == 144.2);
  CHECK(last.frame == 334);
  CHECK(ann.labels[last.label] == "1");
  CHECK(io::read_objlist_xml(path, {{0, "cell6.tif"}}).images[0].name == "cell6.tif");

  // XML -> CSV -> read: the same objects.
  const auto dir = test::scratch("objlist_real");
  io::write_objlist_csv(dir / "cell6.csv", ann);
  CHECK(io::read_text(dir / "cell6.csv").substr(0, 26) == "tomo_idx,class_label,x,y,z");
  test::check_same(ann, io::read_objlist_csv(dir / "cell6.csv"));
  io::write_objlist_xml(dir / "cell6.xml", ann);
  test::check_same(ann, io::read_objlist_xml(dir / "cell6.xml"));
}

TEST_CASE("objlist: round trips keep tomo_<k> movies, numeric classes, frames; other names are numbered") {
  const auto dir = test::scratch("objlist_rt");
  auto a = test::random_annotations(41, 3, {"1", "2", "7"}, 30, 256, 256, "tomo_");
  for (auto& im : a.images) im.name = im.name.substr(0, im.name.size() - 4);  // "tomo_0" ...
  for (auto& im : a.images) im.width = im.height = im.frames = 0;  // object lists do not hold them
  for (const auto& [write, read] :
       std::vector<std::pair<void (*)(const std::filesystem::path&, const io::annotations&),
                             io::annotations (*)(const std::filesystem::path&, const io::tomo_names&)>>{
           {io::write_objlist_xml, io::read_objlist_xml}, {io::write_objlist_csv, io::read_objlist_csv}}) {
    write(dir / "o.txt", a);
    const auto b = read(dir / "o.txt", {});
    CHECK(b.labels == std::vector<std::string>{"1", "2"});  // "7" has no points, so it is not in the list
    // Points come back grouped by movie in file order; compare per movie.
    REQUIRE(b.images.size() == 3);
    for (std::size_t i = 0; i < 3; ++i) {
      CHECK(b.images[i].name == a.images[i].name);
      REQUIRE(b.images[i].points.size() == a.images[i].points.size());
      for (std::size_t k = 0; k < a.images[i].points.size(); ++k) {
        CHECK(b.images[i].points[k].x == a.images[i].points[k].x);
        CHECK(b.images[i].points[k].y == a.images[i].points[k].y);
        CHECK(b.images[i].points[k].frame == a.images[i].points[k].frame);
        CHECK(b.labels[b.images[i].points[k].label] == a.labels[a.images[i].points[k].label]);
      }
    }
  }
  // Word labels become classes 1, 2, ... in label order; "movie.tif" gets the first free tomo_idx.
  io::annotations w;
  w.label_index("spot");
  w.label_index("event");
  w.images.push_back({"tomo_0", 0, 0, 0, {{1, 2, 1, 5, -1}}});
  w.images.push_back({"movie.tif", 0, 0, 0, {{3, 4, 0, -1, -1}}});
  const std::string csv = io::objlist_csv_text(w);
  CHECK(csv == "tomo_idx,class_label,x,y,z\n0,2,1,2,5\n1,1,3,4,0\n");
}

TEST_CASE("objlist: ExoDeepFinder's CSV form, optional tomo_idx, centroid z rounded; malformed lists fail") {
  const auto csv = io::parse_objlist_csv("tomo_idx,class_label,x,y,z\n0,1,133,257,518\n0,1,169,230,519\n", "e.csv");
  CHECK(csv.format == "objlist_csv");
  CHECK(csv.total_points() == 2);
  CHECK(csv.images[0].points[1].frame == 519);
  const auto xml = io::parse_objlist_xml(
      "<objlist><object class_label=\"1\" x=\"1\" y=\"2\" z=\"445.333\"/>"
      "<object tomo_idx=\"3\" class_label=\"1\" x=\"1\" y=\"2\" z=\"445.6\" phi=\"0\" cluster_size=\"12\"/></objlist>",
      "e.xml");
  REQUIRE(xml.images.size() == 2);
  CHECK(xml.images[0].name == "tomo_0");
  CHECK(xml.images[0].points[0].frame == 445);
  CHECK(xml.images[1].name == "tomo_3");
  CHECK(xml.images[1].points[0].frame == 446);

  const auto bad_xml = [](const std::string& text, std::initializer_list<std::string_view> needles) {
    test::check_error([&] { io::parse_objlist_xml(text, "bad.xml"); }, needles);
  };
  bad_xml("<annotations/>", {"bad.xml", "expected <objlist>"});
  bad_xml("<objlist>\n<object x=\"1\" y=\"2\" z=\"3\"/></objlist>", {"bad.xml", "line 2", "no 'class_label'"});
  bad_xml("<objlist><object class_label=\"1\" x=\"1\" y=\"2\"/></objlist>", {"no 'z'"});
  bad_xml("<objlist><object class_label=\"-1\" x=\"1\" y=\"2\" z=\"0\"/></objlist>", {"class_label '-1'"});
  bad_xml("<objlist><object class_label=\"1\" x=\"abc\" y=\"2\" z=\"0\"/></objlist>", {"x 'abc'"});
  bad_xml("<objlist><object class_label=\"1\" x=\"1\" y=\"2\" z=\"1e300\"/></objlist>", {"too large"});
  bad_xml("<objlist><thing/></objlist>", {"<thing> where <object> was expected"});
  bad_xml("<objlist><object class_label=\"1\" x=\"1\" y=\"2\" z=\"0\"></objlist>", {"bad.xml", "XML error"});
  test::check_error([] { io::parse_objlist_csv("tomo_idx,x,y\n0,1,2\n", "bad.csv"); }, {"bad.csv", "class_label"});
  test::check_error([] { io::parse_objlist_csv("class_label,x,y,z\n1,1,2,nan\n", "bad.csv"); }, {"line 2", "z 'nan'"});
}
