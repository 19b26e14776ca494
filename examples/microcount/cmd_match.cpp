// microcount match GT PRED: point matching within a radius and detection + count metrics, as one JSON line.
#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "command.hpp"
#include "microcount/eval/evaluate.hpp"
#include "microcount/io/annotation_files.hpp"

namespace {

using microcount::error;

const char* const usage =
    "usage: microcount match GT PRED [--radius R] [--per-class] [--per-image]\n\n"
    "Matches predicted points (PRED) to ground-truth points (GT) one to one within R pixels\n"
    "(default 5): the most pairs, then the least summed distance (Hungarian method), per image and\n"
    "per frame. GT and PRED are annotation files or folders in any format microcount reads (CVAT XML,\n"
    "napari CSV, object lists, points CSV, dot images); images are paired by name, or by stem\n"
    "(image_001.tif ~ image_001.csv). A GT image missing from PRED counts as nothing detected.\n"
    "  --per-class   match only points of the same label and report every label under per_class\n"
    "  --per-image   add per_image: [{name, truth_count, predicted_count, tp, fp, fn}]\n"
    "Prints one JSON line: tp, fp, fn, precision, recall, f1, mean_distance, mae, rmse, smape,\n"
    "mean_error, truth_count, predicted_count, radius, images, per_class, images_without_prediction,\n"
    "images_only_in_prediction (docs/evaluation.md defines each).";

int run(const std::vector<std::string>& args) {
  const microcount::cli::arguments a(args, {"per-class", "per-image"});
  a.allow_only({"radius", "per-class", "per-image"});
  if (a.positional.size() != 2) throw error("microcount", "match takes GT and PRED (see microcount match --help)");
  const std::string truth_path = a.positional[0], predicted_path = a.positional[1];
  microcount::eval::evaluation_options options;
  options.radius = a.number("radius", options.radius);
  if (!(options.radius >= 0) || options.radius > 1e9)
    throw error("microcount", "option --radius must be a number of pixels ≥ 0");
  options.per_class = a.has("per-class");

  const auto truth = microcount::io::read_annotations(truth_path);
  const auto predicted = microcount::io::read_annotations(predicted_path);
  microcount::eval::evaluation result;
  try {
    result = microcount::eval::evaluate(truth, predicted, options);
  } catch (const error& e) {
    // Name both inputs: the problem is how they relate.
    throw error(predicted_path, std::string(e.what()) + " (ground truth: " + truth_path + ")");
  }
  if (result.images_without_prediction > 0)
    std::fprintf(stderr, "match: %zu ground-truth image(s) have no prediction in %s (counted as nothing detected)\n",
                 result.images_without_prediction, predicted_path.c_str());
  if (!result.images_only_in_prediction.empty())
    std::fprintf(stderr, "match: %zu predicted image(s) are not in %s (ignored), e.g. %s\n",
                 result.images_only_in_prediction.size(), truth_path.c_str(),
                 result.images_only_in_prediction.front().c_str());
  std::printf("%s\n", microcount::eval::to_json(result, a.has("per-image")).dump().c_str());
  return 0;
}

const microcount::cli::register_command reg{
    {"match", "match predicted to ground-truth points within a radius; detection and count metrics", usage, run}};

}  // namespace
