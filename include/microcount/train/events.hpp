#pragma once
// The event pipeline (ExoDeepFinder-style exocytosis detection in TIRF movies, 2D+t):
//
//   movie [T, H, W] ──normalize_frames──► 3D U-Net (pool 1×2×2: time kept) ──softmax──► 3 classes
//   (0 background, 1 bright spot, 2 event) ──argmax──► label map ──mean-shift──► event_objects
//
//   train::event_hyperparameters hp;                        // every number run-time, JSON round trip
//   train::event_pipeline<> p(hp);                          // one network type: train::event_unet
//   auto movies = train::load_annotated_movies(dir, hp);    // <movie>.tif + <movie>.xml/.csv
//   train::fit_events(p, train_movies, val_movies, {.checkpoints = run / "checkpoints"});
//   std::vector<post::event_object> events = p.detect(raw_frames);   // any movie size, tiled in time and space
//
// Training: crops [patch_frames, patch_size, patch_size] drawn class-balanced (a share centred on an
// event, a share on a bright spot, the rest anywhere), the centre jittered so the object is not always
// in the middle; flips of rows and columns and the y/x swap (time is never reversed: an event's cone
// only goes forward); targets are ExoDeepFinder's cones (target/cone.hpp); loss = softmax Tversky
// (default, alpha = beta = 0.5: Dice) or softmax focal; Adam. Each epoch ends with the validation F1
// (eval/events.hpp) on whole validation movies, the model selection metric (best = highest F1; the
// training loss when there is no validation movie); checkpoints best (weights) and latest (weights,
// Adam state, generator, history: an interrupted run resumes exactly).
// Inference: the movie is cut in time chunks of `tile_frames` frames plus the network's receptive
// radius on each side, each chunk tiled in space by infer::predict, the class scores turned to labels
// per chunk: memory is O(chunk), never the whole [3, T, H, W] float map (1.4 GB for 1000×400×300).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <ostream>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>
#include <xtensor/xtensor.hpp>

#include "microcount/core/backend.hpp"
#include "microcount/core/error.hpp"
#include "microcount/core/rng.hpp"
#include "microcount/data/movie.hpp"
#include "microcount/eval/events.hpp"
#include "microcount/infer/predict.hpp"
#include "microcount/io/checkpoint.hpp"
#include "microcount/io/movie.hpp"
#include "microcount/nn/loss/focal.hpp"
#include "microcount/nn/loss/tversky.hpp"
#include "microcount/nn/models/unet.hpp"
#include "microcount/nn/optim.hpp"
#include "microcount/nn/schedule.hpp"
#include "microcount/post/events.hpp"
#include "microcount/target/cone.hpp"
#include "microcount/train/curves.hpp"
#include "microcount/train/history.hpp"
#include "microcount/train/run_folder.hpp"
#include "microcount/train/trainer.hpp"

