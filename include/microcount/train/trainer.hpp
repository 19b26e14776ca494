#pragma once
// The training loop of a pipeline: epochs of random augmented crops, validation on whole images after
// every epoch, best and latest checkpoints, early stopping, resume.
//
//   train::training_options o{.checkpoints = run / "checkpoints", .log = [&](auto& line) {...}};
//   auto result = train::fit(pipeline, dataset, split, o);
//
// One epoch = ceil(train images × patches_per_image / batch) optimizer steps, each on `batch` crops of
// patch × patch pixels drawn from the training images (percentile-normalised once per whole image,
// then cropped, rescaled, flipped, intensity-jittered). The learning rate follows hp.schedule per step.
// Validation predicts every validation image whole (tiled), reads counts and points, and scores
// mean-over-classes count MAE (the model-selection metric, lower is better), loss and detection F1.
//
// Reproducible: every random draw comes from one generator whose state is stored in each checkpoint
// with the epoch, optimizer, schedule and history; resuming from `latest_model.mcm` replays the
// remaining epochs exactly as the uninterrupted run would (same seed, same thread count).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "microcount/core/error.hpp"
#include "microcount/core/rng.hpp"
#include "microcount/data/augment.hpp"
#include "microcount/data/batch.hpp"
#include "microcount/data/dataset.hpp"
#include "microcount/data/normalize.hpp"
#include "microcount/data/patches.hpp"
#include "microcount/data/split.hpp"
#include "microcount/eval/matching.hpp"
#include "microcount/io/atomic_file.hpp"
#include "microcount/eval/metrics.hpp"
#include "microcount/nn/schedule.hpp"
#include "microcount/train/epoch_loop.hpp"
#include "microcount/train/history.hpp"
#include "microcount/train/pipeline.hpp"

