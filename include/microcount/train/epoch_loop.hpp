#pragma once
// The loop every trainer of microcount shares (counting pipelines, event detection, Noise2Void): epochs
// of optimizer steps with a live progress line and an estimate of the time left; an error in a step or
// in validation names the epoch, the stage and the last good checkpoint; model selection on a metric
// (lower is better); best and latest checkpoints; a pause after `max_epochs`; early stopping.
//
//   train::run_epochs(result, pos, {.epochs = E, .steps_per_epoch = S, .patience = P}, options,
//       [&](std::int64_t epoch, std::int64_t step) { return step_result{loss, lr}; },     // one optimizer step
//       [&](epoch_record& rec) { ...validate...; return epoch_summary{metric, "  val F1 0.91"}; },
//       [&](bool improved) { if (improved) save best; save latest; });                    // after pos is updated
//
// Also the pieces around it: prepare_checkpoints (folder, names, stale temporaries), resume_training.
// What differs between trainers (data, losses, validation, what a checkpoint holds) stays in the
// callbacks; the bookkeeping that must behave the same everywhere (resume exactness, messages) is here.
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <limits>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "microcount/core/error.hpp"
#include "microcount/core/rng.hpp"
#include "microcount/io/atomic_file.hpp"
#include "microcount/io/checkpoint.hpp"
#include "microcount/train/history.hpp"

namespace microcount::train {

struct training_options {
  std::filesystem::path checkpoints{};                      // folder for best_model.mcm / latest_model.mcm ("" = none)
  std::optional<std::filesystem::path> resume{};            // continue from this checkpoint
  std::function<void(const std::string&)> log = nullptr;    // one line per event (epoch summary, checkpoint…)
  std::function<void(const std::string&)> progress = nullptr;  // the live progress line (overwritten in place)
  std::function<void(const epoch_record&, const history&)> on_epoch = nullptr;  // after every epoch (curves…)
  std::int64_t max_epochs = 0;                              // stop after this many epochs in this call (0: all)
};

struct training_result {
  history epochs;
  std::int64_t best_epoch = -1;          // 1-based; -1 without validation
  double best_metric = std::numeric_limits<double>::infinity();
  bool stopped_early = false;
  std::string stop_reason;               // "finished", "early stopping: …", "paused after N epochs"
  std::filesystem::path best_checkpoint, latest_checkpoint;
};

// "1 h 02 min", "3 min 05 s", "42 s".
inline std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const auto s = static_cast<long long>(seconds + 0.5);
  char buf[64];
  if (s >= 3600) std::snprintf(buf, sizeof buf, "%lld h %02lld min", s / 3600, (s % 3600) / 60);
  else if (s >= 60) std::snprintf(buf, sizeof buf, "%lld min %02lld s", s / 60, s % 60);
  else std::snprintf(buf, sizeof buf, "%lld s", s);
  return buf;
}

// Creates the checkpoint folder, names best_model.mcm / latest_model.mcm in `result`, and removes the
// temporary files a killed run left there. No folder: no checkpoints.
inline void prepare_checkpoints(training_result& result, const std::filesystem::path& folder) {
  if (folder.empty()) return;
  std::error_code ec;
  std::filesystem::create_directories(folder, ec);
  require(!ec && std::filesystem::is_directory(folder), folder.string(), "cannot create the checkpoint folder: " + ec.message());
  result.best_checkpoint = folder / "best_model.mcm";
  result.latest_checkpoint = folder / "latest_model.mcm";
  io::remove_stale_temporaries(folder);
}

// Continues a run from a latest_model.mcm: loads it into the model (any trainer's model: load(file) returns
// a header with has_optimizer and position), and restores the position, the generator, the history and
// the best epoch so far. What else a trainer keeps in pos.extra it restores itself.
template <class Model>
void resume_training(Model& model, const std::filesystem::path& file, training_result& result, io::training_position& pos,
                     rng& r, const training_options& o) {
  const auto header = model.load(file);
  require(header.has_optimizer, file.string(), "has no optimizer state: resume from a latest_model.mcm checkpoint");
  pos = header.position;
  r.set_state(pos.rng_state);
  result.epochs = history_from_json(pos.extra.value("history", nlohmann::json::array()));
  result.best_epoch = pos.best_epoch;
  result.best_metric = pos.best_metric;
  if (o.log) o.log("resumed from " + file.string() + " after epoch " + std::to_string(pos.epoch) + " (step " + std::to_string(pos.step) + ")");
}

struct loop_settings {
  std::int64_t epochs = 1;
  std::int64_t steps_per_epoch = 1;
  std::int64_t patience = 0;                   // epochs without a better metric before stopping (0: off)
  std::string metric = "validation MAE";       // what the early-stopping message names
};

struct step_result {
  double loss = 0;
  double learning_rate = std::numeric_limits<double>::quiet_NaN();  // shown in the progress line when known
};

struct epoch_summary {
  double metric = std::numeric_limits<double>::quiet_NaN();  // model selection, lower is better
  std::string text;                                          // appended to the epoch line ("  val F1 0.912")
};

