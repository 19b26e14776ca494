// microcount train DATA_DIR [--out RUN_DIR] [--config FILE] [--epochs N] [--seed S] [--resume CKPT] …
#include <filesystem>
#include <iostream>
#include <optional>
#include <unistd.h>

#include "command.hpp"
#include "microcount/core/parallel.hpp"
#include "microcount/data/dataset.hpp"
#include "microcount/train/run_folder.hpp"
#include "training_run.hpp"
#include "training_setup.hpp"

namespace microcount::cli {
namespace {

namespace fs = std::filesystem;

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
  const bool tty = isatty(2) && !a.has("quiet");
  training_run_options ro;
  ro.resume = resume;
  if (a.has("max-epochs")) ro.max_epochs = a.integer("max-epochs", 0);
  ro.echo = [&](const std::string& line) {
    if (tty) std::cerr << "\r\033[K";
    if (!a.has("quiet")) std::cerr << line << "\n";
  };
  if (tty) ro.progress = [&](const std::string& line) { std::cerr << "\r\033[K" << line << std::flush; };
  const auto r = run_training(hp, ds, data_dir, split, layout, run.root(), ro);

  nlohmann::json summary = {{"run", run.root().string()}, {"seconds", r.seconds}, {"epochs", r.fit.epochs.size()},
                            {"best_epoch", r.fit.best_epoch}};
  if (r.scores) summary[r.scored_on] = train::to_json(*r.scores);
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
