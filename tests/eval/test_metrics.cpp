// Detection and count metrics against hand-computed values; evaluation of annotation sets.
#include <cmath>
#include <vector>

#include "microcount/eval/evaluate.hpp"
#include "microcount/eval/metrics.hpp"
#include "test_support.hpp"

using namespace microcount;

TEST_CASE("metrics: precision, recall, F1 in closed form, with the empty cases") {
  const eval::detection_counts d{3, 1, 2};
  CHECK(d.precision() == doctest::Approx(0.75));
  CHECK(d.recall() == doctest::Approx(0.6));
  CHECK(d.f1() == doctest::Approx(2 * 0.75 * 0.6 / (0.75 + 0.6)));
  CHECK(eval::detection_counts{}.f1() == 1.0);  // nothing to find, nothing found
  const eval::detection_counts missed_all{0, 0, 4};
  CHECK(missed_all.precision() == 1.0);
  CHECK(missed_all.recall() == 0.0);
  CHECK(missed_all.f1() == 0.0);
  const eval::detection_counts only_wrong{0, 3, 0};
  CHECK(only_wrong.precision() == 0.0);
  CHECK(only_wrong.recall() == 1.0);
  CHECK(only_wrong.f1() == 0.0);
  eval::detection_counts sum = d;
  sum += only_wrong;
  CHECK(sum == eval::detection_counts{3, 4, 2});
}

TEST_CASE("metrics: MAE, RMSE, sMAPE and bias in closed form") {
  const std::vector<double> predicted{3, 0, 5, 2.5}, truth{1, 0, 5, 4};
  const auto c = eval::count_errors_of(predicted, truth);
  // errors: +2, 0, 0, −1.5
  CHECK(c.images == 4);
  CHECK(c.mae == doctest::Approx(3.5 / 4));
  CHECK(c.rmse == doctest::Approx(std::sqrt((4 + 2.25) / 4)));
  CHECK(c.smape == doctest::Approx((2.0 / 2.0 + 0 + 0 + 1.5 / 3.25) / 4));
  CHECK(c.mean_error == doctest::Approx(0.5 / 4));
  const auto empty = eval::count_errors_of(std::vector<double>{}, std::vector<double>{});
  CHECK(empty.images == 0);
  CHECK(empty.mae == 0);
  CHECK(eval::count_errors_of(std::vector<double>{0}, std::vector<double>{7}).smape == doctest::Approx(2.0));
  CHECK_THROWS_AS(eval::count_errors_of(std::vector<double>{1}, std::vector<double>{}), microcount::error);
}

namespace {
io::annotations make(std::vector<std::string> labels) {
  io::annotations a;
  a.format = "test";
  a.labels = std::move(labels);
  return a;
}
}  // namespace