// Runs epochs pos.epoch … settings.epochs − 1. `step(epoch, step_in_epoch)` takes one optimizer step and
// returns its loss; `end_epoch(record)` validates (filling the record's validation fields and learning
// rate) and returns the selection metric; `save(improved)` writes checkpoints after pos (epoch, best) is
// updated — the caller adds its generator state and extras to pos there.
template <class Step, class EndEpoch, class Save>
void run_epochs(training_result& result, io::training_position& pos, const loop_settings& s, const training_options& o,
                Step&& step, EndEpoch&& end_epoch, Save&& save) {
  namespace fs = std::filesystem;
  const auto say = [&](const std::string& line) { if (o.log) o.log(line); };
  // What stops a run names the epoch, the stage and the checkpoint to go back to.
  const auto stopped = [&](std::int64_t epoch, const std::string& stage, const error& e) {
    const std::string last = result.latest_checkpoint.empty() || !fs::exists(result.latest_checkpoint)
                                 ? "none" : result.latest_checkpoint.string();
    return error("training", "epoch " + std::to_string(epoch + 1) + ", " + stage + ": " + e.what() +
                                 "; last good checkpoint: " + last);
  };
  const auto run_start = std::chrono::steady_clock::now();
  const std::int64_t first_epoch = pos.epoch;
  std::int64_t epochs_this_call = 0;
  std::int64_t since_best = result.best_epoch > 0 ? pos.epoch - result.best_epoch : 0;
  result.stop_reason = "finished";
  for (std::int64_t epoch = pos.epoch; epoch < s.epochs; ++epoch) {
    if (o.max_epochs > 0 && epochs_this_call >= o.max_epochs) {
      result.stop_reason = "paused after " + std::to_string(epochs_this_call) + " epoch(s)";
      break;
    }
    const auto epoch_start = std::chrono::steady_clock::now();
    double loss_sum = 0;
    for (std::int64_t k = 0; k < s.steps_per_epoch; ++k) {
      step_result r;
      try {
        r = step(epoch, k);
      } catch (const error& e) {
        throw stopped(epoch, "step " + std::to_string(pos.step + 1), e);
      }
      loss_sum += r.loss;
      ++pos.step;
      if (o.progress) {
        const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - run_start).count();
        const double done = static_cast<double>((epoch - first_epoch) * s.steps_per_epoch + k + 1);
        const double left = static_cast<double>((s.epochs - first_epoch) * s.steps_per_epoch) - done;
        char lr[48] = "";
        if (std::isfinite(r.learning_rate)) std::snprintf(lr, sizeof lr, "  lr %.2g", r.learning_rate);
        char line[256];
        std::snprintf(line, sizeof line, "epoch %lld/%lld  step %lld/%lld  loss %.4g%s  %s left", static_cast<long long>(epoch + 1),
                      static_cast<long long>(s.epochs), static_cast<long long>(k + 1), static_cast<long long>(s.steps_per_epoch),
                      loss_sum / static_cast<double>(k + 1), lr, format_duration(elapsed / done * left).c_str());
        o.progress(line);
      }
    }
    pos.epoch = epoch + 1;
    epoch_record rec;
    rec.epoch = pos.epoch;
    rec.train_loss = loss_sum / static_cast<double>(std::max<std::int64_t>(1, s.steps_per_epoch));
    // A diverged network can pass its last training step and fail first in validation (non-finite maps).
    epoch_summary summary;
    try {
      summary = end_epoch(rec);
    } catch (const error& e) {
      throw stopped(epoch, "validation", e);
    }
    rec.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - epoch_start).count();
    result.epochs.push_back(rec);
    ++epochs_this_call;

    // Model selection: the metric, or the training loss when there is none.
    const double metric = std::isfinite(summary.metric) ? summary.metric : rec.train_loss;
    const bool improved = metric < result.best_metric;
    if (improved) {
      result.best_metric = metric;
      result.best_epoch = pos.epoch;
      since_best = 0;
    } else {
      ++since_best;
    }
    pos.best_metric = result.best_metric;
    pos.best_epoch = result.best_epoch;
    save(improved);
    char line[160];
    std::snprintf(line, sizeof line, "epoch %lld/%lld  loss %.5g", static_cast<long long>(pos.epoch), static_cast<long long>(s.epochs),
                  rec.train_loss);
    char tail[96];
    std::snprintf(tail, sizeof tail, "  lr %.3g  %.1f s%s", rec.learning_rate, rec.seconds, improved ? "  *best" : "");
    say(line + summary.text + tail);
    if (o.on_epoch) o.on_epoch(rec, result.epochs);
    if (s.patience > 0 && since_best >= s.patience) {
      result.stopped_early = true;
      result.stop_reason = "early stopping: no better " + s.metric + " for " + std::to_string(s.patience) + " epochs";
      say(result.stop_reason);
      break;
    }
  }
}

}  // namespace microcount::train
