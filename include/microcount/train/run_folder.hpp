#pragma once
// The run folder: where a training run, an evaluation and a grid search put everything they write.
//
//   runs/<data>-<YYYY-mm-dd_HH-MM-SS>/          run_folder::root()
//     TrainingRun/                              run_folder::training()   (a run_layout)
//       hyperparameters.json  log.txt
//       checkpoints/best_model.mcm  checkpoints/latest_model.mcm
//       plots/training_curves.png  plots/training_curves.svg
//       samples/*.png  test_results.json  test_results.txt
//     Evaluate/                                 run_folder::evaluation() (a run_layout)
//     Sweep_<i>/                                run_folder::sweep(i)     (a run_layout, plus the tuner's files)
//
// Every file is written whole and atomically (io::write_atomically) except log.txt, which is appended
// line by line (run_log): a log that is rewritten at each line would cost O(n²) and lose the history
// on a crash in the middle of a rewrite; an appended line that a crash cuts short loses only itself.
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <memory>
#include <mutex>
#include <ostream>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "microcount/core/error.hpp"
#include "microcount/io/atomic_file.hpp"

namespace microcount::train {

namespace fs = std::filesystem;

// The files of one training-like folder (TrainingRun/, Evaluate/ or Sweep_<i>/). Pure path arithmetic:
// nothing is created until create_directories() or a writer is called.
struct run_layout {
  fs::path dir;

  [[nodiscard]] fs::path hyperparameters_json() const { return dir / "hyperparameters.json"; }
  [[nodiscard]] fs::path log_txt() const { return dir / "log.txt"; }
  [[nodiscard]] fs::path checkpoints_dir() const { return dir / "checkpoints"; }
  [[nodiscard]] fs::path best_model() const { return checkpoints_dir() / "best_model.mcm"; }
  [[nodiscard]] fs::path latest_model() const { return checkpoints_dir() / "latest_model.mcm"; }
  [[nodiscard]] fs::path plots_dir() const { return dir / "plots"; }
  // Without extension: write_training_curves adds .png and .svg.
  [[nodiscard]] fs::path training_curves() const { return plots_dir() / "training_curves"; }
  [[nodiscard]] fs::path samples_dir() const { return dir / "samples"; }
  // samples/<name>.png
  [[nodiscard]] fs::path sample(std::string_view name) const { return samples_dir() / (std::string(name) + ".png"); }
  [[nodiscard]] fs::path test_results_json() const { return dir / "test_results.json"; }
  [[nodiscard]] fs::path test_results_txt() const { return dir / "test_results.txt"; }
  // The tuner's files inside Sweep_<i>/.
  [[nodiscard]] fs::path sweep_parameters_json() const { return dir / "sweep_parameters.json"; }
  [[nodiscard]] fs::path result_json() const { return dir / "result.json"; }

  // Creates dir, checkpoints/, plots/ and samples/ (existing ones are kept).
  void create_directories() const {
    for (const auto& d : {dir, checkpoints_dir(), plots_dir(), samples_dir()}) {
      std::error_code ec;
      fs::create_directories(d, ec);
      if (ec || !fs::is_directory(d)) throw error(d.string(), "cannot create folder: " + (ec ? ec.message() : "not a folder"));
    }
  }
};

namespace run_folder_detail {

// A file-name-safe version of a data set name: letters, digits, '.', '-', '_' kept, the rest '_'.
inline std::string safe_name(std::string_view name) {
  std::string out;
  for (const char c : name) {
    const bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                      c == '-' || c == '_';
    out.push_back(keep ? c : '_');
  }
  while (!out.empty() && out.front() == '.') out.erase(out.begin());  // no hidden folders, no ".."
  return out.empty() ? std::string("data") : out;
}

// Local time formatted by strftime.
inline std::string local_time_text(std::chrono::system_clock::time_point time, const char* format) {
  const std::time_t t = std::chrono::system_clock::to_time_t(time);
  std::tm parts{};
  localtime_r(&t, &parts);
  char text[64];
  const std::size_t n = std::strftime(text, sizeof text, format, &parts);
  return std::string(text, n);
}

}  // namespace run_folder_detail

// The name a run folder gets for a data folder: its last non-empty path component, made file-name safe
// ("../shared/data/vgg-cells/" → "vgg-cells").
inline std::string data_name_of(const fs::path& data_dir) {
  fs::path p = fs::absolute(data_dir).lexically_normal();
  if (!p.has_filename()) p = p.parent_path();  // a trailing '/'
  return run_folder_detail::safe_name(p.filename().string());
}

class run_folder {
 public:
  // Makes a new, empty run folder parent/<data>-<YYYY-mm-dd_HH-MM-SS> (local time). An existing folder is
  // never reused: when the name is taken (two runs started in the same second), "_2", "_3", … is
  // appended. The name is claimed with one mkdir, so concurrent runs cannot get the same folder.
  static run_folder create(const fs::path& parent, std::string_view data_name,
                           std::chrono::system_clock::time_point time = std::chrono::system_clock::now()) {
    std::error_code ec;
    fs::create_directories(parent, ec);
    if (ec || !fs::is_directory(parent))
      throw error(parent.string(), "cannot create the runs folder: " + (ec ? ec.message() : "not a folder"));
    const std::string base =
        run_folder_detail::safe_name(data_name) + "-" + run_folder_detail::local_time_text(time, "%Y-%m-%d_%H-%M-%S");
    for (int attempt = 1; attempt <= 10000; ++attempt) {
      const fs::path root = parent / (attempt == 1 ? base : base + "_" + std::to_string(attempt));
      if (fs::create_directory(root, ec)) return run_folder(root);
      if (ec && ec != std::errc::file_exists)  // taken (by a folder or a file): try the next suffix
        throw error(root.string(), "cannot create the run folder: " + ec.message());
    }
    throw error((parent / base).string(), "cannot find a free run folder name (10000 taken)");
  }