namespace microcount::train {

// The one compiled event network: 3D U-Net, BatchNorm, transposed-convolution upsampling, 2 pooling
// steps (1×2×2). Depth 2 keeps the receptive radius in time at 10 frames (an event lasts ~3) and the
// cost per voxel low enough for whole-movie detection in minutes (docs/events.md, docs/performance.md).
using event_unet = nn::unet<3, nn::norm::batch, nn::up::transposed, 2>;

inline constexpr index_t event_classes = 3;  // background, bright spot, event

struct event_hyperparameters {
  // model
  index_t base_width = 8;                 // channels of level 0 (16, 32 deeper)
  // training
  std::int64_t epochs = 20;
  std::int64_t steps_per_epoch = 50;
  index_t batch = 4;
  index_t patch_frames = 16;              // crop [patch_frames, patch_size, patch_size]
  index_t patch_size = 64;                // multiple of 4 (two 2×2 poolings)
  double lr = 1e-3;
  double weight_decay = 0;
  std::string schedule = "constant";      // constant | cosine
  std::string loss = "tversky";           // tversky | focal (both softmax over the 3 classes)
  double tversky_alpha = 0.5, tversky_beta = 0.5;
  double focal_gamma = 2;
  double event_share = 0.5;               // share of crops centred on an event
  double spot_share = 0.2;                // … on a bright spot; the rest anywhere in the movie
  index_t jitter = 12;                    // crop centre moved by up to ± jitter pixels …
  index_t jitter_frames = 4;              // … and ± jitter_frames frames
  bool flips = true;                      // row / column flips and the y/x swap
  std::uint64_t seed = 1;
  double validation_share = 0.2;          // of the movies, the last ones in name order (0: none)
  // targets (target/cone.hpp)
  std::vector<double> event_radii = {4, 2, 0};
  double spot_radius = 2;
  // data
  double normalize_low = 1, normalize_high = 99.8;  // per-frame percentiles
  // inference and detection
  index_t tile_frames = 64;               // frames owned by one time chunk (+ 10 of context each side)
  index_t tile_size = 512;                // spatial tile (a 400×300 frame is one tile)
  double bandwidth = 5;                   // mean-shift radius, voxels
  double time_scale = 1;
  std::int64_t min_size = 1;              // cluster-size threshold
  double match_distance = 5;              // evaluation: voxels (a frame counts as one)
  std::int64_t threads = 0;               // 0: OpenMP's default
};

inline nlohmann::json to_json(const event_hyperparameters& h) {
  return {{"base_width", h.base_width}, {"epochs", h.epochs}, {"steps_per_epoch", h.steps_per_epoch}, {"batch", h.batch},
          {"patch_frames", h.patch_frames}, {"patch_size", h.patch_size}, {"lr", h.lr}, {"weight_decay", h.weight_decay},
          {"schedule", h.schedule}, {"loss", h.loss}, {"tversky_alpha", h.tversky_alpha}, {"tversky_beta", h.tversky_beta},
          {"focal_gamma", h.focal_gamma}, {"event_share", h.event_share}, {"spot_share", h.spot_share},
          {"jitter", h.jitter}, {"jitter_frames", h.jitter_frames}, {"flips", h.flips}, {"seed", h.seed},
          {"validation_share", h.validation_share}, {"event_radii", h.event_radii}, {"spot_radius", h.spot_radius},
          {"normalize_low", h.normalize_low}, {"normalize_high", h.normalize_high}, {"tile_frames", h.tile_frames},
          {"tile_size", h.tile_size}, {"bandwidth", h.bandwidth}, {"time_scale", h.time_scale}, {"min_size", h.min_size},
          {"match_distance", h.match_distance}, {"threads", h.threads}};
}

namespace events_detail {
// Visits every field with its JSON name (one list for reading, --set and validation messages).
template <class F>
void for_each_field(event_hyperparameters& h, F&& f) {
  f("base_width", h.base_width); f("epochs", h.epochs); f("steps_per_epoch", h.steps_per_epoch); f("batch", h.batch);
  f("patch_frames", h.patch_frames); f("patch_size", h.patch_size); f("lr", h.lr); f("weight_decay", h.weight_decay);
  f("schedule", h.schedule); f("loss", h.loss); f("tversky_alpha", h.tversky_alpha); f("tversky_beta", h.tversky_beta);
  f("focal_gamma", h.focal_gamma); f("event_share", h.event_share); f("spot_share", h.spot_share); f("jitter", h.jitter);
  f("jitter_frames", h.jitter_frames); f("flips", h.flips); f("seed", h.seed); f("validation_share", h.validation_share);
  f("event_radii", h.event_radii); f("spot_radius", h.spot_radius); f("normalize_low", h.normalize_low);
  f("normalize_high", h.normalize_high); f("tile_frames", h.tile_frames); f("tile_size", h.tile_size);
  f("bandwidth", h.bandwidth); f("time_scale", h.time_scale); f("min_size", h.min_size);
  f("match_distance", h.match_distance); f("threads", h.threads);
}
}  // namespace events_detail

inline void validate(const event_hyperparameters& h) {
  const char* w = "event hyperparameters";
  require(h.base_width >= 1 && h.base_width <= 256, w, "base_width must be 1..256");
  require(h.epochs >= 1 && h.steps_per_epoch >= 1 && h.batch >= 1 && h.batch <= 256, w, "epochs, steps_per_epoch, batch must be >= 1");
  require(h.patch_frames >= 1 && h.patch_frames <= 512, w, "patch_frames must be 1..512");
  require(h.patch_size >= 4 && h.patch_size <= 1024 && h.patch_size % 4 == 0, w, "patch_size must be a multiple of 4 in 4..1024");
  require(h.lr > 0 && std::isfinite(h.lr) && h.weight_decay >= 0, w, "lr must be > 0, weight_decay >= 0");
  require(h.schedule == "constant" || h.schedule == "cosine", w, "schedule must be constant or cosine, got '" + h.schedule + "'");
  require(h.loss == "tversky" || h.loss == "focal", w, "loss must be tversky or focal, got '" + h.loss + "'");
  require(h.tversky_alpha >= 0 && h.tversky_beta >= 0 && h.focal_gamma >= 0, w, "loss parameters must be >= 0");
  require(h.event_share >= 0 && h.spot_share >= 0 && h.event_share + h.spot_share <= 1, w,
          "event_share and spot_share must be >= 0 and sum to at most 1");
  require(h.jitter >= 0 && h.jitter_frames >= 0, w, "jitter must be >= 0");
  require(h.validation_share >= 0 && h.validation_share < 1, w, "validation_share must be in [0, 1)");
  require(h.normalize_low >= 0 && h.normalize_low < h.normalize_high && h.normalize_high <= 100, w, "need 0 <= normalize_low < normalize_high <= 100");
  require(h.tile_frames >= 1 && h.tile_size >= 16 && h.tile_size % 4 == 0, w, "tile_frames >= 1, tile_size a multiple of 4 >= 16");
  require(h.bandwidth > 0 && std::isfinite(h.bandwidth) && h.time_scale > 0 && std::isfinite(h.time_scale), w,
          "bandwidth and time_scale must be > 0");
  require(h.min_size >= 1 && h.match_distance > 0 && h.threads >= 0, w, "min_size >= 1, match_distance > 0, threads >= 0");
}

// Values from JSON (hyperparameters.json, a checkpoint); missing keys keep `base`, unknown keys are errors.
inline event_hyperparameters event_hyperparameters_from_json(const nlohmann::json& j, event_hyperparameters base = {},
                                                             const std::string& where = "hyperparameters") {
  require(j.is_object(), where, "hyperparameters must be a JSON object");
  std::vector<std::string> known;
  events_detail::for_each_field(base, [&](const char* key, auto& v) {
    known.push_back(key);
    if (!j.contains(key)) return;
    try {
      v = j.at(key).get<std::remove_reference_t<decltype(v)>>();
    } catch (const nlohmann::json::exception&) {
      throw error(where, std::string("'") + key + "' has the wrong type: " + j.at(key).dump());
    }
  });
  for (const auto& [k, v] : j.items())
    require(std::find(known.begin(), known.end(), k) != known.end(), where, "unknown hyperparameter '" + k + "'");
  validate(base);
  return base;
}

// "key=value,key=value" (the program's --set): numbers, true/false, words; event_radii as 4:2:0.
inline event_hyperparameters with_settings(event_hyperparameters h, const std::string& settings) {
  nlohmann::json j = nlohmann::json::object();
  std::size_t start = 0;
  while (start < settings.size()) {
    const std::size_t end = std::min(settings.find(',', start), settings.size());
    const std::string item = settings.substr(start, end - start);
    start = end + 1;
    if (item.empty()) continue;
    const auto eq = item.find('=');
    require(eq != std::string::npos && eq > 0, "--set", "expected key=value, got '" + item + "'");
    const std::string key = item.substr(0, eq), value = item.substr(eq + 1);
    if (key == "event_radii") {
      nlohmann::json radii = nlohmann::json::array();
      std::size_t s = 0;
      while (s <= value.size()) {
        const std::size_t e = std::min(value.find(':', s), value.size());
        try {
          radii.push_back(std::stod(value.substr(s, e - s)));
        } catch (const std::exception&) {
          throw error("--set", "event_radii expects numbers separated by ':', got '" + value + "'");
        }
        s = e + 1;
      }
      j[key] = radii;
      continue;
    }
    const nlohmann::json parsed = nlohmann::json::parse(value, nullptr, false);
    j[key] = parsed.is_discarded() || parsed.is_object() || parsed.is_array() ? nlohmann::json(value) : parsed;
  }
  return event_hyperparameters_from_json(j, std::move(h), "--set");
}

// ---- data -------------------------------------------------------------------------------------------

// One training or validation movie: normalised frames, its class map and its objects.
struct annotated_movie {
  std::string name;
  xt::xtensor<float, 3> frames;           // [T, H, W] normalised per frame
  xt::xtensor<std::uint8_t, 3> classes;   // [T, H, W] 0 background, 1 bright spot, 2 event (cones)
  std::vector<post::event_object> objects;
};

// Raw frames + objects -> an annotated movie (normalised, target drawn). `name` is used in errors.
inline annotated_movie make_annotated_movie(std::string name, xt::xtensor<float, 3> frames,
                                            std::vector<post::event_object> objects, const event_hyperparameters& hp) {
  annotated_movie m{std::move(name), std::move(frames), {}, std::move(objects)};
  data::normalize_frames(m.frames, hp.normalize_low, hp.normalize_high);
  std::vector<io::point> points;  // label = ExoDeepFinder class (1, 2): exo_labels below names them
  points.reserve(m.objects.size());
  for (const auto& o : m.objects) {
    require(o.label == 1 || o.label == 2, m.name, "object class " + std::to_string(o.label) + " (1 = bright spot, 2 = event expected)");
    require(std::isfinite(o.frame) && std::abs(o.frame) < 1e9, m.name, "object with a non-finite frame");
    points.push_back({o.x, o.y, o.label, static_cast<int>(std::lround(o.frame)), -1});
  }
  const auto& s = m.frames.shape();
  try {
    m.classes = target::exo_cone_target(points, target::exo_labels{.spot = 1, .event = 2}, s[0], s[1], s[2],
                                        {.event_radii = hp.event_radii, .spot_radius = hp.spot_radius});
  } catch (const error& e) {
    throw error(m.name, e.what());
  }
  return m;
}

inline annotated_movie load_annotated_movie(const std::filesystem::path& movie_file, const std::filesystem::path& annotation,
                                            const event_hyperparameters& hp) {
  io::movie mv = io::read_movie(movie_file);
  auto objects = io::read_movie_objects(annotation);
  return make_annotated_movie(movie_file.filename().string(), std::move(mv.frames), std::move(objects), hp);
}

// Every annotated movie of a folder (io::find_annotated_movies), in name order.
inline std::vector<annotated_movie> load_annotated_movies(const std::filesystem::path& dir, const event_hyperparameters& hp) {
  std::vector<annotated_movie> out;
  for (const auto& [movie, annotation] : io::find_annotated_movies(dir)) out.push_back(load_annotated_movie(movie, annotation, hp));
  require(!out.empty(), dir.string(), "no annotated movies (<movie>.tif with <movie>.xml or <movie>.csv beside it)");
  return out;
}

// Class-balanced crops with jitter and flips: images [N, 1, t, s, s] and class labels [N, 1, t, s, s]
// (-1 where the crop leaves the movie: left out of the loss).
class event_crop_sampler {
 public:
  event_crop_sampler(std::span<const annotated_movie> movies, const event_hyperparameters& hp) : movies_(movies), hp_(hp) {
    require(!movies_.empty(), "training", "no training movies");
    for (std::size_t m = 0; m < movies_.size(); ++m)
      for (std::size_t i = 0; i < movies_[m].objects.size(); ++i)
        (movies_[m].objects[i].label == 2 ? events_ : spots_).push_back({m, i});
  }

