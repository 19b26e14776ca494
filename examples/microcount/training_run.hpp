#pragma once
// One training run in a TrainingRun-like folder (TrainingRun/ for `train`, Sweep_<i>/ for `tune`):
// hyperparameters.json, log.txt, checkpoints, training curves after every epoch, and the best model
// scored on the test images (validation when there are none) with samples. Shared by train and tune.
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "microcount/core/error.hpp"
#include "microcount/core/parallel.hpp"
#include "microcount/data/dataset.hpp"
#include "microcount/data/split.hpp"
#include "microcount/train/curves.hpp"
#include "microcount/train/run_folder.hpp"
#include "pipelines.hpp"
#include "reporting.hpp"

namespace microcount::cli {

// --resume RUN_DIR | TrainingRun | Sweep_<i> | CKPT -> the latest checkpoint to continue from.
inline std::filesystem::path resume_checkpoint(const std::filesystem::path& given) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::is_regular_file(given, ec)) return given;
  for (const fs::path rel : {"TrainingRun/checkpoints/latest_model.mcm", "checkpoints/latest_model.mcm"})
    if (fs::is_regular_file(given / rel, ec)) return given / rel;
  throw error(given.string(), "no latest_model.mcm to resume from (give a run folder or a checkpoint)");
}

struct training_run_options {
  std::optional<std::filesystem::path> resume;                 // continue from this latest_model.mcm
  std::int64_t max_epochs = 0;                                 // stop after this many epochs here (0: all)
  std::function<void(const std::string&)> echo = nullptr;      // every log line also goes here (besides log.txt)
  std::function<void(const std::string&)> progress = nullptr;  // the live progress line (overwritten in place)
  bool evaluate = true;  // score the best model on the test images (validation when none) into the folder
};

struct training_run_result {
  std::unique_ptr<train::any_pipeline> pipeline;  // holds the best weights when evaluated, else the last
  train::training_result fit;
  double seconds = 0;
  std::optional<train::test_results> scores;  // when evaluated
  std::string scored_on;                      // "test" | "validation"
  [[nodiscard]] bool paused() const { return fit.stop_reason.rfind("paused", 0) == 0; }
};

// Trains a pipeline made from `hp` (make_pipeline) on `split` of `ds` in `layout`; every line goes to
// layout/log.txt (appended, so a resumed run continues its log) and to `ro.echo`.
inline training_run_result run_training(const train::hyperparameters& hp, const data::dataset& ds,
                                        const std::filesystem::path& data_dir, const data::split_indices& split,
                                        const train::run_layout& layout, const std::filesystem::path& shown_folder,
                                        const training_run_options& ro) {
  require(!split.train.empty(), data_dir.string(), "no training images in the split");
  layout.create_directories();
  train::write_json_atomically(layout.hyperparameters_json(), train::to_json(hp));
  train::run_log log(layout.log_txt());
  train::training_options o;
  o.checkpoints = layout.checkpoints_dir();
  o.resume = ro.resume;
  o.max_epochs = ro.max_epochs;
  o.log = [&](const std::string& line) {
    if (ro.echo) ro.echo(line);
    log.write(line);
  };
  o.progress = ro.progress;
  o.on_epoch = [&](const train::epoch_record&, const train::history& h) { train::write_training_curves(h, layout.training_curves()); };
  for (const auto& w : ds.warnings()) o.log("warning: " + w);

  training_run_result out;
  const auto first = ds.image(split.train.front());
  out.pipeline = make_pipeline(hp, ds.labels(), static_cast<index_t>(first->channels()));
  auto& p = *out.pipeline;
  o.log("data " + data_dir.string() + ": " + std::to_string(ds.size()) + " images, classes " + nlohmann::json(ds.labels()).dump() +
        "; split " + std::to_string(split.train.size()) + " train / " + std::to_string(split.validation.size()) + " validation / " +
        std::to_string(split.test.size()) + " test; " + p.architecture() + ", " + std::to_string(p.parameters()) + " parameters, " +
        std::to_string(max_threads()) + " threads");
  o.log("run folder " + shown_folder.string());
  const auto t0 = std::chrono::steady_clock::now();
  out.fit = p.fit(ds, split, o);
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  o.log(out.fit.stop_reason + "; best epoch " + std::to_string(out.fit.best_epoch) + ", " + train::format_duration(out.seconds));

  if (ro.evaluate && !out.paused()) {
    // The best model on the test images (or the validation images when there is no test set).
    namespace fs = std::filesystem;
    p.load(fs::is_regular_file(out.fit.best_checkpoint) ? out.fit.best_checkpoint : out.fit.latest_checkpoint);
    const auto& shown = split.test.empty() ? split.validation : split.test;
    if (!shown.empty()) {
      out.scored_on = split.test.empty() ? "validation" : "test";
      std::function<void(const std::string&)> say = nullptr;
      if (ro.progress) say = ro.progress;
      out.scores = evaluate_into(p, ds, shown, layout.dir, static_cast<std::size_t>(hp.samples), say);
      if (ro.progress) ro.progress("");
      o.log(out.scored_on + " results: " + train::to_json(*out.scores).dump());
    }
  }
  return out;
}

}  // namespace microcount::cli
