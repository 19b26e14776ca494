// microcount tune DATA_DIR --grid FILE|JSON [--out RUN_DIR] [--config FILE] [--set k=v,…] [--epochs N]
//                 [--subset N] [--train/--val/--test POS] [--resume RUN_DIR]
// A grid search (train/tuner.hpp): every combination trains in RUN_DIR/Sweep_<i>/ like `train` does in
// TrainingRun/ and is scored by its best validation MAE; tuning_results.json and
// best_sweep_parameters.json at the root. The split is made once from the base hyperparameters so that
// every sweep is scored on the same validation images; the test images are never looked at.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <limits>
#include <optional>
#include <string>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "command.hpp"
#include "microcount/core/parallel.hpp"
#include "microcount/data/dataset.hpp"
#include "microcount/io/atomic_file.hpp"
#include "microcount/train/run_folder.hpp"
#include "microcount/train/tuner.hpp"
#include "training_run.hpp"
#include "training_setup.hpp"

namespace microcount::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// What a tuning folder was started with (RUN_DIR/tune_settings.json), so `--resume RUN_DIR` alone
// continues the same search, and a resume with different settings is refused instead of mixing results.
constexpr const char* settings_file = "tune_settings.json";

// --grid FILE or inline JSON -> {"key": [values…]}; keys must be hyperparameter names.
json read_grid(const std::string& given) {
  std::error_code ec;
  const bool is_file = fs::is_regular_file(given, ec);
  const std::string where = is_file ? given : "--grid";
  json grid;
  try {
    grid = json::parse(is_file ? io::read_text(given) : given);
  } catch (const json::exception& e) {
    throw error(where, std::string(is_file ? "not valid JSON: " : "neither a file nor valid JSON: ") + e.what());
  }
  require(grid.is_object() && !grid.empty(), where, "must be a JSON object of lists, e.g. {\"lr\": [0.001, 0.0003]}");
  const json names = train::to_json(train::hyperparameters{});
  for (auto it = grid.begin(); it != grid.end(); ++it) {
    require(names.contains(it.key()), where, "unknown hyperparameter '" + it.key() + "' (see microcount tune --help)");
    require(it.value().is_array() && !it.value().empty(), where, "'" + it.key() + "' must be a non-empty list of values");
  }
  return grid;
}

// Every combination must make valid hyperparameters this program can train; checked before any sweep runs.
void check_combinations(const json& base, const json& grid, const std::string& where) {
  for (const auto& overrides : train::grid_combinations(grid)) {
    const auto hp = train::from_json(train::apply_overrides(base, overrides), {}, where + " " + overrides.dump());
    require(hp.depth == 3, where, "depth " + std::to_string(hp.depth) + ": this program is compiled with depth 3");
  }
}

// "lr=0.001 sigma=1.5"
std::string describe(const json& overrides) {
  std::string s;
  for (auto it = overrides.begin(); it != overrides.end(); ++it)
    s += (s.empty() ? "" : " ") + it.key() + "=" + (it.value().is_string() ? it.value().get<std::string>() : it.value().dump());
  return s.empty() ? "(base)" : s;
}

// Compares a setting given again on --resume with the stored one.
void require_same(const json& stored, const json& now, const std::string& what, const fs::path& root) {
  if (stored != now)
    throw error((root / settings_file).string(), "this search was started with " + what + " " + stored.dump() + ", not " +
                                                     now.dump() + " (tune into a new folder for other settings)");
}

