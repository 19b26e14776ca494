#pragma once
// Every run-time number of a training run, in one struct; `hyperparameters.json` in the run folder is
// its JSON form, `--config FILE` reads the same form (only the keys it names change; an unknown key or
// a value of the wrong type is an error naming the key), and the grid tuner sweeps its keys.
//
// Structure (which network, which head) is chosen at compile time by the pipeline type; `head`,
// `model` and `depth` here only record, and let the program pick among its compiled pipelines.
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "microcount/core/error.hpp"
#include "microcount/core/limits.hpp"

namespace microcount::train {

struct hyperparameters {
  // ---- what is trained -------------------------------------------------------------------------
  std::string head = "density";      // density | detection | regression
  std::int64_t base_width = 16;      // channels of the first level (doubled per level)
  std::int64_t depth = 3;            // pooling steps (the program compiles 3)

  // ---- targets and decoding ------------------------------------------------------------------------
  double sigma = 2.0;                // Gaussian σ (pixels) of the density / heat-map target
  double density_scale = 100.0;      // density targets are multiplied by this (counts are divided back)
  double focal_gamma = 2.0;          // detection head: focal loss focusing (0 = plain BCE)
  double focal_alpha = 0.9;          // detection head: weight of the positive (object) pixels
  std::int64_t min_distance = 3;     // peaks: no two points closer than this (pixels)
  double peak_threshold = 0.5;       // detection: heat-map (probability) threshold; density: × peak height
  double match_radius = 5.0;         // evaluation: a detection within this distance of a truth point is a TP

  // ---- data ------------------------------------------------------------------------------------
  std::int64_t patch = 128;          // training crops are patch × patch pixels
  std::int64_t batch = 8;            // crops per optimizer step
  std::int64_t patches_per_image = 8;  // crops per training image per epoch
  bool flips = true;                 // random D4 flips and quarter turns
  double scale_min = 1.0;            // random rescale of crops (1, 1: off)
  double scale_max = 1.0;
  double brightness = 0.0;           // ± range of a random brightness shift (of the normalised range)
  double contrast = 0.0;             // ± range of a random contrast factor around 1
  double normalize_low = 1.0;        // percentile normalisation per image and channel
  double normalize_high = 99.8;
  double val_fraction = 0.2;         // share of the training images kept for validation when no
                                     // validation list is given (0: validate on nothing, keep the last)
  std::int64_t regression_crops = 0; // regression head: crops per image per epoch (0: patches_per_image)

  // ---- optimisation ----------------------------------------------------------------------------
  std::string optimizer = "adam";    // adam | adamw | sgd
  double lr = 1e-3;
  double weight_decay = 0.0;
  std::string schedule = "cosine";   // constant | cosine | step | plateau
  std::int64_t epochs = 50;
  std::int64_t patience = 0;         // early stopping: epochs without a better validation MAE (0: off)
  double clip_grad_norm = 0.0;       // 0: off
  bool calibrate = true;             // after training, fit one factor per class on the validation counts
                                     // (density and regression heads; needs >= 50 validation points per class)
  double ema = 0.995;                // validation, best model and inference use an exponential moving
                                     // average of the weights with this decay (0: off; the raw weights train)

