#pragma once
// Grid search over hyperparameters, resumable, one folder per sweep.
//
//   grid   {"lr": [1e-3, 3e-4], "target.sigma": [1.5, 2, 3]}  — any keys; "a.b" sets base["a"]["b"].
//   order  the cartesian product with the keys in alphabetical order (nlohmann::json sorts object keys)
//          and the LAST key varying fastest, values in list order — nested loops, like
//          itertools.product. Above: (lr 1e-3, σ 1.5), (1e-3, 2), (1e-3, 3), (3e-4, 1.5), …
//          Sweep i is that i-th combination (0-based), so a folder keeps its meaning across resumes.
//
//   root/Sweep_<i>/sweep_parameters.json   the full parameters of sweep i (base with the overrides)
//   root/Sweep_<i>/result.json             written atomically when sweep i ends:
//                                          {"index", "overrides", "status": "done"|"failed", "metric", "seconds", "error"}
//   root/tuning_results.json               every sweep's status and metric, and the best; rewritten after each sweep
//   root/best_sweep_parameters.json        the best sweep's full parameters (usable as a training config)
//
// The callback trains and validates one sweep in its folder (a TrainingRun-like folder) and returns a
// metric where lower is better (e.g. validation MAE).
// Resume: a sweep whose result.json says "done" is not rerun, its metric is read back; a sweep folder
// without result.json (interrupted) is run again from the start (the callback may resume from its own
// checkpoint there); a "failed" sweep is run again unless retry_failed is false. A Sweep_<i> whose
// sweep_parameters.json differs from what sweep i is now (grid or base changed) is an error: a different
// grid belongs in a new folder.
// Failures: a callback that throws microcount::error, or returns a non-finite metric, marks the sweep
// "failed" with the message and the search goes on. Other exceptions (bugs, out of memory) propagate.
#include <chrono>
#include <cmath>
#include <cstddef>
#include <filesystem>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "microcount/core/error.hpp"
#include "microcount/train/run_folder.hpp"