  // An existing run folder (to resume a run, evaluate into it or continue a grid search).
  static run_folder open(const fs::path& root) {
    std::error_code ec;
    if (!fs::is_directory(root, ec)) throw error(root.string(), "not a run folder (no such folder)");
    return run_folder(root);
  }

  [[nodiscard]] const fs::path& root() const { return root_; }
  [[nodiscard]] run_layout training() const { return {root_ / "TrainingRun"}; }
  [[nodiscard]] run_layout evaluation() const { return {root_ / "Evaluate"}; }
  [[nodiscard]] run_layout sweep(std::size_t index) const { return {root_ / ("Sweep_" + std::to_string(index))}; }
  // Grid-search summary files at the root.
  [[nodiscard]] fs::path tuning_results_json() const { return root_ / "tuning_results.json"; }
  [[nodiscard]] fs::path best_sweep_parameters_json() const { return root_ / "best_sweep_parameters.json"; }

  // The folders themselves.
  [[nodiscard]] fs::path training_dir() const { return training().dir; }
  [[nodiscard]] fs::path evaluate_dir() const { return evaluation().dir; }
  [[nodiscard]] fs::path sweep_dir(std::size_t index) const { return sweep(index).dir; }

 private:
  explicit run_folder(fs::path root) : root_(std::move(root)) {}
  fs::path root_;
};

// The checkpoint a user means by `path` (for `--model RUN_DIR|CKPT`): a file is itself; a run folder
// gives TrainingRun/checkpoints/best_model.mcm; a TrainingRun-like folder (TrainingRun/, Sweep_<i>/)
// gives its checkpoints/best_model.mcm. Otherwise a microcount::error naming the path.
inline fs::path resolve_model(const fs::path& path) {
  std::error_code ec;
  if (fs::is_regular_file(path, ec)) return path;
  if (!fs::is_directory(path, ec)) throw error(path.string(), "no such model file or run folder");
  for (const auto& candidate : {run_layout{path / "TrainingRun"}.best_model(), run_layout{path}.best_model()})
    if (fs::is_regular_file(candidate, ec)) return candidate;
  throw error(path.string(), "no checkpoint found (looked for TrainingRun/checkpoints/best_model.mcm and "
                             "checkpoints/best_model.mcm)");
}

// Pretty JSON (2-space indent, trailing newline), written atomically.
inline void write_json_atomically(const fs::path& path, const nlohmann::json& value) {
  io::write_text_atomically(path, value.dump(2) + "\n");
}

// Parses a JSON file; a missing file or bad JSON is a microcount::error naming the file.
inline nlohmann::json read_json(const fs::path& path) {
  const std::string text = io::read_text(path);
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw error(path.string(), std::string("not valid JSON: ") + e.what());
  }
}

// log.txt: one line per event, "YYYY-mm-dd HH:MM:SS  message" (local time), appended and flushed line by
// line so the file is readable (tail -f) while the run goes on, and a killed run keeps every finished
// line. A resumed run appends to the same file. A message with several lines gets the stamp on each.
// Thread-safe. Optionally echoes every line (with its stamp) to a stream, e.g. std::cout.
class run_log {
 public:
  explicit run_log(const fs::path& file, std::ostream* echo = nullptr) : path_(file), echo_(echo) {
    std::error_code ec;
    if (file.has_parent_path()) fs::create_directories(file.parent_path(), ec);
    if (ec) throw error(file.parent_path().string(), "cannot create folder: " + ec.message());
    file_.reset(std::fopen(file.c_str(), "ab"));
    if (!file_) throw error(file.string(), std::string("cannot open the log for appending: ") + std::strerror(errno));
  }

  void write(std::string_view message) {
    const std::string stamp = run_folder_detail::local_time_text(std::chrono::system_clock::now(), "%Y-%m-%d %H:%M:%S");
    std::string text;
    std::size_t start = 0;
    for (;;) {  // one stamped line per line of the message; an empty message still gives a line
      const std::size_t end = message.find('\n', start);
      text += stamp;
      text += "  ";
      text += message.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
      text += '\n';
      if (end == std::string_view::npos || end + 1 == message.size()) break;
      start = end + 1;
    }
    std::lock_guard lock(mutex_);
    const std::size_t n = std::fwrite(text.data(), 1, text.size(), file_.get());
    if (n != text.size() || std::fflush(file_.get()) != 0)
      throw error(path_.string(), std::string("cannot append to the log (disk full?): ") + std::strerror(errno));
    if (echo_) *echo_ << text << std::flush;
  }
  run_log& operator<<(std::string_view message) {
    write(message);
    return *this;
  }

  [[nodiscard]] const fs::path& path() const { return path_; }

 private:
  struct file_closer {
    void operator()(std::FILE* f) const { std::fclose(f); }
  };
  fs::path path_;
  std::ostream* echo_ = nullptr;
  std::unique_ptr<std::FILE, file_closer> file_;
  std::mutex mutex_;
};

}  // namespace microcount::train
