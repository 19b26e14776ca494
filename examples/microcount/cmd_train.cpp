// microcount train DATA_DIR [--out RUN_DIR] [--config FILE] [--epochs N] [--seed S] [--resume CKPT] …
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <unistd.h>

#include "command.hpp"
#include "microcount/core/parallel.hpp"
#include "microcount/data/dataset.hpp"
#include "microcount/io/atomic_file.hpp"
#include "pipelines.hpp"
#include "microcount/train/curves.hpp"
#include "microcount/train/run_folder.hpp"
#include "reporting.hpp"
#include "training_setup.hpp"

namespace microcount::cli {
namespace {

namespace fs = std::filesystem;

// --resume RUN_DIR | TrainingRun | CKPT -> the latest checkpoint to continue from.
fs::path resume_checkpoint(const fs::path& given) {
  std::error_code ec;
  if (fs::is_regular_file(given, ec)) return given;
  for (const fs::path rel : {"TrainingRun/checkpoints/latest_model.mcm", "checkpoints/latest_model.mcm"})
    if (fs::is_regular_file(given / rel, ec)) return given / rel;
  throw error(given.string(), "no latest_model.mcm to resume from (give a run folder or a checkpoint)");
}

train::run_folder open_or_create(const fs::path& root) {
  std::error_code ec;
  fs::create_directories(root, ec);
  require(!ec, root.string(), "cannot create the run folder: " + ec.message());
  return train::run_folder::open(root);
}

int run_train(const std::vector<std::string>& args) {
  const arguments a(args, {"quiet"});
  a.allow_only({"out", "config", "epochs", "seed", "resume", "train", "val", "test", "set", "threads", "head", "lr", "batch",
                "patch", "quiet", "max-epochs"});
  require(a.positional.size() == 1, "microcount", "train needs one DATA_DIR (see microcount train --help)");
  const fs::path data_dir = a.positional[0];
  train::hyperparameters hp = hyperparameters_from(a);
  std::optional<fs::path> resume;
  if (a.has("resume")) {
    resume = resume_checkpoint(a.get("resume"));
    hp = hyperparameters_from(a, train::read_checkpoint_info(*resume).hp);  // the run's own values, then today's options
  }
  set_threads(static_cast<int>(hp.threads));
  const data::dataset ds = data::open_dataset(data_dir);
  const data::split_indices split = split_from(a, ds, hp);

  // The run folder: --out, the resumed run's, or runs/<data>-<time>.
  train::run_folder run = a.has("out")       ? open_or_create(a.get("out"))
                          : resume.has_value() ? train::run_folder::open(resume->parent_path().parent_path().parent_path())
                                               : train::run_folder::create("runs", train::data_name_of(data_dir));
  const train::run_layout layout = run.training();
  if (!resume && std::filesystem::exists(layout.latest_model()))
    throw error(run.root().string(), "already holds a training run (resume it with --resume " + run.root().string() + ")");
  layout.create_directories();
  train::write_json_atomically(layout.hyperparameters_json(), train::to_json(hp));
  const bool tty = isatty(2) && !a.has("quiet");
  train::run_log log(layout.log_txt());
  train::training_options o;
  o.checkpoints = layout.checkpoints_dir();
  o.resume = resume;
  if (a.has("max-epochs")) o.max_epochs = a.integer("max-epochs", 0);
  o.log = [&](const std::string& line) {
    if (tty) std::cerr << "\r\033[K";
    if (!a.has("quiet")) std::cerr << line << "\n";
    log.write(line);
  };
  if (tty) o.progress = [&](const std::string& line) { std::cerr << "\r\033[K" << line << std::flush; };
  o.on_epoch = [&](const train::epoch_record&, const train::history& h) { train::write_training_curves(h, layout.training_curves()); };
  for (const auto& w : ds.warnings()) o.log("warning: " + w);

  const auto first = ds.image(split.train.front());
  auto p = make_pipeline(hp, ds.labels(), static_cast<index_t>(first->channels()));
  o.log("data " + data_dir.string() + ": " + std::to_string(ds.size()) + " images, classes " + nlohmann::json(ds.labels()).dump() +
        "; split " + std::to_string(split.train.size()) + " train / " + std::to_string(split.validation.size()) + " validation / " +
        std::to_string(split.test.size()) + " test; " + p->architecture() + ", " + std::to_string(p->parameters()) +
        " parameters, " + std::to_string(max_threads()) + " threads");
  o.log("run folder " + run.root().string());
  const auto t0 = std::chrono::steady_clock::now();
  const auto result = p->fit(ds, split, o);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  o.log(result.stop_reason + "; best epoch " + std::to_string(result.best_epoch) + ", " + train::format_duration(seconds));

  nlohmann::json summary = {{"run", run.root().string()}, {"seconds", seconds}, {"epochs", result.epochs.size()},
                            {"best_epoch", result.best_epoch}};
  if (result.stop_reason.rfind("paused", 0) != 0) {
    // The best model on the test images (or the validation images when there is no test set).
    p->load(fs::is_regular_file(result.best_checkpoint) ? result.best_checkpoint : result.latest_checkpoint);
    const auto& shown = split.test.empty() ? split.validation : split.test;
    if (!shown.empty()) {
      const auto r = evaluate_into(*p, ds, shown, layout.dir, static_cast<std::size_t>(hp.samples), tty ? o.progress : nullptr);
      if (tty) std::cerr << "\r\033[K";
      o.log(std::string(split.test.empty() ? "validation" : "test") + " results: " + train::to_json(r).dump());
      summary[split.test.empty() ? "validation" : "test"] = train::to_json(r);
    }
  }
  std::cout << summary.dump() << "\n";
  return 0;
}

const register_command reg{{"train", "train a counting network on a folder of images and point annotations",
                            "usage: microcount train DATA_DIR [--out RUN_DIR] [--config FILE] [--epochs N] [--seed S]\n"
                            "                        [--resume CKPT|RUN_DIR] [--train POS] [--val POS] [--test POS]\n"
                            "                        [--head density|detection|regression] [--set key=value,…] [--threads N]\n",
                            run_train}};

}  // namespace
}  // namespace microcount::cli