  // ---- run -------------------------------------------------------------------------------------
  std::uint64_t seed = 1;
  std::int64_t threads = 0;          // 0: all cores
  bool tta = false;                  // flip test-time augmentation at validation and inference
  std::int64_t samples = 4;          // sample pictures written at the end (input / truth / prediction / Grad-CAM)
};

namespace hyperparameters_detail {

template <class F>
void for_each_field(hyperparameters& h, F&& f) {
  f("head", h.head);
  f("base_width", h.base_width);
  f("depth", h.depth);
  f("sigma", h.sigma);
  f("density_scale", h.density_scale);
  f("focal_gamma", h.focal_gamma);
  f("focal_alpha", h.focal_alpha);
  f("min_distance", h.min_distance);
  f("peak_threshold", h.peak_threshold);
  f("match_radius", h.match_radius);
  f("patch", h.patch);
  f("batch", h.batch);
  f("patches_per_image", h.patches_per_image);
  f("flips", h.flips);
  f("scale_min", h.scale_min);
  f("scale_max", h.scale_max);
  f("brightness", h.brightness);
  f("contrast", h.contrast);
  f("normalize_low", h.normalize_low);
  f("normalize_high", h.normalize_high);
  f("val_fraction", h.val_fraction);
  f("regression_crops", h.regression_crops);
  f("optimizer", h.optimizer);
  f("lr", h.lr);
  f("weight_decay", h.weight_decay);
  f("schedule", h.schedule);
  f("epochs", h.epochs);
  f("patience", h.patience);
  f("clip_grad_norm", h.clip_grad_norm);
  f("ema", h.ema);
  f("calibrate", h.calibrate);
  f("seed", h.seed);
  f("threads", h.threads);
  f("tta", h.tta);
  f("samples", h.samples);
}

}  // namespace hyperparameters_detail

inline nlohmann::json to_json(const hyperparameters& h) {
  nlohmann::json j = nlohmann::json::object();
  auto copy = h;
  hyperparameters_detail::for_each_field(copy, [&](const char* key, auto& v) { j[key] = v; });
  return j;
}

// Checks ranges and names; `where` (a file name, "--config") starts the error message.
inline void validate(const hyperparameters& h, std::string_view where = "hyperparameters") {
  const std::string w(where);
  const auto check = [&](bool ok, const std::string& what) { require(ok, w, what); };
  check(h.head == "density" || h.head == "detection" || h.head == "regression",
        "head must be density, detection or regression, not '" + h.head + "'");
  check(h.base_width >= 1 && h.base_width <= 512, "base_width must be 1..512");
  check(h.depth >= 1 && h.depth <= 6, "depth must be 1..6");
  check(h.sigma > 0 && h.sigma <= 64, "sigma must be in (0, 64]");
  check(h.density_scale > 0 && std::isfinite(h.density_scale), "density_scale must be > 0");
  check(h.focal_gamma >= 0 && h.focal_alpha >= 0 && h.focal_alpha <= 1, "focal_gamma >= 0 and focal_alpha in [0, 1]");
  check(h.min_distance >= 1, "min_distance must be >= 1");
  check(h.peak_threshold >= 0 && h.peak_threshold < 1e6, "peak_threshold must be >= 0");
  check(h.match_radius > 0, "match_radius must be > 0");
  check(h.patch >= 8 && h.patch <= 4096, "patch must be 8..4096");
  check(h.batch >= 1 && h.batch <= 1024, "batch must be 1..1024");
  // Each range alone is sane, not every product: one first-level feature map of a batch must fit the memory limit.
  const double feature_map_bytes = static_cast<double>(h.batch) * static_cast<double>(h.patch) * static_cast<double>(h.patch) *
                                   static_cast<double>(h.base_width) * sizeof(float);
  check(feature_map_bytes <= static_cast<double>(limits().max_total_bytes),
        "batch × patch² × base_width is too large: one feature map of a batch would take " +
            std::to_string(static_cast<long long>(feature_map_bytes / (1 << 20))) + " MiB, over the memory limit of " +
            std::to_string(limits().max_total_bytes >> 20) + " MiB (lower batch or patch)");
  check(h.patches_per_image >= 1 && h.patches_per_image <= 10000, "patches_per_image must be 1..10000");
  check(h.scale_min > 0 && h.scale_max >= h.scale_min && h.scale_max <= 8, "need 0 < scale_min <= scale_max <= 8");
  check(h.brightness >= 0 && h.brightness < 1 && h.contrast >= 0 && h.contrast < 1, "brightness and contrast in [0, 1)");
  check(h.normalize_low >= 0 && h.normalize_low < h.normalize_high && h.normalize_high <= 100,
        "need 0 <= normalize_low < normalize_high <= 100");
  check(h.val_fraction >= 0 && h.val_fraction < 1, "val_fraction must be in [0, 1)");
  check(h.regression_crops >= 0, "regression_crops must be >= 0");
  check(h.optimizer == "adam" || h.optimizer == "adamw" || h.optimizer == "sgd", "optimizer must be adam, adamw or sgd");
  check(h.lr > 0 && h.lr < 10, "lr must be in (0, 10)");
  check(h.weight_decay >= 0, "weight_decay must be >= 0");
  check(h.schedule == "constant" || h.schedule == "cosine" || h.schedule == "step" || h.schedule == "plateau",
        "schedule must be constant, cosine, step or plateau");
  check(h.epochs >= 1 && h.epochs <= 100000, "epochs must be 1..100000");
  check(h.patience >= 0, "patience must be >= 0");
  check(h.clip_grad_norm >= 0, "clip_grad_norm must be >= 0");
  check(h.ema >= 0 && h.ema < 1, "ema must be in [0, 1)");
  check(h.threads >= 0 && h.threads <= 1024, "threads must be 0..1024");
  check(h.samples >= 0 && h.samples <= 1000, "samples must be 0..1000");
}

// `base` with the keys of `j` replaced. Unknown keys and wrong types are errors naming the key.
inline hyperparameters from_json(const nlohmann::json& j, hyperparameters base = {},
                                 std::string_view where = "hyperparameters") {
  const std::string w(where);
  require(j.is_object(), w, "hyperparameters must be a JSON object");
  for (auto it = j.begin(); it != j.end(); ++it) {
    bool known = false;
    hyperparameters_detail::for_each_field(base, [&](const char* key, auto& v) {
      if (it.key() != key) return;
      known = true;
      using V = std::remove_reference_t<decltype(v)>;
      const auto& x = it.value();
      if constexpr (std::is_same_v<V, std::string>) {
        require(x.is_string(), w, std::string(key) + " must be a string");
        v = x.get<std::string>();
      } else if constexpr (std::is_same_v<V, bool>) {
        require(x.is_boolean(), w, std::string(key) + " must be true or false");
        v = x.get<bool>();
      } else if constexpr (std::is_floating_point_v<V>) {
        require(x.is_number(), w, std::string(key) + " must be a number");
        v = x.get<double>();
        require(std::isfinite(v), w, std::string(key) + " must be finite");
      } else {
        require(x.is_number_integer() || x.is_number_unsigned() ||
                    (x.is_number_float() && x.get<double>() == std::floor(x.get<double>())),
                w, std::string(key) + " must be an integer");
        const double d = x.get<double>();
        require(d >= 0 || std::is_signed_v<V>, w, std::string(key) + " must be >= 0");
        require(std::abs(d) < 9e15, w, std::string(key) + " is out of range");
        v = static_cast<V>(x.is_number_float() ? d : static_cast<double>(x.get<std::int64_t>()));
        if (x.is_number_unsigned()) v = static_cast<V>(x.get<std::uint64_t>());
      }
    });
    require(known, w, "unknown hyperparameter '" + it.key() + "'");
  }
  validate(base, where);
  return base;
}

}  // namespace microcount::train
