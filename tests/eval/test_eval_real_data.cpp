// Evaluation on the real vgg-cells annotations (35,192 points, touching cells): perfect self-match, and a
// perturbed copy whose expected figures are known independently.
#include <cmath>
#include <vector>

#include "microcount/core/rng.hpp"
#include "microcount/eval/evaluate.hpp"
#include "microcount/io/cvat_xml.hpp"
#include "eval/matching_oracles.hpp"
#include "test_support.hpp"

using namespace microcount;

TEST_CASE("eval on vgg-cells: itself is perfect; a jittered, thinned, padded copy scores as constructed") {
  MICROCOUNT_REQUIRE_DATA();
  const auto truth = io::read_cvat_xml(test::data_dir() / "vgg-cells" / "annotations.xml");
  REQUIRE(truth.total_points() == 35192);

  const auto self = eval::evaluate(truth, truth, {5.0, true});
  CHECK(self.overall.detection == eval::detection_counts{35192, 0, 0});
  CHECK(self.overall.counts.mae == 0.0);
  CHECK(self.overall.total_distance == 0.0);

  // Predictions: every point jittered by ≤ 1.5 px per axis, 4 % dropped, 3 % random points added.
  rng r(31);
  io::annotations predicted = truth;
  std::vector<double> truth_count, predicted_count;
  std::size_t best_possible = 0;
  for (std::size_t i = 0; i < predicted.images.size(); ++i) {
    auto& im = predicted.images[i];
    std::vector<io::point> kept;
    for (const auto& p : im.points) {
      if (r.uniform() < 0.04) continue;
      kept.push_back({p.x + r.uniform(-1.5, 1.5), p.y + r.uniform(-1.5, 1.5), p.label, p.frame});
    }
    const std::size_t extra = static_cast<std::size_t>(0.03 * static_cast<double>(im.points.size()));
    for (std::size_t k = 0; k < extra; ++k) kept.push_back({r.uniform(0, 255), r.uniform(0, 255), 0, -1});
    im.points = kept;
    truth_count.push_back(static_cast<double>(truth.images[i].points.size()));
    predicted_count.push_back(static_cast<double>(kept.size()));
    best_possible += test::maximum_matching_size(truth.images[i].points, kept, {5.0});
  }
  const auto e = eval::evaluate(truth, predicted, {5.0, false});
  // The matching is maximum (vs an independent augmenting-path matching on the same allowed pairs) …
  CHECK(e.overall.detection.true_positives == best_possible);
  CHECK(e.overall.detection.false_negatives == 35192 - best_possible);
  // … nearly every kept point finds its own cell, and the counts follow the construction exactly.
  CHECK(e.overall.detection.recall() > 0.95);
  CHECK(e.overall.detection.precision() > 0.96);
  const auto counts = eval::count_errors_of(predicted_count, truth_count);
  CHECK(e.overall.counts.mae == doctest::Approx(counts.mae));
  CHECK(e.overall.counts.mean_error == doctest::Approx(counts.mean_error));
  CHECK(e.overall.counts.mean_error < 0);  // dropping 4 % outweighs adding 3 %
  CHECK(e.overall.mean_distance() < 1.5);
}
