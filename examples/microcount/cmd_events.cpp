// microcount events train DIR --out RUN | events detect --model RUN MOVIE… --out DIR | events evaluate --model RUN DIR
// Exocytosis event detection in TIRF movies (train/events.hpp, docs/events.md).
#include <chrono>
#include <climits>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <optional>
#include <sstream>
#include <unistd.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <nlohmann/json.hpp>

#include "command.hpp"
#include "microcount/backends/cpu.hpp"
#include "microcount/core/parallel.hpp"
#include "microcount/io/movie.hpp"
#include "microcount/io/objlist.hpp"
#include "microcount/io/picture.hpp"
#include "microcount/io/png.hpp"
#include "microcount/train/events.hpp"
#include "microcount/train/run_folder.hpp"

namespace microcount::cli {
namespace {

namespace fs = std::filesystem;
using event_model = train::event_pipeline<train::event_unet, backend::cpu>;

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// Numbers rounded for a JSON line a person reads (3 decimals; the files keep full precision).
double round3(double v) { return std::round(v * 1000.0) / 1000.0; }

nlohmann::json scores_json(const eval::event_scores& s) {
  return {{"tp", s.tp}, {"fp", s.fp}, {"fn", s.fn}, {"precision", round3(s.precision)}, {"recall", round3(s.recall)}, {"f1", round3(s.f1)}};
}

// Detection settings a user may change at detect / evaluate time (not the network).
void apply_detection_options(const arguments& a, event_model& p) {
  auto& hp = p.detection_settings();
  if (a.has("set")) hp = train::with_settings(hp, a.get("set"));
  if (a.has("bandwidth")) hp.bandwidth = a.number("bandwidth", hp.bandwidth);
  if (a.has("min-size")) hp.min_size = a.integer("min-size", hp.min_size);
  if (a.has("distance")) hp.match_distance = a.number("distance", hp.match_distance);
  train::validate(hp);
}

event_model load_model(const arguments& a) {
  require(a.has("model"), "microcount", "--model RUN_DIR|CHECKPOINT is required");
  return event_model::from_checkpoint(train::resolve_model(a.get("model")));
}

// The picture of a movie's events: maximum projection over time, events circled (red: event, cyan: spot).
void write_events_picture(const fs::path& path, const xt::xtensor<float, 3>& frames, std::span<const post::event_object> events) {
  const std::size_t T = frames.shape()[0], H = frames.shape()[1], W = frames.shape()[2];
  xt::xtensor<float, 2> projection = xt::xtensor<float, 2>::from_shape({H, W});  // [H, W]
  std::copy(frames.data(), frames.data() + H * W, projection.data());
  for (std::size_t t = 1; t < T; ++t) {
    const float* f = frames.data() + t * H * W;
    for (std::size_t i = 0; i < H * W; ++i) projection.data()[i] = std::max(projection.data()[i], f[i]);
  }
  auto picture = io::grey_to_rgb(projection);  // [H, W, 3]
  for (const auto& e : events) io::draw_circle(picture, e.x, e.y, 6, e.label == 2 ? io::colours::red : io::colours::cyan, 1.5);
  io::write_png(path, picture);
}

int run_train(const std::vector<std::string>& args) {
  const arguments a(args, {"quiet"});
  a.allow_only({"out", "set", "epochs", "seed", "resume", "threads", "quiet", "max-epochs"});
  require(a.positional.size() == 1, "microcount", "events train needs one DATA_DIR (see microcount events train --help)");
  const fs::path data_dir = a.positional[0];
  train::event_hyperparameters hp;
  std::optional<fs::path> resume;
  std::optional<train::run_folder> run;
  if (a.has("resume")) {
    const fs::path r = a.get("resume");
    resume = fs::is_directory(r) ? train::run_layout{r / "TrainingRun"}.latest_model() : r;
    require(fs::is_regular_file(*resume), resume->string(), "no checkpoint to resume (latest_model.mcm)");
    const io::checkpoint_file file(*resume);
    hp = train::event_hyperparameters_from_json(file.read_header().metadata.value("hyperparameters", nlohmann::json::object()), {},
                                                resume->string());
    if (!a.has("out")) run = train::run_folder::open(resume->parent_path().parent_path().parent_path());
  }
  if (a.has("set")) hp = train::with_settings(hp, a.get("set"));
  if (a.has("epochs")) hp.epochs = a.integer("epochs", hp.epochs);
  if (a.has("seed")) hp.seed = static_cast<std::uint64_t>(a.integer("seed", 1));
  if (a.has("threads")) hp.threads = a.integer("threads", 0);
  train::validate(hp);
  set_threads(static_cast<int>(hp.threads));
  if (!run) {
    if (a.has("out")) {
      const fs::path root = a.get("out");
      std::error_code ec;
      fs::create_directories(root, ec);
      require(!ec, root.string(), "cannot create the run folder: " + ec.message());
      run = train::run_folder::open(root);
    } else {
      run = train::run_folder::create("runs", train::data_name_of(data_dir));
    }
  }
  const train::run_layout layout = run->training();
  if (!resume && fs::exists(layout.latest_model()))
    throw error(run->root().string(), "already holds a training run (resume it with --resume " + run->root().string() + ")");

  const bool quiet = a.has("quiet"), tty = isatty(2) && !quiet;
  train::event_training_options o;
  o.resume = resume;
  if (a.has("max-epochs")) o.max_epochs = a.integer("max-epochs", 0);
  if (tty) o.progress = [](const std::string& line) { std::cerr << "\r\033[K" << line << std::flush; };
  o.log = [&](const std::string& line) {
    if (tty) std::cerr << "\r\033[K";
    if (!quiet) std::cerr << line << "\n";
  };
  event_model p(hp);
  const auto s = train::run_event_training(p, data_dir, layout, o);
  nlohmann::json summary = {{"run", run->root().string()}, {"seconds", round3(s.seconds)}, {"epochs", s.fit.epochs.size()},
                            {"best_epoch", s.fit.best_epoch}, {"train_movies", s.train_movies},
                            {"validation_movies", s.validation_movies}, {"stop", s.fit.stop_reason}};
  if (!s.fit.epochs.empty() && std::isfinite(s.fit.epochs.back().val_f1)) summary["val_f1"] = round3(s.fit.epochs.back().val_f1);
  std::cout << summary.dump() << "\n";
  return 0;
}

int run_detect(const std::vector<std::string>& args) {
  const arguments a(args, {"quiet", "no-picture"});
  a.allow_only({"model", "out", "set", "bandwidth", "min-size", "threads", "quiet", "no-picture"});
  require(!a.positional.empty(), "microcount", "events detect needs at least one MOVIE (see microcount events detect --help)");
  require(a.has("out"), "microcount", "events detect needs --out DIR");
  if (a.has("threads")) set_threads(static_cast<int>(a.integer("threads", 0)));
  auto p = load_model(a);
  apply_detection_options(a, p);
  const fs::path out = a.get("out");
  std::error_code ec;
  fs::create_directories(out, ec);
  require(!ec && fs::is_directory(out), out.string(), "cannot create the output folder");
  const bool quiet = a.has("quiet"), tty = isatty(2) && !quiet;
  nlohmann::json movies = nlohmann::json::object();
  for (const fs::path movie_path : a.positional) {
    // Stage times: what the speed benchmark (docs/performance.md) reports.
    const auto t0 = std::chrono::steady_clock::now();
    io::movie mv = io::read_movie(movie_path);
    const double t_read = seconds_since(t0);
    auto t = std::chrono::steady_clock::now();
    xt::xtensor<float, 3> frames = mv.frames;  // [T, H, W] normalised copy; the raw one draws the picture
    data::normalize_frames(frames, p.hp().normalize_low, p.hp().normalize_high);
    const double t_normalize = seconds_since(t);
    t = std::chrono::steady_clock::now();
    const auto progress = [&, start = t](index_t done, index_t total) {
      if (!tty || done <= 0) return;
      const double spent = seconds_since(start);
      std::cerr << "\r\033[K" << movie_path.filename().string() << ": tile " << done << "/" << total << "  "
                << microcount::train::format_duration(spent / static_cast<double>(done) * static_cast<double>(total - done))
                << " left" << std::flush;
    };
    const auto labels = p.segment(frames, progress);  // [T, H, W]
    if (tty) std::cerr << "\r\033[K";
    const double t_network = seconds_since(t);
    t = std::chrono::steady_clock::now();
    const auto events = post::detect_events(labels, p.detection_options());
    const double t_cluster = seconds_since(t);
    t = std::chrono::steady_clock::now();
    const std::string stem = movie_path.stem().string();
    io::write_event_list_xml(out / (stem + ".xml"), events);
    io::write_event_list_csv(out / (stem + ".csv"), events);
    if (!a.has("no-picture")) write_events_picture(out / (stem + ".png"), mv.frames, events);
    const double t_write = seconds_since(t), total = seconds_since(t0);
    const auto& s = mv.frames.shape();
    movies[movie_path.filename().string()] = {
        {"events", events.size()},
        {"frames", s[0]}, {"height", s[1]}, {"width", s[2]},
        {"seconds", {{"read", round3(t_read)}, {"normalize", round3(t_normalize)}, {"network", round3(t_network)},
                     {"cluster", round3(t_cluster)}, {"write", round3(t_write)}, {"total", round3(total)}}}};
    if (!quiet)
      std::cerr << movie_path.filename().string() << ": " << events.size() << " events in " << train::format_duration(total) << "\n";
  }
  std::cout << nlohmann::json{{"movies", movies}, {"out", out.string()}, {"threads", max_threads()}}.dump() << "\n";
  return 0;
}

std::vector<std::size_t> size_thresholds(const arguments& a) {
  std::vector<std::size_t> out;
  std::stringstream text(a.get("sizes", "1,2,5,10,20,30,40,50"));
  for (std::string item; std::getline(text, item, ',');) {
    try {
      std::size_t used = 0;
      const long long v = std::stoll(item, &used);
      require(used == item.size() && v >= 0, "", "");
      out.push_back(static_cast<std::size_t>(v));
    } catch (const std::exception&) {
      throw error("microcount", "--sizes expects whole numbers >= 0 separated by commas, got '" + a.get("sizes") + "'");
    }
  }
  return out;
}

int run_evaluate(const std::vector<std::string>& args) {
  const arguments a(args, {"quiet"});
  a.allow_only({"model", "set", "bandwidth", "min-size", "distance", "sizes", "threads", "quiet", "out"});
  require(a.positional.size() == 1, "microcount", "events evaluate needs one DATA_DIR (see microcount events evaluate --help)");
  if (a.has("threads")) set_threads(static_cast<int>(a.integer("threads", 0)));
  const auto thresholds = size_thresholds(a);
  auto p = load_model(a);
  apply_detection_options(a, p);
  const auto t0 = std::chrono::steady_clock::now();
  const auto movies = train::load_annotated_movies(a.positional[0], p.hp());
  const auto e = train::evaluate_events(p, std::span<const train::annotated_movie>(movies));
  const eval::event_match_options match{.distance = p.hp().match_distance};
  nlohmann::json sweep = nlohmann::json::array();
  for (const auto& s : eval::sweep_cluster_size(e.truth, e.found, thresholds, match))
    sweep.push_back({{"min_size", s.threshold}, {"precision", round3(s.scores.precision)}, {"recall", round3(s.scores.recall)},
                     {"f1", round3(s.scores.f1)}});
  nlohmann::json line = scores_json(e.scores);
  line["distance"] = p.hp().match_distance;
  line["min_size"] = p.hp().min_size;
  line["movies"] = movies.size();
  line["events"] = e.truth.size();
  line["found"] = e.found.size();
  line["size_sweep"] = sweep;
  line["seconds"] = round3(seconds_since(t0));
  if (a.has("out")) train::write_json_atomically(fs::path(a.get("out")) / "event_results.json", line);
  std::cout << line.dump() << "\n";
  return 0;
}

// Inference frees and re-allocates the same large network buffers for every time chunk. By default glibc
// hands blocks above its mmap threshold back to the system and every reuse page-faults fresh zeroed
// pages: measured, a third of the detection time (sys 9.4 s of 30 s CPU on 200 frames of 400×300).
// Keeping freed memory in the heap for reuse removes that cost (sys 2.2 s); the price is a resident size
// that stays at its peak (about 3 GB for a 1000-frame 400×300 movie).
void keep_freed_memory() {
#if defined(__GLIBC__)
  mallopt(M_MMAP_THRESHOLD, INT_MAX);
  mallopt(M_TRIM_THRESHOLD, INT_MAX);
#endif
}

int run_events(const std::vector<std::string>& args) {
  keep_freed_memory();
  require(!args.empty(), "microcount", "events needs a sub-command: train, detect or evaluate (see microcount events --help)");
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  if (args[0] == "train") return run_train(rest);
  if (args[0] == "detect") return run_detect(rest);
  if (args[0] == "evaluate") return run_evaluate(rest);
  throw error("microcount", "unknown events sub-command '" + args[0] + "' (train, detect or evaluate)");
}

const register_command reg{
    {"events", "detect exocytosis events in TIRF movies (train, detect, evaluate)",
     "usage: microcount events train DIR [--out RUN_DIR] [--set key=value,…] [--epochs N] [--seed S]\n"
     "                                   [--resume RUN_DIR|CKPT] [--max-epochs N] [--threads N] [--quiet]\n"
     "       microcount events detect --model RUN_DIR|CKPT MOVIE… --out DIR [--bandwidth B] [--min-size N]\n"
     "                                   [--no-picture] [--threads N] [--quiet]\n"
     "       microcount events evaluate --model RUN_DIR|CKPT DIR [--distance D] [--min-size N] [--sizes 1,5,10,…]\n"
     "                                   [--out DIR] [--threads N]\n"
     "DIR holds <movie>.tif (or a folder of per-frame TIFFs) with <movie>.xml / <movie>.csv beside it.\n"
     "detect writes DIR/<movie>.xml and .csv (ExoDeepFinder object lists with cluster_size) and <movie>.png\n"
     "(events over the maximum projection); evaluate prints one JSON line (precision, recall, f1, size_sweep).\n"
     "--set keys: see docs/events.md (base_width, epochs, steps_per_epoch, patch_size, loss, bandwidth, …).",
     run_events}};

}  // namespace
}  // namespace microcount::cli
