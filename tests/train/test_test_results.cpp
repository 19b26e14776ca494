// test_results: detection and count figures against numbers worked out by hand.
#include <cmath>
#include <string>
#include <vector>

#include "microcount/train/test_results.hpp"
#include "test_support.hpp"

using namespace microcount;
using doctest::Approx;

namespace {

io::point pt(double x, double y, int label) { return io::point{x, y, label, -1, -1}; }

// Two classes, two images, radius 3 (the hand computation is in the comments).
std::vector<train::image_result> two_images() {
  train::image_result a;
  a.name = "a.tif";
  a.truth_points = {pt(10, 10, 0), pt(20, 20, 0), pt(30, 30, 1)};
  a.predicted_points = {pt(11, 10, 0),   // 1 px from (10,10): TP naked
                        pt(20, 24, 0),   // 4 px from (20,20) > 3: FP naked, and (20,20) is a FN naked
                        pt(30, 32, 1),   // 2 px from (30,30): TP budding
                        pt(50, 50, 1)};  // nothing near: FP budding
  a.predicted_counts = {2.5, 1.2};       // a density head's map sums; truth counts come from the points: [2, 1]
  train::image_result b;
  b.name = "b.tif";
  b.truth_points = {pt(5, 5, 1)};
  b.predicted_points = {pt(5, 5, 0)};  // right place, wrong class: FN budding + FP naked (same-label matching)
  b.truth_counts = {0, 1};             // predicted counts from the points: [1, 0]
  return {a, b};
}

}  // namespace

TEST_CASE("test_results: per class and overall against hand-computed numbers") {
  const auto images = two_images();
  const auto r = train::compute_test_results(images, {"naked", "budding"}, {3.0, true, true});
  REQUIRE(r.classes.size() == 2);
  const auto& naked = r.classes[0];
  const auto& budding = r.classes[1];
  CHECK(naked.detection == eval::detection_counts{1, 2, 1});
  CHECK(budding.detection == eval::detection_counts{1, 1, 1});
  CHECK(r.overall.detection == eval::detection_counts{2, 3, 2});
  CHECK(naked.detection.precision() == Approx(1.0 / 3));
  CHECK(naked.detection.f1() == Approx(0.4));
  CHECK(r.overall.detection.f1() == Approx(4.0 / 9));
  // naked: truth [2, 0], predicted [2.5, 1] → |e| = 0.5, 1
  CHECK(naked.counts.mae == Approx(0.75));
  CHECK(naked.counts.rmse == Approx(std::sqrt(0.625)));
  // budding: truth [1, 1], predicted [1.2, 0] → e = 0.2, −1
  CHECK(budding.counts.mae == Approx(0.6));
  CHECK(budding.counts.rmse == Approx(std::sqrt(0.52)));
  // totals: truth [3, 1], predicted [3.7, 1]
  CHECK(r.overall.counts.mae == Approx(0.35));
  CHECK(r.overall.counts.rmse == Approx(std::sqrt(0.245)));
  CHECK(r.overall.truth_total == Approx(4));
  CHECK(r.overall.predicted_total == Approx(4.7));
  CHECK(r.images[0].detection == eval::detection_counts{2, 2, 1});
  CHECK(r.images[1].predicted_counts == std::vector<double>{1, 0});

  const auto j = train::to_json(r);
  CHECK(j["mae"].get<double>() == Approx(0.35));
  CHECK(j["f1"].get<double>() == Approx(4.0 / 9));
  CHECK(j["precision"].get<double>() == Approx(0.4));
  CHECK(j["recall"].get<double>() == Approx(0.5));
  CHECK(j["radius"].get<double>() == 3.0);
  CHECK(j["mean_distance"].get<double>() == Approx(1.5));  // (1 + 2) / 2
  CHECK(j["per_class"]["naked"]["fp"].get<int>() == 2);
  CHECK(j["per_class"]["budding"]["mae"].get<double>() == Approx(0.6));
  CHECK(j["per_class"]["budding"]["f1"].get<double>() == Approx(0.5));
  CHECK(j.dump().find('\n') == std::string::npos);  // one line for `evaluate`
}