int run_tune(const std::vector<std::string>& args) {
  const arguments a(args, {"quiet"});
  a.allow_only({"grid", "out", "config", "set", "epochs", "seed", "subset", "train", "val", "test", "resume", "threads", "head",
                "lr", "batch", "patch", "quiet"});
  require(a.positional.size() <= 1, "microcount", "tune takes one DATA_DIR (see microcount tune --help)");
  const bool resuming = a.has("resume");
  require(resuming || a.positional.size() == 1, "microcount", "tune needs a DATA_DIR (see microcount tune --help)");
  require(resuming || a.has("grid"), "microcount", "tune needs --grid FILE|'{\"lr\": [0.001, 0.0003]}'");
  require(!(resuming && a.has("out")), "microcount", "give either --out (a new search) or --resume RUN_DIR");

  // ---- settings: from the options, or from the folder being resumed (options given again must agree) ----
  std::optional<fs::path> root;
  json stored;
  if (resuming) {
    root = a.get("resume");
    require(fs::is_directory(*root), root->string(), "no such tuning folder to resume");
    require(fs::is_regular_file(*root / settings_file), (*root / settings_file).string(),
            "not found: " + root->string() + " is not a folder made by microcount tune");
    stored = train::read_json(*root / settings_file);
    for (const char* key : {"data", "grid", "base", "split"})
      require(stored.is_object() && stored.contains(key), (*root / settings_file).string(), std::string("has no \"") + key + "\"");
  }
  const fs::path data_dir = a.positional.empty() ? fs::path(stored["data"].get<std::string>()) : fs::path(a.positional[0]);
  const json grid = a.has("grid") ? read_grid(a.get("grid")) : stored["grid"];
  const train::hyperparameters base_hp =
      hyperparameters_from(a, resuming ? train::from_json(stored["base"], {}, (*root / settings_file).string()) : train::hyperparameters{});
  const json base = train::to_json(base_hp);
  json split_options = json::object();
  for (const char* key : {"train", "val", "test", "subset"})
    if (a.has(key)) split_options[key] = a.get(key);
  if (resuming) {
    if (!a.positional.empty())
      require_same(stored["data"], fs::weakly_canonical(data_dir).string(), "DATA_DIR", *root);
    if (a.has("grid")) require_same(stored["grid"], grid, "--grid", *root);
    require_same(stored["base"], base, "the hyperparameters", *root);
    for (const char* key : {"train", "val", "test", "subset"})
      if (a.has(key)) require_same(stored["split"].value(key, json()), split_options[key], std::string("--") + key, *root);
    split_options = stored["split"];
  }
  check_combinations(base, grid, a.has("grid") && fs::is_regular_file(a.get("grid")) ? a.get("grid") : "--grid");

  set_threads(static_cast<int>(base_hp.threads));
  const data::dataset ds = data::open_dataset(data_dir);
  // The split: the stored split options on resume (they are re-parsed exactly as the first time).
  std::vector<std::string> split_args;
  for (auto it = split_options.begin(); it != split_options.end(); ++it) split_args.insert(split_args.end(), {"--" + it.key(), it.value().get<std::string>()});
  const arguments split_a(split_args);
  data::split_indices split = split_from(split_a, ds, base_hp);
  if (split_a.has("subset")) {
    const long long n = split_a.integer("subset", 0);
    require(n >= 1, "microcount", "--subset must be at least 1 (training images per sweep)");
    if (static_cast<std::size_t>(n) < split.train.size()) split.train.resize(static_cast<std::size_t>(n));
  }
  require(!split.validation.empty(), data_dir.string(),
          "tuning scores every sweep on validation images, and this split has none (give --val POS or keep val_fraction > 0)");

  const train::run_folder run = root ? train::run_folder::open(*root)
                                : a.has("out") ? [&] {
                                    std::error_code ec;
                                    fs::create_directories(a.get("out"), ec);
                                    require(!ec, a.get("out"), "cannot create the tuning folder: " + ec.message());
                                    return train::run_folder::open(a.get("out"));
                                  }()
                                               : train::run_folder::create("runs", train::data_name_of(data_dir) + "-tune");
  if (!resuming) {
    if (fs::exists(run.root() / settings_file))
      throw error(run.root().string(), "already holds a grid search (continue it with --resume " + run.root().string() + ")");
    train::write_json_atomically(run.root() / settings_file, {{"data", fs::weakly_canonical(data_dir).string()},
                                                              {"grid", grid},
                                                              {"base", base},
                                                              {"split", split_options}});
  }

  // ---- console ----------------------------------------------------------------------------------
  const bool quiet = a.has("quiet"), tty = isatty(2) && !quiet;
  const auto say = [&](const std::string& line) {
    if (quiet) return;
    std::cerr << (tty ? "\r\033[K" : "") << line << "\n" << std::flush;
  };
  const auto combinations = train::grid_combinations(grid);
  say("tuning " + std::to_string(combinations.size()) + " sweep(s) over " + grid.dump() + " in " + run.root().string() + "; " +
      std::to_string(split.train.size()) + " training / " + std::to_string(split.validation.size()) +
      " validation images per sweep, " + std::to_string(base_hp.epochs) + " epochs each; metric: best validation MAE");

  // Time left = the rest of this sweep + the sweeps after it at the mean duration of the ones run here
  // (the current sweep's projected duration until one has finished).
  const auto session_start = std::chrono::steady_clock::now();
  std::size_t current = 0, to_run = 0, run_here = 0;
  double finished_seconds = 0;
  std::chrono::steady_clock::time_point sweep_start;
  std::string sweep_label;
  for (std::size_t i = 0; i < combinations.size(); ++i)
    if (!fs::exists(run.sweep(i).result_json()) || train::read_json(run.sweep(i).result_json()).value("status", "") != "done") ++to_run;
  const auto live = [&](const std::string& trainer_line) {
    if (!tty) return;
    long long epoch = 0, epochs = 0, step = 0, steps = 0;
    double fraction = 0;
    if (std::sscanf(trainer_line.c_str(), "epoch %lld/%lld step %lld/%lld", &epoch, &epochs, &step, &steps) == 4 && epochs > 0 && steps > 0)
      fraction = (static_cast<double>(epoch - 1) + static_cast<double>(step) / static_cast<double>(steps)) / static_cast<double>(epochs);
    const double in_sweep = std::chrono::duration<double>(std::chrono::steady_clock::now() - sweep_start).count();
    double left = std::numeric_limits<double>::quiet_NaN();
    if (fraction > 0.01) {
      const double sweep_total = in_sweep / fraction;
      const double per_sweep = run_here > 0 ? finished_seconds / static_cast<double>(run_here) : sweep_total;
      const std::size_t after = to_run > run_here + 1 ? to_run - run_here - 1 : 0;
      left = sweep_total - in_sweep + per_sweep * static_cast<double>(after);
    }
    std::cerr << "\r\033[K" << "sweep " << current + 1 << "/" << combinations.size() << " (" << sweep_label << ")  "
              << trainer_line.substr(0, trainer_line.rfind("  ")) << "  tuning " << train::format_duration(left) << " left" << std::flush;
  };

  train::tuner_options to;
  to.on_progress = [&](const train::tuning_progress& pr) {
    current = pr.sweep;
    sweep_label = "Sweep_" + std::to_string(pr.sweep) + ": " + describe(combinations[pr.sweep]);
    if (pr.reused) {
      const auto r = train::read_json(run.sweep(pr.sweep).result_json());
      say("sweep " + std::to_string(pr.sweep + 1) + "/" + std::to_string(pr.sweeps) + " (" + sweep_label + ") finished earlier: " +
          (r.value("status", "") == "done" ? "validation MAE " + r["metric"].dump() : "failed"));
    }
  };

  const auto sweep = [&](const json& parameters, const fs::path& dir) -> double {
    const train::hyperparameters hp = train::from_json(parameters, {}, (dir / "sweep_parameters.json").string());
    const train::run_layout layout{dir};
    training_run_options ro;
    // An interrupted sweep continues from its own latest checkpoint when it was made with these parameters.
    std::error_code ec;
    if (fs::is_regular_file(layout.latest_model(), ec)) {
      try {
        if (train::to_json(train::read_checkpoint_info(layout.latest_model()).hp) == train::to_json(hp)) ro.resume = layout.latest_model();
      } catch (const error& e) {
        say(std::string("Sweep_") + std::to_string(current) + ": cannot resume (" + e.what() + "), starting again");
      }
    }
    if (!ro.resume) fs::remove_all(layout.checkpoints_dir(), ec);  // a stale best model must not win
    say("sweep " + std::to_string(current + 1) + "/" + std::to_string(combinations.size()) + " (" + sweep_label + ")" +
        (ro.resume ? ": resuming from its latest checkpoint" : ""));
    ro.evaluate = false;  // the test images stay unseen while tuning
    if (tty) ro.progress = live;
    sweep_start = std::chrono::steady_clock::now();
    double seconds = 0, metric = std::numeric_limits<double>::quiet_NaN();
    try {
      const auto r = run_training(hp, ds, data_dir, split, layout, dir, ro);
      seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - sweep_start).count();
      metric = r.fit.best_metric;
      say("sweep " + std::to_string(current + 1) + "/" + std::to_string(combinations.size()) + " (" + sweep_label +
          "): best validation MAE " + json(metric).dump() + " at epoch " + std::to_string(r.fit.best_epoch) + ", " +
          train::format_duration(seconds));
    } catch (const error& e) {
      seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - sweep_start).count();
      say("sweep " + std::to_string(current + 1) + "/" + std::to_string(combinations.size()) + " (" + sweep_label + ") failed: " + e.what());
      ++run_here;
      finished_seconds += seconds;
      throw;
    }
    ++run_here;
    finished_seconds += seconds;
    return metric;
  };

  const auto result = train::run_grid_search(run.root(), base, grid, sweep, to);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - session_start).count();
  std::size_t failed = 0;
  for (const auto& s : result.sweeps) failed += s.done ? 0 : 1;
  if (!result.best) {
    const auto& first = result.sweeps.front();
    throw error(run.root().string(), "every sweep failed (Sweep_0: " + first.error + ")");
  }
  const auto& best = result.sweeps[*result.best];
  say("best: Sweep_" + std::to_string(best.index) + " (" + describe(best.overrides) + "), validation MAE " + json(best.metric).dump() +
      "; train with it: microcount train " + data_dir.string() + " --config " + run.best_sweep_parameters_json().string());
  const json line = {{"run", run.root().string()},
                     {"metric", "validation_mae"},
                     {"best_sweep", best.index},
                     {"best_metric", best.metric},
                     {"best_parameters", best.overrides},
                     {"best_sweep_parameters", run.best_sweep_parameters_json().string()},
                     {"tuning_results", run.tuning_results_json().string()},
                     {"sweeps", result.sweeps.size()},
                     {"failed", failed},
                     {"seconds", seconds}};
  std::cout << line.dump() << "\n";
  return 0;
}