namespace microcount::train {

using sweep_function = std::function<double(const nlohmann::json& parameters, const std::filesystem::path& sweep_dir)>;

struct tuning_progress {
  std::size_t sweep = 0;           // index of the sweep about to run (0-based), or just skipped
  std::size_t sweeps = 0;          // in the grid
  std::size_t finished = 0;        // sweeps with a result so far (this session and earlier ones)
  bool reused = false;             // the sweep had a result from an earlier session and is skipped
  double elapsed_seconds = 0;      // this session
  double eta_seconds = std::numeric_limits<double>::quiet_NaN();  // NaN until one sweep has run here
};

struct tuner_options {
  std::function<void(const tuning_progress&)> on_progress;  // called before each sweep (and for skipped ones)
  bool retry_failed = true;  // rerun sweeps whose result.json says "failed"
};

struct sweep_result {
  std::size_t index = 0;
  nlohmann::json overrides;   // {"lr": 1e-3, "target.sigma": 2}: the grid values of this sweep
  nlohmann::json parameters;  // base with the overrides applied
  bool done = false;          // false: failed
  double metric = std::numeric_limits<double>::quiet_NaN();
  double seconds = 0;
  std::string error;          // the failure's message
  bool reused = false;        // read back from an earlier session
};

struct tuning_result {
  std::vector<sweep_result> sweeps;  // [grid size], by index
  std::optional<std::size_t> best;   // index of the lowest metric (first on ties); none when every sweep failed
};

namespace tuner_detail {

inline constexpr std::size_t max_sweeps = 100000;

inline std::vector<std::string> split_key(const std::string& key) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  for (;;) {
    const std::size_t dot = key.find('.', start);
    parts.push_back(key.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  for (const auto& p : parts)
    if (p.empty()) throw error("grid", "key '" + key + "' has an empty part");
  return parts;
}

inline double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

inline nlohmann::json number_or_null(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }

inline nlohmann::json result_json(const sweep_result& s) {
  return {{"index", s.index},
          {"overrides", s.overrides},
          {"status", s.done ? "done" : "failed"},
          {"metric", number_or_null(s.metric)},
          {"seconds", s.seconds},
          {"error", s.error}};
}

}  // namespace tuner_detail

// The grid's combinations in sweep order (see the top of this file): [{"key": value, …}, …].
// An empty grid {} is one sweep with no overrides. Every value must be a non-empty list.
inline std::vector<nlohmann::json> grid_combinations(const nlohmann::json& grid) {
  if (!grid.is_object()) throw error("grid", "must be a JSON object of lists, e.g. {\"lr\": [0.001, 0.0003]}");
  std::vector<std::string> keys;
  std::vector<const nlohmann::json*> values;
  std::size_t total = 1;
  for (auto it = grid.begin(); it != grid.end(); ++it) {
    if (!it.value().is_array() || it.value().empty())
      throw error("grid", "'" + it.key() + "' must be a non-empty list of values");
    tuner_detail::split_key(it.key());  // validates
    keys.push_back(it.key());
    values.push_back(&it.value());
    if (total > tuner_detail::max_sweeps / it.value().size())
      throw error("grid", "more than " + std::to_string(tuner_detail::max_sweeps) + " combinations");
    total *= it.value().size();
  }
  std::vector<nlohmann::json> out;
  out.reserve(total);
  for (std::size_t i = 0; i < total; ++i) {
    nlohmann::json combination = nlohmann::json::object();
    std::size_t rest = i;  // mixed-radix digits, the last key least significant
    for (std::size_t k = keys.size(); k-- > 0;) {
      const std::size_t n = values[k]->size();
      combination[keys[k]] = (*values[k])[rest % n];
      rest /= n;
    }
    out.push_back(std::move(combination));
  }
  return out;
}

// base with every override applied; "a.b" sets base["a"]["b"] (creating "a" when absent).
inline nlohmann::json apply_overrides(nlohmann::json base, const nlohmann::json& overrides) {
  if (!base.is_object()) throw error("hyperparameters", "the base parameters must be a JSON object");
  for (auto it = overrides.begin(); it != overrides.end(); ++it) {
    const auto parts = tuner_detail::split_key(it.key());
    nlohmann::json* node = &base;
    for (std::size_t p = 0; p + 1 < parts.size(); ++p) {
      nlohmann::json& child = (*node)[parts[p]];
      if (child.is_null()) child = nlohmann::json::object();
      if (!child.is_object())
        throw error("grid", "'" + it.key() + "': '" + parts[p] + "' is a value in the base parameters, not an object");
      node = &child;
    }
    (*node)[parts.back()] = it.value();
  }
  return base;
}

// Runs (or resumes) the grid search in `root` (created when missing). See the top of this file.
inline tuning_result run_grid_search(const std::filesystem::path& root, const nlohmann::json& base,
                                     const nlohmann::json& grid, const sweep_function& run_sweep,
                                     const tuner_options& options = {}) {
  namespace fs = std::filesystem;
  if (!run_sweep) throw error("grid search", "no sweep function given");
  const auto combinations = grid_combinations(grid);
  std::error_code ec;
  fs::create_directories(root, ec);
  if (ec || !fs::is_directory(root)) throw error(root.string(), "cannot create the tuning folder");
  const run_folder folder = run_folder::open(root);

  tuning_result result;
  result.sweeps.resize(combinations.size());
  for (std::size_t i = 0; i < combinations.size(); ++i) {
    auto& s = result.sweeps[i];
    s.index = i;
    s.overrides = combinations[i];
    s.parameters = apply_overrides(base, combinations[i]);
  }
  std::vector<char> has_result(combinations.size(), 0);  // [sweeps]

  const auto write_summary = [&]() {
    nlohmann::json table = nlohmann::json::array();
    for (std::size_t i = 0; i < result.sweeps.size(); ++i) {
      const auto& s = result.sweeps[i];
      nlohmann::json row = {{"index", i}, {"folder", folder.sweep(i).dir.filename().string()}, {"overrides", s.overrides}};
      row["status"] = !has_result[i] ? "pending" : s.done ? "done" : "failed";
      row["metric"] = tuner_detail::number_or_null(s.metric);
      row["seconds"] = s.seconds;
      if (has_result[i] && !s.done) row["error"] = s.error;
      table.push_back(std::move(row));
    }
    nlohmann::json best = nullptr;
    if (result.best) {
      const auto& b = result.sweeps[*result.best];
      best = {{"index", b.index}, {"metric", b.metric}, {"overrides", b.overrides}};
    }
    write_json_atomically(folder.tuning_results_json(),
                          {{"metric", "lower is better"}, {"grid", grid}, {"base", base}, {"best", best}, {"sweeps", table}});
    if (result.best) write_json_atomically(folder.best_sweep_parameters_json(), result.sweeps[*result.best].parameters);
  };
  const auto update_best = [&](std::size_t i) {
    const auto& s = result.sweeps[i];
    if (s.done && (!result.best || s.metric < result.sweeps[*result.best].metric ||
                   (s.metric == result.sweeps[*result.best].metric && i < *result.best)))
      result.best = i;
  };

  // Earlier sessions: check every existing folder belongs to this grid and read the finished results.
  std::size_t finished = 0;
  for (std::size_t i = 0; i < combinations.size(); ++i) {
    const auto layout = folder.sweep(i);
    auto& s = result.sweeps[i];
    if (fs::exists(layout.sweep_parameters_json()) && read_json(layout.sweep_parameters_json()) != s.parameters)
      throw error(layout.sweep_parameters_json().string(),
                  "was written for other parameters (the grid or the base changed); tune into a new folder");
    if (!fs::exists(layout.result_json())) continue;
    const auto r = read_json(layout.result_json());
    const std::string where = layout.result_json().string();
    if (!r.is_object() || !r.contains("status") || !r["status"].is_string()) throw error(where, "no \"status\"");
    const std::string status = r["status"].get<std::string>();
    if (status == "done") {
      if (!r.contains("metric") || !r["metric"].is_number()) throw error(where, "a finished sweep without a \"metric\"");
      s.done = true;
      s.metric = r["metric"].get<double>();
    } else if (status == "failed") {
      if (options.retry_failed) continue;
      s.error = r.value("error", std::string());
    } else {
      throw error(where, "unknown status '" + status + "'");
    }
    s.seconds = r.contains("seconds") && r["seconds"].is_number() ? r["seconds"].get<double>() : 0.0;
    s.reused = true;
    has_result[i] = 1;
    ++finished;
    update_best(i);
  }

  const auto start = std::chrono::steady_clock::now();
  std::size_t run_here = 0;
  double seconds_here = 0;
  const std::size_t to_run = combinations.size() - finished;
  for (std::size_t i = 0; i < combinations.size(); ++i) {
    auto& s = result.sweeps[i];
    tuning_progress progress;
    progress.sweep = i;
    progress.sweeps = combinations.size();
    progress.finished = finished;
    progress.reused = has_result[i] != 0;
    progress.elapsed_seconds = tuner_detail::seconds_since(start);
    if (run_here > 0) progress.eta_seconds = seconds_here / static_cast<double>(run_here) * static_cast<double>(to_run - run_here);
    if (options.on_progress) options.on_progress(progress);
    if (has_result[i]) continue;

    const auto layout = folder.sweep(i);
    fs::create_directories(layout.dir, ec);
    if (ec || !fs::is_directory(layout.dir)) throw error(layout.dir.string(), "cannot create the sweep folder");
    std::filesystem::remove(layout.result_json(), ec);  // a stale "failed" result being retried
    write_json_atomically(layout.sweep_parameters_json(), s.parameters);

    const auto sweep_start = std::chrono::steady_clock::now();
    s.done = false;
    s.error.clear();
    s.metric = std::numeric_limits<double>::quiet_NaN();
    try {
      const double metric = run_sweep(s.parameters, layout.dir);
      if (std::isfinite(metric)) {
        s.done = true;
        s.metric = metric;
      } else {
        s.error = "the sweep's metric is not a finite number";
      }
    } catch (const microcount::error& e) {
      s.error = e.what();
    }
    s.seconds = tuner_detail::seconds_since(sweep_start);
    write_json_atomically(layout.result_json(), tuner_detail::result_json(s));
    has_result[i] = 1;
    ++finished;
    ++run_here;
    seconds_here += s.seconds;
    update_best(i);
    write_summary();
  }
  write_summary();  // also when every sweep was read back
  return result;
}

}  // namespace microcount::train