TEST_CASE("evaluate: labels paired by name, images by name or stem, per class, JSON") {
  auto truth = make({"naked", "enveloped"});
  truth.image("image_001.tif").points = {{10, 10, 0}, {30, 30, 1}, {50, 50, 1}};
  truth.image("image_002.tif").points = {{5, 5, 0}};
  truth.image("image_003.tif").points = {{7, 7, 1}};
  // The prediction lists its labels in the other order, names images by stem, skips image 3 and
  // adds an image the truth does not have.
  auto predicted = make({"enveloped", "naked", "junk"});
  predicted.image("out/image_001.csv").points = {{11, 10, 1}, {31, 30, 0}, {90, 90, 2}};
  predicted.image("image_002.tif").points = {{5, 6, 1}, {40, 40, 1}};
  predicted.image("image_999.tif").points = {{1, 1, 0}};

  const auto e = eval::evaluate(truth, predicted, {3.0, true});
  // image 1: naked (10,10)↔(11,10) TP, enveloped (30,30)↔(31,30) TP, (50,50) FN, junk FP.
  // image 2: naked TP, extra naked FP.  image 3: FN.
  CHECK(e.overall.detection == eval::detection_counts{3, 2, 2});
  CHECK(e.overall.total_distance == doctest::Approx(3.0));
  CHECK(e.images_without_prediction == 1);
  CHECK(e.images_only_in_prediction == std::vector<std::string>{"image_999.tif"});
  REQUIRE(e.classes.size() == 3);
  CHECK(e.classes[0].label == "naked");
  CHECK(e.classes[0].detection == eval::detection_counts{2, 1, 0});
  CHECK(e.classes[1].label == "enveloped");
  CHECK(e.classes[1].detection == eval::detection_counts{1, 0, 2});
  CHECK(e.classes[2].label == "junk");
  CHECK(e.classes[2].detection == eval::detection_counts{0, 1, 0});
  // Counts per image: overall truth 3,1,1 vs predicted 3,2,0 → errors 0, +1, −1.
  CHECK(e.overall.counts.mae == doctest::Approx(2.0 / 3));
  CHECK(e.overall.counts.mean_error == doctest::Approx(0.0));
  // naked truth 1,1,0 vs predicted 1,2,0 → errors 0, +1, 0; sMAPE = (1 / 1.5) / 3.
  CHECK(e.classes[0].counts.mae == doctest::Approx(1.0 / 3));
  CHECK(e.classes[0].counts.smape == doctest::Approx((1.0 / 1.5) / 3));

  const auto j = eval::to_json(e, true);
  CHECK(j["tp"] == 3);
  CHECK(j["fp"] == 2);
  CHECK(j["fn"] == 2);
  CHECK(j["f1"].get<double>() == doctest::Approx(6.0 / 10));
  CHECK(j["radius"] == 3.0);
  CHECK(j["images"] == 3);
  CHECK(j["per_class"]["enveloped"]["fn"] == 2);
  CHECK(j["per_class"]["junk"]["mean_distance"].is_null());
  CHECK(j["per_image"].size() == 3);
  CHECK(j["images_only_in_prediction"] == 1);

  // Without per-class matching the labels are ignored: image 1's junk point no longer is a class error
  // but still unmatched; the cross-labelled pairs still match.
  const auto any = eval::evaluate(truth, predicted, {3.0, false});
  CHECK(any.overall.detection == eval::detection_counts{3, 2, 2});
  CHECK(any.classes.empty());
  CHECK(eval::to_json(any)["per_class"].empty());
}

TEST_CASE("evaluate: a prediction with no image in common is an error; empty prediction is fine") {
  auto truth = make({"cell"});
  truth.image("a.tif").points = {{1, 1}};
  auto wrong = make({"cell"});
  wrong.image("b.tif").points = {{1, 1}};
  CHECK_THROWS_WITH_AS(eval::evaluate(truth, wrong), doctest::Contains("no image name in common"), microcount::error);
  const auto e = eval::evaluate(truth, make({"cell"}));
  CHECK(e.overall.detection == eval::detection_counts{0, 0, 1});
  CHECK(e.overall.counts.mae == 1.0);
}

TEST_CASE("evaluate: movies match per frame; counts are per movie") {
  auto truth = make({"event"});
  auto& movie = truth.image("movie.tif");
  movie.frames = 3;
  movie.points = {{20, 20, 0, 0}, {20, 20, 0, 1}, {60, 60, 0, 2}};
  auto predicted = make({"event"});
  predicted.image("movie.tif").points = {{20, 21, 0, 1}, {60, 60, 0, 1}, {20, 20, 0, 2}};
  const auto e = eval::evaluate(truth, predicted, {2.0, true});
  // Only frame 1's (20,20) ↔ (20,21) shares a frame and lies within 2 px.
  CHECK(e.overall.detection == eval::detection_counts{1, 2, 2});
  CHECK(e.overall.counts.images == 1);
  CHECK(e.overall.counts.mae == 0.0);  // 3 events found, 3 present: the count alone looks perfect
}