const register_command reg{
    {"tune", "grid search over hyperparameters: one training per combination, best by validation MAE (resumable)",
     "usage: microcount tune DATA_DIR --grid FILE|'{\"lr\": [1e-3, 3e-4], \"sigma\": [1.5, 2]}' [--out RUN_DIR]\n"
     "                       [--config FILE] [--set key=value,…] [--epochs N] [--subset N]\n"
     "                       [--train POS] [--val POS] [--test POS] [--threads N] [--quiet]\n"
     "       microcount tune --resume RUN_DIR\n"
     "Every combination of the grid (keys: hyperparameter names, see docs/training.md) trains in\n"
     "RUN_DIR/Sweep_<i>/ (hyperparameters.json, log.txt, checkpoints, plots) with the base settings\n"
     "(defaults, --config, --set, options) and is scored by its best validation MAE. --epochs N and\n"
     "--subset N (the first N training images) make sweeps cheaper. Writes RUN_DIR/tuning_results.json\n"
     "and RUN_DIR/best_sweep_parameters.json (use it as `train --config`), prints one JSON line.\n"
     "--resume RUN_DIR continues: finished sweeps are kept, an interrupted one resumes from its latest\n"
     "checkpoint, failed ones run again.\n",
     run_tune}};

}  // namespace
}  // namespace microcount::cli
