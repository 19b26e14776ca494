// microcount evaluate --model RUN_DIR|CKPT DATA_DIR [--images POS] [--out DIR]
#include <cmath>
#include <filesystem>
#include <iostream>
#include <unistd.h>

#include "command.hpp"
#include "microcount/train/run_folder.hpp"
#include "pipelines.hpp"
#include "reporting.hpp"
#include "training_setup.hpp"

namespace microcount::cli {
namespace {

namespace fs = std::filesystem;

int run_evaluate(const std::vector<std::string>& args) {
  const arguments a(args, {"quiet"});
  a.allow_only({"model", "images", "out", "radius", "threads", "samples", "quiet"});
  require(a.has("model"), "microcount", "evaluate needs --model RUN_DIR|CKPT");
  require(a.positional.size() == 1, "microcount", "evaluate needs one DATA_DIR (images with annotations)");
  set_threads(static_cast<int>(a.integer("threads", 0)));
  fs::path checkpoint;
  auto p = load_pipeline(a.get("model"), &checkpoint);
  const double radius = a.number("radius", p->hp().match_radius);
  require(radius > 0 && std::isfinite(radius), "microcount", "--radius must be a positive number of pixels");
  const data::dataset ds = data::open_dataset(a.positional[0]);
  std::vector<std::size_t> indices;
  if (a.has("images")) indices = parse_positions(a.get("images"), ds.size(), "images");
  else for (std::size_t i = 0; i < ds.size(); ++i) indices.push_back(i);
  require(ds.labels() == p->labels() || p->labels().size() == 1, a.positional[0],
          "classes " + nlohmann::json(ds.labels()).dump() + " differ from the model's " + nlohmann::json(p->labels()).dump());
  // Results go to --out, or to Evaluate/ beside the model's TrainingRun when the model is a run folder.
  fs::path out = a.get("out");
  if (out.empty()) {
    const fs::path run = checkpoint.parent_path().parent_path();  // …/TrainingRun/checkpoints/x.mcm -> …/TrainingRun
    out = (run.filename() == "TrainingRun" ? run.parent_path() : run) / "Evaluate";
  }
  const bool tty = isatty(2) && !a.has("quiet");
  auto say = [&](const std::string& line) { std::cerr << "\r\033[K" << line << std::flush; };
  auto r = evaluate_into(*p, ds, indices, out, static_cast<std::size_t>(a.integer("samples", 4)),
                         tty ? std::function<void(const std::string&)>(say) : nullptr, radius);
  if (tty) std::cerr << "\r\033[K";
  auto j = train::to_json(r);
  j["images"] = indices.size();
  j["results"] = out.string();
  std::cout << j.dump() << "\n";
  return 0;
}

const register_command reg{{"evaluate", "score a trained model on annotated images (MAE, RMSE, precision, recall, F1 per class)",
                            "usage: microcount evaluate --model RUN_DIR|CKPT DATA_DIR [--images POS] [--out DIR] [--radius R]\n"
                            "                           [--samples N] [--threads N]\n"
                            "prints one JSON line: mae, rmse, precision, recall, f1 (points matched within `radius` pixels),\n"
                            "per_class; writes test_results.json/.txt and samples/ into --out (default RUN_DIR/Evaluate)\n",
                            run_evaluate}};

}  // namespace
}  // namespace microcount::cli