namespace microcount::train {

// Validation figures of one pass over whole images.
struct validation_scores {
  double loss = not_measured;
  double mae = not_measured;  // mean over classes of the per-class count MAE
  double f1 = not_measured;
};

// Scores a pipeline on whole, normalised samples (points in the samples are the truth).
template <class P>
validation_scores validate_on(P& p, const std::vector<data::sample>& samples) {
  validation_scores v;
  if (samples.empty()) return v;
  const auto k = static_cast<std::size_t>(p.classes());
  std::vector<std::vector<double>> truth(k), predicted(k);
  eval::detection_counts det;
  bool has_points = false;
  double loss = 0;
  for (const auto& s : samples) {
    loss += p.loss_on(s);
    const image_prediction r = p.predict_normalized(s);
    for (std::size_t c = 0; c < k; ++c) {
      truth[c].push_back(static_cast<double>(std::count_if(s.points.begin(), s.points.end(),
                                                           [&](const io::point& q) { return q.label == static_cast<int>(c); })));
      predicted[c].push_back(r.counts[c]);
    }
    if constexpr (P::head_type::dense) {
      has_points = true;
      eval::match_options by_radius;  // (not a designated initializer: nvcc's front end rejects it here)
      by_radius.radius = p.hp().match_radius;
      const auto m = eval::match_points(s.points, r.points, by_radius);
      det.true_positives += m.pairs.size();
      det.false_negatives += m.unmatched_truth.size();
      det.false_positives += m.unmatched_predicted.size();
    }
  }
  v.loss = loss / static_cast<double>(samples.size());
  double mae = 0;
  for (std::size_t c = 0; c < k; ++c) mae += eval::count_errors_of(predicted[c], truth[c]).mae;
  v.mae = mae / static_cast<double>(k);
  if (has_points) v.f1 = det.f1();
  return v;
}

// Count calibration: per class, the factor that makes the summed predicted count of the validation
// images equal the summed true count (the best model, uncalibrated). Systematic under- or over-counting
// (a few percent is common for density maps) is then removed from every later prediction. A class
// with fewer than 50 validation points keeps factor 1; factors are kept within [0.8, 1.25].
template <class P>
std::vector<double> fit_count_scale(P& p, const std::vector<data::sample>& validation) {
  const auto k = static_cast<std::size_t>(p.classes());
  std::vector<double> truth(k, 0.0), predicted(k, 0.0);
  p.set_count_scale({});
  for (const auto& s : validation) {
    const auto r = p.predict_normalized(s);
    for (const auto& q : s.points)
      if (q.label >= 0 && static_cast<std::size_t>(q.label) < k) truth[static_cast<std::size_t>(q.label)] += 1;
    for (std::size_t c = 0; c < k; ++c) predicted[c] += r.counts[c];
  }
  std::vector<double> scale(k, 1.0);
  for (std::size_t c = 0; c < k; ++c)
    if (truth[c] >= 50 && predicted[c] > 0) scale[c] = std::clamp(truth[c] / predicted[c], 0.8, 1.25);
  return scale;
}

template <class P>
training_result fit(P& p, const data::dataset& ds, const data::split_indices& split, const training_options& o = {}) {
  const hyperparameters& hp = p.hp();
  require(!split.train.empty(), "training", "no training images");
  namespace fs = std::filesystem;
  const auto say = [&](const std::string& line) { if (o.log) o.log(line); };

  // ---- data views ------------------------------------------------------------------------------
  auto train_images = data::cached(data::normalize_percentile(data::subset(ds, split.train), hp.normalize_low, hp.normalize_high));
  const auto side = static_cast<std::size_t>(hp.patch);
  // The regression head learns from count vectors of crops; it may want more crops per image than a map head.
  const auto per_image = static_cast<std::size_t>(!P::head_type::dense && hp.regression_crops > 0 ? hp.regression_crops
                                                                                                  : hp.patches_per_image);
  const data::intensity_options jitter{{-hp.brightness, hp.brightness}, {1 - hp.contrast, 1 + hp.contrast}, {1, 1}};
  const bool jitter_on = hp.brightness > 0 || hp.contrast > 0;
  auto crops = data::random_scaled_patches(train_images, side, side, hp.scale_min, hp.scale_max, per_image);
  // Flips and intensity are cheap and applied per draw; a function keeps the view type fixed.
  const auto draw = [&](std::size_t i, rng& r) {
    data::sample s = crops.get(i, r);
    if (hp.flips) s = data::dihedral(s, static_cast<int>(r.below(8)));
    if (jitter_on) {
      const double b = r.uniform(jitter.brightness.lo, jitter.brightness.hi);
      const double c = r.uniform(jitter.contrast.lo, jitter.contrast.hi);
      data::adjust_intensity(s, b, c, 1.0);
    }
    return s;
  };
  std::vector<data::sample> val_samples;
  {
    auto val = data::normalize_percentile(data::subset(ds, split.validation), hp.normalize_low, hp.normalize_high);
    rng unused(0);
    for (std::size_t i = 0; i < val.size(); ++i) val_samples.push_back(val.get(i, unused));
  }

  const std::int64_t steps_per_epoch =
      std::max<std::int64_t>(1, static_cast<std::int64_t>((crops.size() + static_cast<std::size_t>(hp.batch) - 1) / static_cast<std::size_t>(hp.batch)));
  require(crops.size() > 0, "training", "no training crops");
  const std::int64_t total_steps = steps_per_epoch * hp.epochs;

  // ---- state (possibly resumed) ------------------------------------------------------------------
  training_result result;
  rng r(hp.seed);
  io::training_position pos;
  nn::reduce_lr_on_plateau plateau(hp.lr, {.factor = 0.5, .patience = 5});
  if (o.resume) {
    resume_training(p, *o.resume, result, pos, r, o);
    if (pos.extra.contains("plateau"))
      plateau.for_each_state([&](std::string_view name, auto& v) {
        using V = std::remove_reference_t<decltype(v)>;
        const auto& j = pos.extra["plateau"].at(std::string(name));
        // JSON has no infinity: a non-finite double was stored as null (the "no best yet" value).
        if constexpr (std::is_floating_point_v<V>) v = j.is_null() ? std::numeric_limits<V>::infinity() : j.template get<V>();
        else v = j.template get<V>();
      });
  }
  const auto lr_at = [&](std::int64_t step, std::int64_t epoch) {
    if (hp.schedule == "cosine") return nn::cosine_annealing_lr{hp.lr, total_steps, hp.lr * 0.01}(std::min(step, total_steps));
    if (hp.schedule == "step") return nn::step_lr{hp.lr, std::max<std::int64_t>(1, hp.epochs / 3), 0.1}(epoch);
    if (hp.schedule == "plateau") return plateau.learning_rate();
    return hp.lr;
  };

  prepare_checkpoints(result, o.checkpoints);
  if (!split.validation.empty()) {
    std::string names;
    for (std::size_t i = 0; i < split.validation.size(); ++i) names += (i ? ", " : "") + ds.name(split.validation[i]);
    say("validation images: " + names);
  }
  say("training " + p.architecture() + " on " + std::to_string(split.train.size()) + " image(s), validating on " +
      std::to_string(split.validation.size()) + "; " + std::to_string(hp.epochs) + " epochs × " +
      std::to_string(steps_per_epoch) + " steps of " + std::to_string(hp.batch) + " crops " + std::to_string(hp.patch) + "²");

  const loop_settings settings{.epochs = hp.epochs, .steps_per_epoch = steps_per_epoch, .patience = hp.patience};
  std::vector<std::vector<std::size_t>> batches;  // this epoch's crop indices, drawn when its first step starts
  const auto step = [&](std::int64_t epoch, std::int64_t k) {
    if (k == 0) batches = data::epoch_batches(crops.size(), static_cast<std::size_t>(hp.batch), r);
    const auto& idx = batches[static_cast<std::size_t>(k)];
    p.set_learning_rate(lr_at(pos.step, epoch));
    std::vector<std::uint64_t> seeds(idx.size());
    for (auto& sd : seeds) sd = r.next();
    std::vector<data::sample> batch(idx.size());
    parallel_for(0, static_cast<std::int64_t>(idx.size()), [&](std::int64_t i) {
      rng own(seeds[static_cast<std::size_t>(i)]);
      batch[static_cast<std::size_t>(i)] = draw(idx[static_cast<std::size_t>(i)], own);
    });
    const double loss = p.train_step(batch);
    return step_result{loss, p.learning_rate()};
  };
  const auto end_epoch = [&](epoch_record& rec) {
    const validation_scores v = validate_on(p, val_samples);
    rec.val_loss = v.loss;
    rec.val_mae = v.mae;
    rec.val_f1 = v.f1;
    if (hp.schedule == "plateau" && std::isfinite(v.mae)) plateau.step(v.mae);
    rec.learning_rate = p.learning_rate();
    char text[160];
    std::snprintf(text, sizeof text, "  val loss %.5g  val MAE %.3f  val F1 %.3f", v.loss, v.mae, v.f1);
    return epoch_summary{v.mae, text};
  };
  const auto save = [&](bool improved) {
    pos.rng_state = r.state();
    pos.extra = {{"history", to_json(result.epochs)}, {"steps_per_epoch", steps_per_epoch}};
    nlohmann::json pl = nlohmann::json::object();
    plateau.for_each_state([&](std::string_view name, auto& value) { pl[std::string(name)] = value; });
    pos.extra["plateau"] = pl;
    if (!o.checkpoints.empty()) {
      if (improved) p.save(result.best_checkpoint, pos, false);
      p.save(result.latest_checkpoint, pos, true);
    }
  };
  run_epochs(result, pos, settings, o, step, end_epoch, save);
  // Calibration of the best model on the validation images (a second pipeline: this one keeps its weights).
  if (hp.calibrate && P::head_type::calibrated_counts && !val_samples.empty() && result.stop_reason.rfind("paused", 0) != 0 &&
      !result.best_checkpoint.empty() && fs::exists(result.best_checkpoint)) {
    P best(hp, p.labels(), p.channels());
    const auto header = best.load(result.best_checkpoint);
    const auto scale = fit_count_scale(best, val_samples);
    best.set_count_scale(scale);
    best.save(result.best_checkpoint, header.position, false);
    std::string text;
    for (std::size_t c = 0; c < scale.size(); ++c) {
      char f[64];
      std::snprintf(f, sizeof f, "%s×%.4f (%s)", c ? ", " : "", scale[c], p.labels()[c].c_str());
      text += f;
    }
    say("count calibration on " + std::to_string(val_samples.size()) + " validation image(s): " + text);
  }
  return result;
}

}  // namespace microcount::train