  // Fills one batch (host pointers of N·t·s·s floats each).
  void draw(rng& r, float* images, float* labels) const {
    const auto t = static_cast<std::size_t>(hp_.patch_frames), s = static_cast<std::size_t>(hp_.patch_size);
    const std::size_t crop = t * s * s;
    for (index_t n = 0; n < hp_.batch; ++n) draw_one(r, images + n * crop, labels + n * crop);
  }

 private:
  void draw_one(rng& r, float* image, float* label) const {
    const auto pt = static_cast<std::int64_t>(hp_.patch_frames), ps = static_cast<std::int64_t>(hp_.patch_size);
    const double u = r.uniform();
    const std::vector<std::pair<std::size_t, std::size_t>>* pool =
        u < hp_.event_share ? &events_ : u < hp_.event_share + hp_.spot_share ? &spots_ : nullptr;
    if (pool != nullptr && pool->empty()) pool = nullptr;
    std::size_t m = 0;
    std::int64_t ct = 0, cy = 0, cx = 0;  // crop centre
    if (pool != nullptr) {
      const auto [mi, oi] = (*pool)[r.below(pool->size())];
      const auto& o = movies_[mi].objects[oi];
      m = mi;
      // The cone spans frames z..z+2: centre on z+1, then jitter.
      ct = std::lround(o.frame) + (o.label == 2 ? 1 : 0) + jitter(r, hp_.jitter_frames);
      cy = std::lround(o.y) + jitter(r, hp_.jitter);
      cx = std::lround(o.x) + jitter(r, hp_.jitter);
    } else {
      m = r.below(movies_.size());
      const auto& sh = movies_[m].frames.shape();
      ct = static_cast<std::int64_t>(r.below(sh[0]));
      cy = static_cast<std::int64_t>(r.below(sh[1]));
      cx = static_cast<std::int64_t>(r.below(sh[2]));
    }
    const auto& mv = movies_[m];
    const auto T = static_cast<std::int64_t>(mv.frames.shape()[0]), H = static_cast<std::int64_t>(mv.frames.shape()[1]),
               W = static_cast<std::int64_t>(mv.frames.shape()[2]);
    // Origin: the centre in the middle, then moved inside the movie when the movie is larger than the crop
    // (a smaller movie is padded: those voxels are ignored by the loss).
    const auto origin = [](std::int64_t c, std::int64_t p, std::int64_t e) {
      std::int64_t o = c - p / 2;
      return e >= p ? std::clamp<std::int64_t>(o, 0, e - p) : std::min<std::int64_t>(0, std::max(o, e - p));
    };
    const std::int64_t ot = origin(ct, pt, T), oy = origin(cy, ps, H), ox = origin(cx, ps, W);
    const bool flip_y = hp_.flips && r.below(2) == 1, flip_x = hp_.flips && r.below(2) == 1, swap = hp_.flips && r.below(2) == 1;
    for (std::int64_t i = 0; i < pt; ++i)
      for (std::int64_t a = 0; a < ps; ++a)
        for (std::int64_t b = 0; b < ps; ++b) {
          // (a, b) in the output crop; the source row/column after swap and flips.
          std::int64_t sa = swap ? b : a, sb = swap ? a : b;
          if (flip_y) sa = ps - 1 - sa;
          if (flip_x) sb = ps - 1 - sb;
          const std::int64_t tt = ot + i, y = oy + sa, x = ox + sb;
          const std::int64_t dst = (i * ps + a) * ps + b;
          if (tt < 0 || tt >= T || y < 0 || y >= H || x < 0 || x >= W) {
            image[dst] = 0;
            label[dst] = -1;
          } else {
            image[dst] = mv.frames(tt, y, x);
            label[dst] = static_cast<float>(mv.classes(tt, y, x));
          }
        }
  }
  static std::int64_t jitter(rng& r, index_t j) {
    return j <= 0 ? 0 : static_cast<std::int64_t>(r.below(static_cast<std::uint64_t>(2 * j + 1))) - j;
  }