TEST_CASE("test_results: matching across labels credits the truth point's class") {
  const auto r = train::compute_test_results(two_images(), {"naked", "budding"}, {3.0, false, true});
  // Image b's prediction now matches: TP budding. Overall TP 3, FP 2, FN 1.
  CHECK(r.overall.detection == eval::detection_counts{3, 2, 1});
  CHECK(r.classes[1].detection == eval::detection_counts{2, 1, 0});
  CHECK(r.classes[0].detection == eval::detection_counts{1, 1, 1});
}

TEST_CASE("test_results: counts-only models have no detection figures") {
  auto images = two_images();
  for (auto& im : images) im.predicted_points.clear();
  images[1].predicted_counts = {0.5, 0.5};
  const auto r = train::compute_test_results(images, {"naked", "budding"}, {5.0, true, false});
  const auto j = train::to_json(r);
  CHECK(j["f1"].is_null());
  CHECK(j["tp"].is_null());
  CHECK(j["per_class"]["naked"]["precision"].is_null());
  // totals: truth [3, 1], predicted [3.7, 1] again
  CHECK(j["mae"].get<double>() == Approx(0.35));
  CHECK(train::to_text(r).find("no detection figures") != std::string::npos);
}

TEST_CASE("test_results: bad input names the image") {
  auto images = two_images();
  images[0].predicted_points.push_back(pt(1, 1, 2));
  CHECK_THROWS_WITH_AS(train::compute_test_results(images, {"naked", "budding"}), doctest::Contains("a.tif"), error);
  images = two_images();
  images[1].truth_counts = {1};
  CHECK_THROWS_WITH_AS(train::compute_test_results(images, {"naked", "budding"}),
                       doctest::Contains("b.tif: truth counts have 1 classes, expected 2"), error);
  images = two_images();
  images[0].predicted_counts[1] = std::nan("");
  CHECK_THROWS_WITH_AS(train::compute_test_results(images, {"naked", "budding"}), doctest::Contains("a.tif"), error);
  CHECK_THROWS_AS(train::compute_test_results(images, {}), error);
}

TEST_CASE("test_results: test_results.json and .txt written atomically, JSON reads back") {
  const auto dir = test::scratch("test_results_files");
  const auto images = two_images();
  const auto r = train::write_test_results(dir, images, {"naked", "budding"}, {3.0, true, true});
  const auto j = train::read_json(dir / "test_results.json");
  CHECK(j["mae"].get<double>() == Approx(0.35));
  CHECK(j["labels"] == nlohmann::json({"naked", "budding"}));
  REQUIRE(j["per_image"].size() == 2);
  CHECK(j["per_image"][0]["name"] == "a.tif");
  CHECK(j["per_image"][0]["predicted_count"].get<double>() == Approx(3.7));
  CHECK(j["per_image"][1]["fn"].get<int>() == 1);
  const std::string text = io::read_text(dir / "test_results.txt");
  CHECK(text == train::to_text(r));
  CHECK(text.find("radius of 3 px") != std::string::npos);
  CHECK(text.find("overall") != std::string::npos);
  CHECK(text.find("0.350") != std::string::npos);  // overall MAE
  CHECK(text.find("b.tif") != std::string::npos);
  std::size_t files = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir)) ++files;
  CHECK(files == 2);  // no temporaries left behind
}

TEST_CASE("test_results: no images gives zeros, not a crash") {
  const auto r = train::compute_test_results(std::vector<train::image_result>{}, {"cell"});
  CHECK(r.overall.counts.mae == 0);
  CHECK(train::to_json(r)["images"] == 0);
  CHECK(!train::to_text(r).empty());
}
