// microcount train DATA_DIR [--out RUN_DIR] [--config FILE] [--epochs N] [--seed S] [--resume CKPT] …
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <unistd.h>

#include "command.hpp"
#include "microcount/core/parallel.hpp"
#include "microcount/data/dataset.hpp"
#include "microcount/io/atomic_file.hpp"
#include "pipelines.hpp"
#include "training_setup.hpp"

namespace microcount::cli {
namespace {

namespace fs = std::filesystem;

int run_train(const std::vector<std::string>& args) {
  const arguments a(args, {"quiet"});
  a.allow_only({"out", "config", "epochs", "seed", "resume", "train", "val", "test", "set", "threads", "head", "lr", "batch",
                "patch", "quiet", "max-epochs"});
  require(a.positional.size() == 1, "microcount", "train needs one DATA_DIR (see microcount train --help)");
  const fs::path data_dir = a.positional[0];
  train::hyperparameters hp = hyperparameters_from(a);
  if (a.has("resume")) {
    // The run's own hyperparameters win, options given now still apply (e.g. more epochs).
    fs::path ckpt = a.get("resume");
    if (fs::is_directory(ckpt)) {
      for (const fs::path rel : {"TrainingRun/checkpoints/latest_model.mcm", "checkpoints/latest_model.mcm"})
        if (fs::is_regular_file(ckpt / rel)) { ckpt = ckpt / rel; break; }
    }
    hp = hyperparameters_from(a, train::read_checkpoint_info(ckpt).hp);
  }
  set_threads(static_cast<int>(hp.threads));
  const data::dataset ds = data::open_dataset(data_dir);
  for (const auto& w : ds.warnings()) std::cerr << "warning: " << w << "\n";
  const data::split_indices split = split_from(a, ds, hp);

  fs::path root = a.get("out");
  if (root.empty()) {
    char stamp[32];
    const std::time_t now = std::time(nullptr);
    std::strftime(stamp, sizeof stamp, "%Y-%m-%d_%H-%M-%S", std::localtime(&now));
    root = fs::path("runs") / (fs::absolute(data_dir).lexically_normal().filename().string() + "-" + stamp);
  }
  const fs::path run = root / "TrainingRun";
  std::error_code ec;
  fs::create_directories(run, ec);
  require(!ec, run.string(), "cannot create the run folder: " + ec.message());
  io::write_text_atomically(run / "hyperparameters.json", train::to_json(hp).dump(2) + "\n");

  const auto first = ds.image(split.train.front());
  auto p = make_pipeline(hp, ds.labels(), static_cast<index_t>(first->channels()));
  std::ofstream log(run / "log.txt", std::ios::app);
  const bool tty = isatty(2) && !a.has("quiet");
  train::training_options o;
  o.checkpoints = run / "checkpoints";
  if (a.has("resume")) {
    fs::path ckpt = a.get("resume");
    if (fs::is_directory(ckpt))
      for (const fs::path rel : {"TrainingRun/checkpoints/latest_model.mcm", "checkpoints/latest_model.mcm"})
        if (fs::is_regular_file(ckpt / rel)) { ckpt = ckpt / rel; break; }
    o.resume = ckpt;
  }
  if (a.has("max-epochs")) o.max_epochs = a.integer("max-epochs", 0);
  o.log = [&](const std::string& line) {
    if (tty) std::cerr << "\r\033[K";
    if (!a.has("quiet")) std::cerr << line << "\n";
    log << line << "\n" << std::flush;
  };
  if (tty) o.progress = [&](const std::string& line) { std::cerr << "\r\033[K" << line << std::flush; };
  o.log("data " + data_dir.string() + ": " + std::to_string(ds.size()) + " images, classes " + nlohmann::json(ds.labels()).dump() +
        "; " + p->architecture() + ", " + std::to_string(p->parameters()) + " parameters, " + std::to_string(max_threads()) + " threads");
  const auto t0 = std::chrono::steady_clock::now();
  const auto result = p->fit(ds, split, o);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  o.log(result.stop_reason + "; best epoch " + std::to_string(result.best_epoch) + " (metric " +
        std::to_string(result.best_metric) + "), " + train::format_duration(seconds));

  // Test set: the best model on whole test images.
  nlohmann::json summary = {{"run", root.string()}, {"seconds", seconds}, {"best_epoch", result.best_epoch}};
  if (!split.test.empty() && fs::is_regular_file(result.best_checkpoint)) {
    p->load(result.best_checkpoint);
    double abs_err = 0;
    for (auto i : split.test) {
      const auto r = p->predict(*ds.image(i));
      double c = 0;
      for (double v : r.counts) c += v;
      abs_err += std::abs(c - static_cast<double>(ds.points(i).size()));
    }
    summary["test_mae"] = abs_err / static_cast<double>(split.test.size());
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