  std::span<const annotated_movie> movies_;
  event_hyperparameters hp_;
  std::vector<std::pair<std::size_t, std::size_t>> events_, spots_;  // (movie, object)
};

// ---- the pipeline -------------------------------------------------------------------------------------

template <class Spec>
inline constexpr bool is_movie_unet = false;
template <class Norm, class Up, int Depth>
inline constexpr bool is_movie_unet<nn::unet<3, Norm, Up, Depth>> = true;

template <class Spec = event_unet, backend_tag B = backend::cpu>
class event_pipeline {
  static_assert(is_movie_unet<Spec>, "microcount: event_pipeline<Spec>: Spec must be a 3D U-Net, nn::unet<3, Norm, Up, Depth>");

 public:
  using spec_type = Spec;
  using backend_type = B;
  using network_type = typename Spec::template network<B>;

  explicit event_pipeline(const event_hyperparameters& hp) : hp_(hp) {
    validate(hp_);
    net_ = std::make_unique<network_type>(Spec::template make<B>(config()));
    rng r(hp_.seed);
    net_->build({hp_.batch, 1, hp_.patch_frames, hp_.patch_size, hp_.patch_size}, r);
    opt_ = std::make_unique<nn::adam<B>>(nn::parameters_of(*net_), nn::adam_options{.lr = hp_.lr, .weight_decay = hp_.weight_decay});
  }

