// microcount demo: the whole program on a synthetic data set, end to end, in a couple of minutes.
//   1. synthesise a fluorescence data set with known points (like `microcount synth`)
//   2. train a density U-Net on its first images (the `train` command, run folder and all)
//   3. count the held-out images (the `count` command: counts.json, points CSVs, overlays)
//   4. score the held-out images (the `evaluate` command: MAE, RMSE, precision, recall, F1)
//   5. say where everything is, and which commands do the same on your own data.
// Each step runs the program's own command, so what the demo shows is what a user gets.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "command.hpp"
#include "microcount/data/synth.hpp"
#include "microcount/io/atomic_file.hpp"
#include "microcount/train/trainer.hpp"

namespace microcount::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const char* const usage =
    "usage: microcount demo [--out DIR] [--quick] [--classes K] [--seed S] [--threads N]\n\n"
    "Synthesises a fluorescence data set with known points, trains a density U-Net on it, counts and\n"
    "scores held-out images, and shows where every output is (1-3 minutes on 2 cores; --quick: a few\n"
    "seconds with a tiny network, to check that everything works):\n"
    "  DIR/data/                       images image_001.tif … and annotations.xml (CVAT); DIR: ./microcount-demo\n"
    "  DIR/run/TrainingRun/            log.txt, hyperparameters.json, checkpoints/, plots/training_curves.png,\n"
    "                                  samples/, test_results.txt (the run folder, docs/run_folder.md)\n"
    "  DIR/counts/                     counts.json, points/<image>.csv, overlays/<image>.png\n"
    "  DIR/run/Evaluate/               test_results.json/.txt of `microcount evaluate`\n"
    "K classes (1–3, default 1). An existing demo folder is replaced; any other existing folder is refused.\n";

// The demo's settings: the data set and the training that fits the time budget (measured, docs/training.md).
struct demo_settings {
  std::size_t images, train_images, size, min_cells, max_cells;
  int epochs;
  std::string set;  // --set for `train`
};

// Full: 20 epochs of 19 steps, 121k parameters; measured 190 s wall / 121 s CPU with the machine shared
// (load 6-10 on 2 cores), held-out count MAE 0.66 (~22 cells per image), F1 0.97; about 1-1.5 min idle.
// Quick: a larger learning rate and no weight averaging, so that 4 epochs already find the cells.
demo_settings settings_for(bool quick) {
  if (quick) return {10, 7, 64, 6, 14, 4, "base_width=8,patch=32,batch=4,patches_per_image=8,samples=2,ema=0,lr=0.003"};
  return {32, 24, 128, 12, 30, 20, "base_width=8,patch=64,batch=8,patches_per_image=8,samples=4"};
}

// Runs one of the program's commands in process; its stdout is captured (the demo prints its own report).
std::string run_command(const std::string& name, const std::vector<std::string>& args) {
  const auto& all = commands();
  const auto it = std::find_if(all.begin(), all.end(), [&](const command& c) { return c.name == name; });
  require(it != all.end(), "demo", "this build of microcount has no '" + name + "' command");
  std::ostringstream captured;
  struct restore {
    std::streambuf* old;
    ~restore() { std::cout.rdbuf(old); }
  } guard{std::cout.rdbuf(captured.rdbuf())};
  const int status = it->run(args);
  require(status == 0, "demo", "microcount " + name + " ended with status " + std::to_string(status));
  return captured.str();
}

// The last line of a command's output, as JSON.
json last_json_line(const std::string& text, const std::string& name) {
  std::istringstream lines(text);
  std::string line, last;
  while (std::getline(lines, line))
    if (!line.empty()) last = line;
  try {
    return json::parse(last);
  } catch (const json::exception&) {
    throw error("demo", "microcount " + name + " printed no JSON line: " + last);
  }
}

std::string quoted(const std::string& s) { return s.find(' ') == std::string::npos ? s : "'" + s + "'"; }

std::string command_line(const std::string& name, const std::vector<std::string>& args) {
  std::string s = "microcount ";  // appended piecewise: GCC 12 warns falsely (-Wrestrict) on "literal" + string
  s += name;
  for (const auto& a : args) {
    s += ' ';
    s += quoted(a);
  }
  return s;
}

