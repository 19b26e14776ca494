// microcount annotations FILE|FOLDER — what an annotation file or folder holds, as one JSON object.
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "command.hpp"
#include "microcount/io/annotation_files.hpp"

namespace {

using microcount::error;
namespace io = microcount::io;

constexpr std::size_t shown_problems = 20;  // the rest is only counted, so the output stays readable

int run(const std::vector<std::string>& args) {
  const microcount::cli::arguments a(args, {"per-image", "pretty"});
  a.allow_only({"per-image", "pretty"});
  if (a.positional.size() != 1) throw error("expects one FILE or FOLDER (see microcount annotations --help)");
  const io::annotations ann = io::read_annotations(a.positional[0]);

  nlohmann::ordered_json j;
  j["path"] = a.positional[0];
  j["format"] = ann.format;
  j["images"] = ann.images.size();
  j["points"] = ann.total_points();
  const auto counts = ann.points_per_label();
  nlohmann::ordered_json per_label = nlohmann::ordered_json::object();
  for (const auto& name : ann.labels) per_label[name] = counts.at(name);  // in the file's label order
  j["points_per_label"] = per_label;
  if (!ann.images.empty()) {
    auto [lo, hi] = std::minmax_element(ann.images.begin(), ann.images.end(), [](const auto& x, const auto& y) {
      return x.points.size() < y.points.size();
    });
    j["points_per_image"] = {{"min", lo->points.size()}, {"max", hi->points.size()}};
  }
  j["skipped_shapes"] = ann.skipped_shapes;
  j["skipped_by_kind"] = nlohmann::ordered_json::object();
  for (const auto& [kind, n] : ann.skipped_by_kind) j["skipped_by_kind"][kind] = n;
  const auto problems = io::validate(ann);
  j["problem_count"] = problems.size();
  j["problems"] = std::vector<std::string>(problems.begin(),
                                           problems.begin() + static_cast<std::ptrdiff_t>(std::min(problems.size(), shown_problems)));
  if (a.has("per-image")) {
    nlohmann::ordered_json per_image = nlohmann::ordered_json::object();
    for (const auto& im : ann.images) per_image[im.name] = im.points.size();
    j["per_image"] = per_image;
  }
  const std::string out = j.dump(a.has("pretty") ? 2 : -1, ' ', false, nlohmann::json::error_handler_t::replace);
  std::printf("%s\n", out.c_str());
  return 0;
}

const microcount::cli::register_command reg{{
    "annotations",
    "summarize an annotation file or folder (format, images, points per label) as JSON",
    "usage: microcount annotations FILE|FOLDER [--per-image] [--pretty]\n\n"
    "Reads CVAT for Images/Video 1.1 XML, napari points CSV, ExoDeepFinder object lists (XML/CSV),\n"
    "plain points CSV (image,x,y,label) or a folder of them (format found from the content) and prints\n"
    "one JSON object: format, images, points, points_per_label, points_per_image {min,max},\n"
    "skipped_shapes, skipped_by_kind, problem_count and up to 20 problems (points outside the stated\n"
    "image size, frames past the end).\n"
    "  --per-image   add per_image: image name -> number of points\n"
    "  --pretty      indent the JSON",
    run}};

}  // namespace