  // A pipeline rebuilt from a checkpoint alone (its hyperparameters), weights loaded.
  static event_pipeline from_checkpoint(const std::filesystem::path& path) {
    const io::checkpoint_file file(path);
    const auto header = file.read_header();
    require(header.architecture == architecture(), path.string(),
            "is a '" + header.architecture + "' checkpoint, not an event model (" + architecture() + ")");
    event_pipeline p(event_hyperparameters_from_json(header.metadata.value("hyperparameters", nlohmann::json::object()), {},
                                                     path.string()));
    p.load(path);
    return p;
  }

  static std::string architecture() { return "events/" + Spec::name(); }
  [[nodiscard]] typename Spec::config config() const {
    return {.in_channels = 1, .out_channels = event_classes, .base_width = hp_.base_width};
  }
  [[nodiscard]] const event_hyperparameters& hp() const { return hp_; }
  event_hyperparameters& detection_settings() { return hp_; }  // bandwidth, min_size, tiles: not the network
  network_type& network() { return *net_; }
  nn::adam<B>& optimizer() { return *opt_; }
  void set_learning_rate(double lr) { opt_->set_learning_rate(lr); }

  // One Adam step on a batch: images [N, 1, t, s, s], labels [N, 1, t, s, s] (class index, -1 ignored).
  double train_step(const tensor<float, B>& images, const tensor<float, B>& labels) {
    net_->set_mode(nn::mode::training);
    auto out = net_->forward(images);  // [N, 3, t, s, s] logits
    nn::focal_loss focal;
    focal.over = nn::focal_loss::activation::softmax;
    focal.gamma = hp_.focal_gamma;
    const nn::tversky_loss tversky{nn::tversky_loss::activation::softmax, hp_.tversky_alpha, hp_.tversky_beta, 1.0};
    auto loss = hp_.loss == "focal" ? focal.evaluate(out, labels) : tversky.evaluate(out, labels);
    require(std::isfinite(loss.value), "training", "the loss is " + std::to_string(loss.value) + " (diverged)");
    net_->backward(loss.gradient);
    opt_->step();
    return loss.value;
  }