struct clock_since {
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
  [[nodiscard]] double seconds() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); }
};

int run_demo(const std::vector<std::string>& args) {
  const arguments a(args, {"quick"});
  a.allow_only({"out", "quick", "classes", "seed", "threads", "epochs"});
  require(a.positional.empty(), "microcount", "demo takes no positional argument (see microcount demo --help)");
  const long long classes = a.integer("classes", 1);
  require(classes >= 1 && classes <= 3, "microcount", "option --classes must be 1, 2 or 3");
  const auto seed = static_cast<std::uint64_t>(a.integer("seed", 1));
  const bool quick = a.has("quick");
  demo_settings s = settings_for(quick);
  if (a.has("epochs")) s.epochs = static_cast<int>(a.integer("epochs", s.epochs));
  require(s.epochs >= 1, "microcount", "option --epochs must be at least 1");
  const fs::path dir = a.get("out", "microcount-demo");
  const fs::path data_dir = dir / "data", run_dir = dir / "run", counts_dir = dir / "counts";

  // Replace an earlier demo, but never someone's other folder.
  const fs::path marker = dir / ".microcount-demo";
  std::error_code ec;
  if (fs::exists(dir, ec)) {
    require(fs::is_directory(dir, ec), dir.string(), "exists and is not a folder");
    const bool empty = fs::directory_iterator(dir, ec) == fs::directory_iterator();
    require(empty || fs::exists(marker, ec), dir.string(), "exists and is not a microcount demo folder (give another --out)");
    for (const auto& sub : {data_dir, run_dir, counts_dir}) fs::remove_all(sub, ec);
  }
  fs::create_directories(dir, ec);
  require(!ec, dir.string(), "cannot create the demo folder: " + ec.message());
  io::write_text_atomically(marker, "a folder written by `microcount demo`; the next demo into it replaces it\n");

  const clock_since total;
  const std::string threads = std::to_string(a.integer("threads", 0));
  const std::string held_out = std::to_string(s.train_images + 1) + "-" + std::to_string(s.images);
  const auto step = [&](int n, const std::string& what) {
    std::fprintf(stderr, "\n[%d/4] %s  (%s so far)\n", n, what.c_str(), train::format_duration(total.seconds()).c_str());
    std::fflush(stderr);
  };

  step(1, "synthesising " + std::to_string(s.images) + " fluorescence images " + std::to_string(s.size) + "×" + std::to_string(s.size) +
              " with " + std::to_string(classes) + " class(es) → " + data_dir.string());
  data::synth_options o;
  o.images = s.images;
  o.height = o.width = s.size;
  o.classes = static_cast<std::size_t>(classes);
  o.min_cells = s.min_cells;
  o.max_cells = s.max_cells;
  o.seed = seed;
  const auto written = data::write_synthetic_dataset(data_dir, o);
  std::fprintf(stderr, "      %zu objects; images 1–%zu train (a fifth of them validate), %s are held out\n",
               written.annotations.total_points(), s.train_images, held_out.c_str());

  const std::vector<std::string> train_args = {data_dir.string(), "--out", run_dir.string(), "--train", "1-" + std::to_string(s.train_images),
                                               "--test", held_out, "--epochs", std::to_string(s.epochs), "--seed", std::to_string(seed),
                                               "--set", s.set, "--threads", threads};
  step(2, "training a density U-Net (" + std::string(quick ? "a few seconds" : "1-3 minutes on 2 cores") + ")");
  std::fprintf(stderr, "      %s\n", command_line("train", train_args).c_str());
  const json trained = last_json_line(run_command("train", train_args), "train");

  std::vector<std::string> count_args = {"--model", run_dir.string(), "--out", counts_dir.string(), "--threads", threads, "--quiet"};
  for (std::size_t i = s.train_images; i < written.annotations.images.size(); ++i)
    count_args.push_back((data_dir / written.annotations.images[i].name).string());
  step(3, "counting the " + std::to_string(s.images - s.train_images) + " held-out images");
  std::fprintf(stderr, "      microcount count --model %s --out %s %s/image_%03zu.tif …\n", run_dir.string().c_str(),
               counts_dir.string().c_str(), data_dir.string().c_str(), s.train_images + 1);
  run_command("count", count_args);
  const json counts = json::parse(io::read_text(counts_dir / "counts.json"));

  const std::vector<std::string> evaluate_args = {"--model", run_dir.string(), data_dir.string(), "--images", held_out, "--threads", threads, "--quiet"};
  step(4, "scoring the held-out images against their annotations");
  std::fprintf(stderr, "      %s\n", command_line("evaluate", evaluate_args).c_str());
  json scores = last_json_line(run_command("evaluate", evaluate_args), "evaluate");

  // ---- the report ------------------------------------------------------------------------------
  const fs::path training = run_dir / "TrainingRun";
  std::printf("\nmicrocount demo — %s\n\n", quick ? "quick run (small network, 4 epochs: the numbers only show that every step works)" : "density U-Net on synthetic cells");
  std::printf("%-18s %8s %10s\n", "held-out image", "true", "predicted");
  for (std::size_t i = s.train_images; i < written.annotations.images.size(); ++i) {
    const auto& im = written.annotations.images[i];
    const double predicted = counts["images"].contains(im.name) ? counts["images"][im.name]["total"].get<double>() : 0.0;
    std::printf("%-18s %8zu %10.1f\n", im.name.c_str(), im.points.size(), predicted);
  }
  const auto number = [&](const char* key) { return scores.contains(key) && scores[key].is_number() ? scores[key].get<double>() : -1.0; };
  std::printf("\ncount MAE %.2f, RMSE %.2f over %zu images (%.0f objects); detection precision %.3f, recall %.3f, F1 %.3f\n"
              "(a predicted point is right when it lies within %.0f px of an annotated one, one to one)\n",
              number("mae"), number("rmse"), s.images - s.train_images, number("truth_count"), number("precision"), number("recall"),
              number("f1"), number("radius"));
  std::printf("trained %zu epochs in %s; whole demo %s\n\n", trained.value("epochs", std::size_t{0}),
              train::format_duration(trained.value("seconds", 0.0)).c_str(), train::format_duration(total.seconds()).c_str());
  std::printf("where everything is:\n");
  const auto where = [](const char* what, const fs::path& p) { std::printf("  %-26s %s\n", what, p.string().c_str()); };
  where("data set", data_dir);
  where("run folder", run_dir);
  where("training log", training / "log.txt");
  where("hyperparameters", training / "hyperparameters.json");
  where("checkpoints", training / "checkpoints");
  where("training curves", training / "plots" / "training_curves.png");
  where("samples (with Grad-CAM)", training / "samples");
  where("test results", training / "test_results.txt");
  where("counts", counts_dir / "counts.json");
  where("points per image", counts_dir / "points");
  where("overlays", counts_dir / "overlays");
  where("evaluation", run_dir / "Evaluate" / "test_results.txt");
  std::printf("\non your own data (a folder of images with annotations.xml or napari CSVs):\n"
              "  microcount train MY_DATA --out MY_RUN\n"
              "  microcount count --model MY_RUN NEW_IMAGES/ --out MY_COUNTS\n"
              "  microcount evaluate --model MY_RUN ANNOTATED_TEST_DATA\n"
              "(docs/training.md explains the settings)\n");

  scores["demo"] = {{"out", dir.string()},
                    {"run", run_dir.string()},
                    {"counts", (counts_dir / "counts.json").string()},
                    {"epochs", trained.value("epochs", std::size_t{0})},
                    {"training_seconds", trained.value("seconds", 0.0)},
                    {"seconds", total.seconds()},
                    {"quick", quick}};
  std::printf("%s\n", scores.dump().c_str());
  return 0;
}

const register_command reg{
    {"demo", "synthesise a data set, train a density U-Net, count and score held-out images (1-3 min)", usage, run_demo}};

}  // namespace
}  // namespace microcount::cli