  // Calls f(t0, t1, scores) for consecutive frame ranges [t0, t1) of a normalised movie [T, H, W], with
  // scores [3, t1 − t0, H, W] (class stride `stride` floats). Each range is predicted with `radius` frames
  // of context on both sides (the network's receptive radius: the same scores as one whole forward).
  template <class F>
  void for_each_chunk(const xt::xtensor<float, 3>& frames, F&& f, const std::function<void(index_t, index_t)>& progress = nullptr) {
    const auto T = static_cast<index_t>(frames.shape()[0]), H = static_cast<index_t>(frames.shape()[1]),
               W = static_cast<index_t>(frames.shape()[2]);
    require(T >= 1 && H >= 1 && W >= 1, "detect", "empty movie");
    const auto cfg = config();
    const auto radius = infer::receptive_radius<Spec>(cfg);
    const auto divisor = infer::size_divisor<Spec>(cfg);
    infer::predict_options<3> o;
    o.divisor = divisor;
    o.batch = 1;
    // Spatial: one tile when the frame fits, else tiles with the receptive radius as margin (exact).
    const index_t side = hp_.tile_size;
    for (int a = 1; a < 3; ++a) {
      o.tile[a] = side;
      o.margin[a] = std::min<index_t>(radius[a], (side - divisor[a]) / 2);
    }
    o.margin[0] = radius[0];
    const index_t chunk = hp_.tile_frames, plane = H * W;
    const index_t chunks = (T + chunk - 1) / chunk;
    net_->set_mode(nn::mode::evaluation);
    for (index_t c = 0; c < chunks; ++c) {
      const index_t t0 = c * chunk, t1 = std::min(T, t0 + chunk);
      const index_t a = std::max<index_t>(0, t0 - radius[0]), b = std::min(T, t1 + radius[0]);
      xt::xtensor<float, 4> sub = xt::xtensor<float, 4>::from_shape({1, static_cast<std::size_t>(b - a), frames.shape()[1],
                                                                      frames.shape()[2]});  // [1, b − a, H, W]
      std::copy(frames.data() + a * plane, frames.data() + b * plane, sub.data());
      o.tile[0] = b - a;  // the whole chunk in one tile in time
      if (progress) o.progress = [&, c](index_t done, index_t total) { progress(c * total + done, chunks * total); };
      const xt::xtensor<float, 4> scores = infer::predict(*net_, sub, o);  // [3, b − a, H, W]
      f(t0, t1, scores.data() + (t0 - a) * plane, static_cast<std::size_t>((b - a) * plane));
    }
  }

  // Class scores (logits) [3, T, H, W] of a normalised movie: for small movies and tests (memory ∝ T·H·W·3).
  xt::xtensor<float, 4> scores(const xt::xtensor<float, 3>& frames) {
    const auto& s = frames.shape();
    xt::xtensor<float, 4> out = xt::xtensor<float, 4>::from_shape({static_cast<std::size_t>(event_classes), s[0], s[1], s[2]});
    const std::size_t plane = s[1] * s[2], volume = s[0] * plane;
    for_each_chunk(frames, [&](index_t t0, index_t t1, const float* sc, std::size_t stride) {
      for (index_t k = 0; k < event_classes; ++k)
        std::copy(sc + k * stride, sc + k * stride + (t1 - t0) * plane, out.data() + k * volume + t0 * plane);
    });
    return out;
  }

  // Class map [T, H, W] of a normalised movie (argmax per chunk: memory O(chunk)).
  xt::xtensor<std::uint8_t, 3> segment(const xt::xtensor<float, 3>& frames, const std::function<void(index_t, index_t)>& progress = nullptr) {
    const auto& s = frames.shape();
    require(static_cast<double>(s[0]) * static_cast<double>(s[1]) * static_cast<double>(s[2]) <= static_cast<double>(limits().max_total_bytes),
            "detect", "movie too large for the memory limit");
    xt::xtensor<std::uint8_t, 3> out = xt::xtensor<std::uint8_t, 3>::from_shape({s[0], s[1], s[2]});  // [T, H, W]
    const std::size_t plane = s[1] * s[2];
    for_each_chunk(frames, [&](index_t t0, index_t t1, const float* sc, std::size_t stride) {
      post::argmax_labels_into(sc, event_classes, stride, static_cast<std::size_t>(t1 - t0), plane, out.data() + t0 * plane);
    }, progress);
    return out;
  }

  [[nodiscard]] post::event_detection_options detection_options() const {
    return {.bandwidth = hp_.bandwidth, .time_scale = hp_.time_scale, .min_size = static_cast<std::size_t>(hp_.min_size), .labels = {2}};
  }

  // Events of a normalised movie.
  std::vector<post::event_object> detect_normalized(const xt::xtensor<float, 3>& frames,
                                                    const std::function<void(index_t, index_t)>& progress = nullptr) {
    return post::detect_events(segment(frames, progress), detection_options());
  }
  // Events of a raw movie (normalised here, per frame, as in training).
  std::vector<post::event_object> detect(xt::xtensor<float, 3> frames, const std::function<void(index_t, index_t)>& progress = nullptr) {
    data::normalize_frames(frames, hp_.normalize_low, hp_.normalize_high);
    return detect_normalized(frames, progress);
  }

  // ---- checkpoints ------------------------------------------------------------------------------
  [[nodiscard]] nlohmann::json metadata() const { return {{"hyperparameters", to_json(hp_)}, {"model", Spec::name()}}; }
  void save(const std::filesystem::path& path, const io::training_position& position, bool with_optimizer) {
    io::checkpoint_state<B> state;
    state.add_model(*net_);
    if (with_optimizer) state.add_optimizer(*opt_, "optimizer.");
    io::save_checkpoint(path, state, io::checkpoint_header{architecture(), metadata(), position, with_optimizer});
  }
  io::checkpoint_header load(const std::filesystem::path& path) {
    io::checkpoint_file file(path);
    io::checkpoint_state<B> state;
    state.add_model(*net_);
    if (file.read_header().has_optimizer) state.add_optimizer(*opt_, "optimizer.");
    return file.load_into(state, architecture());
  }

 private:
  event_hyperparameters hp_;
  std::unique_ptr<network_type> net_;
  std::unique_ptr<nn::adam<B>> opt_;
};

// ---- training -----------------------------------------------------------------------------------------

// The counting trainer's options (checkpoints, resume, log, progress, on_epoch, max_epochs).
using event_training_options = training_options;

// Scores of a pipeline's detections on whole movies (truth = their objects of class 2).
struct event_evaluation {
  eval::event_scores scores{};
  std::vector<post::event_object> truth, found;  // all movies together, frames offset so movies never mix
};

template <class P>
event_evaluation evaluate_events(P& p, std::span<const annotated_movie> movies) {
  event_evaluation e;
  double offset = 0;  // movies side by side in time, far apart, so one matching handles them all
  for (const auto& m : movies) {
    for (auto o : m.objects)
      if (o.label == 2) {
        o.frame += offset;
        e.truth.push_back(o);
      }
    for (auto o : p.detect_normalized(m.frames)) {
      o.frame += offset;
      e.found.push_back(o);
    }
    offset += static_cast<double>(m.frames.shape()[0]) + 10 * p.hp().match_distance + 10;
  }
  e.scores = eval::score_events(e.truth, e.found, eval::event_match_options{.distance = p.hp().match_distance});
  return e;
}

template <class P>
training_result fit_events(P& p, std::span<const annotated_movie> train_movies, std::span<const annotated_movie> val_movies,
                           const event_training_options& o = {}) {
  using B = typename P::backend_type;
  const event_hyperparameters& hp = p.hp();
  const auto say = [&](const std::string& line) { if (o.log) o.log(line); };
  const event_crop_sampler sampler(train_movies, hp);
  training_result result;
  rng r(hp.seed);
  io::training_position pos;
  if (o.resume) resume_training(p, *o.resume, result, pos, r, o);
  prepare_checkpoints(result, o.checkpoints);
  const std::int64_t total_steps = hp.epochs * hp.steps_per_epoch;
  say("training " + P::architecture() + " (width " + std::to_string(hp.base_width) + ") on " + std::to_string(train_movies.size()) +
      " movie(s), validating on " + std::to_string(val_movies.size()) + "; " + std::to_string(hp.epochs) + " epochs × " +
      std::to_string(hp.steps_per_epoch) + " steps of " + std::to_string(hp.batch) + " crops " + std::to_string(hp.patch_frames) +
      "×" + std::to_string(hp.patch_size) + "², loss " + hp.loss);

  const shape crop_shape{hp.batch, 1, hp.patch_frames, hp.patch_size, hp.patch_size};
  std::vector<float> images(static_cast<std::size_t>(crop_shape.size())), labels(images.size());  // [N, 1, t, s, s] each
  tensor<float, B> x(crop_shape), y(crop_shape);
  const auto step = [&](std::int64_t, std::int64_t) {
    const double lr = hp.schedule == "cosine" ? nn::cosine_annealing_lr{hp.lr, total_steps, hp.lr * 0.01}(pos.step) : hp.lr;
    p.set_learning_rate(lr);
    sampler.draw(r, images.data(), labels.data());
    x.upload(images.data());
    y.upload(labels.data());
    return step_result{p.train_step(x, y), lr};
  };
  // Lower is better: 1 − F1 with validation movies, else (NaN) the training loss.
  const auto end_epoch = [&](epoch_record& rec) {
    rec.learning_rate = hp.lr;
    epoch_summary summary;
    if (!val_movies.empty()) {
      const auto v = evaluate_events(p, val_movies);
      rec.val_f1 = v.scores.f1;
      summary.metric = 1.0 - v.scores.f1;
      char t[160];
      std::snprintf(t, sizeof t, "  val F1 %.3f (precision %.3f, recall %.3f, %zu found / %zu events)", v.scores.f1,
                    v.scores.precision, v.scores.recall, v.found.size(), v.truth.size());
      summary.text = t;
    }
    return summary;
  };
  const auto save = [&](bool improved) {
    pos.rng_state = r.state();
    pos.extra = {{"history", to_json(result.epochs)}};
    if (!o.checkpoints.empty()) {
      if (improved) p.save(result.best_checkpoint, pos, false);
      p.save(result.latest_checkpoint, pos, true);
    }
  };
  run_epochs(result, pos, loop_settings{.epochs = hp.epochs, .steps_per_epoch = hp.steps_per_epoch, .metric = "validation F1"}, o,
             step, end_epoch, save);
  return result;
}

// ---- a whole run in a run folder ------------------------------------------------------------------------

struct event_run_summary {
  training_result fit;
  std::size_t train_movies = 0, validation_movies = 0;
  double seconds = 0;
};

// Loads the annotated movies of `data_dir`, splits them (the last validation_share of the movies in name
// order validate; at least one movie trains), writes hyperparameters.json, log.txt, checkpoints and the
// training curves into `layout`, and trains (or resumes).
template <class P>
event_run_summary run_event_training(P& p, const std::filesystem::path& data_dir, const run_layout& layout,
                                     event_training_options o = {}, std::ostream* echo = nullptr) {
  const auto start = std::chrono::steady_clock::now();
  layout.create_directories();
  run_log log(layout.log_txt(), echo);
  const event_hyperparameters& hp = p.hp();
  std::vector<annotated_movie> movies = load_annotated_movies(data_dir, hp);
  const auto n = movies.size();
  std::size_t n_val = static_cast<std::size_t>(std::llround(hp.validation_share * static_cast<double>(n)));
  if (hp.validation_share > 0 && n >= 2) n_val = std::clamp<std::size_t>(n_val, 1, n - 1);
  else n_val = 0;
  const std::span<const annotated_movie> all(movies);
  const auto train_part = all.first(n - n_val), val_part = all.last(n_val);
  std::string names;
  for (const auto& m : val_part) names += (names.empty() ? "" : ", ") + m.name;
  // Rewritten on resume too: a resumed run may continue with a new epoch count or thread count.
  write_json_atomically(layout.hyperparameters_json(), to_json(hp));
  log.write("data " + data_dir.string() + ": " + std::to_string(train_part.size()) + " training movie(s), validation: " +
            (names.empty() ? std::string("none") : names));
  o.checkpoints = layout.checkpoints_dir();
  auto user_log = o.log;
  o.log = [&](const std::string& line) {
    log.write(line);
    if (user_log) user_log(line);
  };
  auto user_epoch = o.on_epoch;
  o.on_epoch = [&](const epoch_record& rec, const history& h) {
    write_training_curves(h, layout.training_curves(), "Event detection: training curves");
    if (user_epoch) user_epoch(rec, h);
  };
  event_run_summary s;
  s.fit = fit_events(p, train_part, val_part, o);
  s.train_movies = train_part.size();
  s.validation_movies = val_part.size();
  s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  log.write("done: " + s.fit.stop_reason + ", best epoch " + std::to_string(s.fit.best_epoch) + ", " + format_duration(s.seconds));
  return s;
}

}  // namespace microcount::train
