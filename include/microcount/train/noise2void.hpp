#pragma once
// Noise2Void: self-supervised denoising trained on the noisy images themselves (Krull et al., CVPR 2019).
//
//   train::noise2void_options o;                         // N2V defaults: U-Net depth 2, 32 filters, 64² patches
//   train::noise2void<> model(o, /*channels*/ 1);
//   auto result = train::fit_noise2void(model, images, {.checkpoints = run / "checkpoints"});  // images [C, H, W]
//   xt::xtensor<float, 3> clean = model.denoise(noisy);   // any size: tiled, stitched; the image's own units
//
// Training data (as N2V's generate_patches + N2V_DataWrapper): every image is normalised with the mean and
// standard deviation of all training pixels (per channel), cut into non-overlapping patch × patch tiles,
// the tiles are shuffled once (seeded) and a share held out for validation. A training step draws `batch`
// tiles, turns each by a random element of the dihedral group D4 (8 flips/quarter turns), masks ~0.2 % of
// its pixels (data/blind_spot.hpp) and takes one Adam step on the MSE between the network output and the
// ORIGINAL values at the masked pixels only (nn::mse_loss's masked form). Validation tiles keep one fixed
// mask each, so the validation loss is comparable between epochs; the best epoch (lowest validation loss,
// training loss without validation) is best_model.mcm, every epoch ends with latest_model.mcm (weights,
// Adam moments, generator state, history: resuming replays the uninterrupted run exactly).
// The learning rate follows a cosine from `lr` to lr/100 over all steps (a function of the step: nothing
// to checkpoint). The network output is linear (the U-Net's 1×1 head), mapped back to the input's units.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <tuple>
#include <vector>

#include <nlohmann/json.hpp>
#include <xtensor/xtensor.hpp>

#include "microcount/core/backend.hpp"
#include "microcount/core/error.hpp"
#include "microcount/core/parallel.hpp"
#include "microcount/core/rng.hpp"
#include "microcount/data/augment.hpp"
#include "microcount/data/blind_spot.hpp"
#include "microcount/infer/predict.hpp"
#include "microcount/io/checkpoint.hpp"
#include "microcount/io/image.hpp"
#include "microcount/nn/loss/mse.hpp"
#include "microcount/nn/models/unet.hpp"
#include "microcount/nn/optim.hpp"
#include "microcount/nn/schedule.hpp"
#include "microcount/train/history.hpp"
#include "microcount/train/trainer.hpp"

namespace microcount::train {

// The Noise2Void network of the N2V paper: U-Net of depth 2 (two pooling steps), batch norm, 2×2
// transposed-convolution upsampling; its width (32 in N2V) is a run-time number.
using noise2void_unet = nn::unet2d<nn::norm::batch, nn::up::transposed, 2>;

struct noise2void_options {
  index_t base_width = 32;          // filters of the first level (N2V: unet_n_first = 32)
  index_t patch = 64;               // training tile side (N2V: n2v_patch_shape 64 × 64); a multiple of 4
  index_t batch = 16;               // tiles per step (N2V: 128; smaller fits a CPU)
  std::int64_t epochs = 20;
  std::int64_t steps_per_epoch = 40;
  double lr = 4e-4;                 // Adam (N2V: train_learning_rate 0.0004), cosine to lr/100
  double validation_share = 0.1;    // share of tiles held out (N2V examples: 10 %)
  data::blind_spot_options mask;    // 0.198 %, radius 5, replacement without the centre
  bool augment = true;              // random D4 element per drawn tile
  std::uint64_t seed = 1;
  index_t tile = 256;               // inference tile side (the margin is the network's receptive radius)
};

inline nlohmann::json to_json(const noise2void_options& o) {
  return {{"base_width", o.base_width}, {"patch", o.patch}, {"batch", o.batch}, {"epochs", o.epochs},
          {"steps_per_epoch", o.steps_per_epoch}, {"lr", o.lr}, {"validation_share", o.validation_share},
          {"masked_percent", o.mask.percent}, {"neighbourhood_radius", o.mask.radius},
          {"replacement", o.mask.choose == data::replacement::uniform_with_centre ? "uniform_with_centre" : "uniform_without_centre"},
          {"augment", o.augment}, {"seed", o.seed}, {"tile", o.tile}};
}

// Checks every number (the message names the option); throws microcount::error.
inline void validate(const noise2void_options& o) {
  const auto fail = [](const std::string& what) { throw error("noise2void", what); };
  if (o.base_width < 1 || o.base_width > 256) fail("base_width must be 1 to 256, got " + std::to_string(o.base_width));
  if (o.patch < 8 || o.patch > 1024 || o.patch % 4 != 0) fail("patch must be a multiple of 4 from 8 to 1024, got " + std::to_string(o.patch));
  if (o.batch < 1 || o.batch > 1024) fail("batch must be 1 to 1024, got " + std::to_string(o.batch));
  if (o.epochs < 1 || o.epochs > 100000) fail("epochs must be 1 to 100000, got " + std::to_string(o.epochs));
  if (o.steps_per_epoch < 1 || o.steps_per_epoch > 1000000) fail("steps_per_epoch must be 1 to 1000000");
  if (!(o.lr > 0 && o.lr < 1)) fail("lr must be in (0, 1), got " + std::to_string(o.lr));
  if (!(o.validation_share >= 0 && o.validation_share < 1)) fail("validation_share must be in [0, 1)");
  if (!(o.mask.percent > 0 && o.mask.percent <= 100)) fail("masked_percent must be in (0, 100]");
  if (o.mask.radius < 1 || o.mask.radius > 64) fail("neighbourhood_radius must be 1 to 64");
  if (o.tile < 16 || o.tile > 4096 || o.tile % 4 != 0) fail("tile must be a multiple of 4 from 16 to 4096");
}

inline noise2void_options noise2void_options_from_json(const nlohmann::json& j, const std::string& where) {
  noise2void_options o;
  try {
    o.base_width = j.value("base_width", o.base_width);
    o.patch = j.value("patch", o.patch);
    o.batch = j.value("batch", o.batch);
    o.epochs = j.value("epochs", o.epochs);
    o.steps_per_epoch = j.value("steps_per_epoch", o.steps_per_epoch);
    o.lr = j.value("lr", o.lr);
    o.validation_share = j.value("validation_share", o.validation_share);
    o.mask.percent = j.value("masked_percent", o.mask.percent);
    o.mask.radius = j.value("neighbourhood_radius", o.mask.radius);
    const std::string choose = j.value("replacement", std::string("uniform_without_centre"));
    if (choose != "uniform_with_centre" && choose != "uniform_without_centre")
      throw error(where, "replacement must be uniform_with_centre or uniform_without_centre, got '" + choose + "'");
    o.mask.choose = choose == "uniform_with_centre" ? data::replacement::uniform_with_centre : data::replacement::uniform_without_centre;
    o.augment = j.value("augment", o.augment);
    o.seed = j.value("seed", o.seed);
    o.tile = j.value("tile", o.tile);
  } catch (const nlohmann::json::exception& e) {
    throw error(where, std::string("bad noise2void options: ") + e.what());
  }
  try {
    validate(o);
  } catch (const error& e) {
    throw error(where, e.what());
  }
  return o;
}

// Element k (0..7) of D4 applied to a square tile [C, P, P] (data::dihedral_point's convention).
inline xt::xtensor<float, 3> dihedral_tile(const xt::xtensor<float, 3>& tile, int k) {
  const std::size_t c = tile.shape()[0], h = tile.shape()[1], w = tile.shape()[2];
  require(h == w, "noise2void", "dihedral_tile needs a square tile");
  if (k == 0) return tile;
  xt::xtensor<float, 3> out = xt::xtensor<float, 3>::from_shape({c, h, w});  // [C, P, P]
  for (std::size_t y = 0; y < h; ++y)
    for (std::size_t x = 0; x < w; ++x) {
      const auto to = data::dihedral_point(k, static_cast<double>(x), static_cast<double>(y), w, h);
      const auto ty = static_cast<std::size_t>(to.y), tx = static_cast<std::size_t>(to.x);
      for (std::size_t ch = 0; ch < c; ++ch) out(ch, ty, tx) = tile(ch, y, x);
    }
  return out;
}

// One training or validation example: the (normalised) tile and its blind-spot masking.
struct noise2void_example {
  xt::xtensor<float, 3> target;   // [C, P, P] the tile
  data::masked_patch masked;      // input and mask, [C, P, P] each
};

template <class Spec = noise2void_unet, backend_tag B = backend::cpu>
class noise2void {
 public:
  using spec_type = Spec;
  using backend_type = B;
  using network_type = typename Spec::template network<B>;

  noise2void(const noise2void_options& o, index_t channels) : o_(o), channels_(channels) {
    validate(o_);
    require(channels_ >= 1 && channels_ <= 16, "noise2void", "images must have 1 to 16 channels, got " + std::to_string(channels_));
    mean_.assign(static_cast<std::size_t>(channels_), 0.0);
    std_.assign(static_cast<std::size_t>(channels_), 1.0);
    net_ = std::make_unique<network_type>(Spec::template make<B>(config()));
    rng r(o_.seed);
    net_->build({o_.batch, channels_, o_.patch, o_.patch}, r);
    adam_ = std::make_unique<nn::adam<B>>(nn::parameters_of(*net_), nn::adam_options{.lr = o_.lr});
  }

  // Rebuilds a model from a checkpoint alone (options, channels, normalisation and weights).
  static noise2void from_checkpoint(const std::filesystem::path& path) {
    const io::checkpoint_file file(path);
    const auto header = file.read_header();
    const std::string where = path.string();
    require(header.architecture == architecture(), where,
            "checkpoint is of architecture '" + header.architecture + "', not a Noise2Void model '" + architecture() + "'");
    const auto& m = header.metadata;
    require(m.contains("options") && m.contains("channels") && m.at("channels").is_number_integer(), where,
            "checkpoint metadata lacks the Noise2Void options or channels");
    const auto channels = m.at("channels").get<index_t>();
    require(channels >= 1 && channels <= 16, where, "checkpoint says " + std::to_string(channels) + " channels");
    noise2void model(noise2void_options_from_json(m.at("options"), where), channels);
    model.load(path);
    return model;
  }

  static std::string architecture() { return "noise2void/" + Spec::name(); }
  [[nodiscard]] const noise2void_options& options() const { return o_; }
  [[nodiscard]] index_t channels() const { return channels_; }
  [[nodiscard]] typename Spec::config config() const {
    return {.in_channels = channels_, .out_channels = channels_, .base_width = o_.base_width};
  }
  network_type& network() { return *net_; }
  [[nodiscard]] index_t parameters() { return nn::parameter_count(*net_); }

  // ---- normalisation: (x − mean) / std per channel ------------------------------------------------
  [[nodiscard]] const std::vector<double>& mean() const { return mean_; }
  [[nodiscard]] const std::vector<double>& std_dev() const { return std_; }
  // Mean and standard deviation of every pixel of `images` ([C, H, W] each), per channel.
  void fit_normalization(std::span<const xt::xtensor<float, 3>> images) {
    std::vector<double> sum(mean_.size(), 0.0), sq(mean_.size(), 0.0), n(mean_.size(), 0.0);
    for (const auto& im : images) {
      check_channels(im);
      const std::size_t plane = im.shape()[1] * im.shape()[2];
      for (std::size_t c = 0; c < mean_.size(); ++c)
        for (std::size_t i = 0; i < plane; ++i) {
          const double v = im.data()[c * plane + i];
          sum[c] += v, sq[c] += v * v, n[c] += 1;
        }
    }
    for (std::size_t c = 0; c < mean_.size(); ++c) {
      require(n[c] > 0, "noise2void", "no pixels to normalise with");
      mean_[c] = sum[c] / n[c];
      const double var = std::max(0.0, sq[c] / n[c] - mean_[c] * mean_[c]);
      std_[c] = var > 0 ? std::sqrt(var) : 1.0;  // a constant image: scale 1
    }
  }
  [[nodiscard]] xt::xtensor<float, 3> normalize(const xt::xtensor<float, 3>& im) const { return affine(im, false); }
  [[nodiscard]] xt::xtensor<float, 3> denormalize(const xt::xtensor<float, 3>& im) const { return affine(im, true); }

  // ---- training ------------------------------------------------------------------------------------
  // A tile turned by D4 element `k` and masked, drawn with `r`.
  [[nodiscard]] noise2void_example make_example(const xt::xtensor<float, 3>& tile, int k, rng& r) const {
    noise2void_example e{dihedral_tile(tile, k), {}};
    e.masked = data::mask_blind_spots(e.target, o_.mask, r);
    return e;
  }

  // One Adam step on masked examples of equal size. Returns the masked MSE (normalised units).
  double train_step(std::span<const noise2void_example> batch) {
    auto [x, t, m] = tensors_of(batch);
    net_->set_mode(nn::mode::training);
    auto y = net_->forward(x);  // [N, C, P, P]
    auto loss = nn::mse_loss{}.evaluate(y, t, m);
    require(std::isfinite(loss.value), "noise2void", "the loss is " + std::to_string(loss.value) + " (diverged)");
    net_->backward(loss.gradient);
    adam_->step();
    return loss.value;
  }
  // The masked MSE of examples in evaluation mode (validation).
  double masked_loss(std::span<const noise2void_example> batch) {
    auto [x, t, m] = tensors_of(batch);
    net_->set_mode(nn::mode::evaluation);
    auto y = net_->forward(x);  // [N, C, P, P]
    return nn::mse_loss{}.evaluate(y, t, m).value;
  }
  void set_learning_rate(double lr) { adam_->set_learning_rate(lr); }
  [[nodiscard]] double learning_rate() const { return adam_->learning_rate(); }

  // ---- inference -------------------------------------------------------------------------------------
  // Denoises one image [C, H, W] of any size in its own units (normalised, tiled, stitched, mapped back).
  xt::xtensor<float, 3> denoise(const xt::xtensor<float, 3>& image, const std::function<void(index_t, index_t)>& progress = nullptr) {
    check_channels(image);
    infer::predict_options<2> p;
    const auto cfg = config();
    p.divisor = infer::size_divisor<Spec>(cfg);
    const auto radius = infer::receptive_radius<Spec>(cfg);
    for (int a = 0; a < 2; ++a) {
      p.margin[a] = radius[a];  // margins ≥ the receptive radius: tiles stitch to the whole-image result
      p.tile[a] = o_.tile;
    }
    p.progress = progress;
    net_->set_mode(nn::mode::evaluation);
    return denormalize(infer::predict(*net_, normalize(image), p));
  }
  // Every frame of an image [F, C, H, W].
  io::image denoise(const io::image& im) {
    io::image out = im;
    const std::size_t f = im.frames(), c = im.channels(), h = im.height(), w = im.width();
    require(static_cast<index_t>(c) == channels_, "noise2void",
            "image has " + std::to_string(c) + " channel(s), the model was trained on " + std::to_string(channels_));
    for (std::size_t k = 0; k < f; ++k) {
      xt::xtensor<float, 3> frame = xt::xtensor<float, 3>::from_shape({c, h, w});  // [C, H, W]
      std::copy(im.pixels.data() + k * c * h * w, im.pixels.data() + (k + 1) * c * h * w, frame.data());
      const auto d = denoise(frame);
      std::copy(d.begin(), d.end(), out.pixels.data() + k * c * h * w);
    }
    out.source_dtype = io::dtype::float32;
    return out;
  }

  // ---- checkpoints -------------------------------------------------------------------------------
  [[nodiscard]] nlohmann::json metadata() const {
    return {{"options", to_json(o_)}, {"channels", channels_}, {"mean", mean_}, {"std", std_}, {"model", Spec::name()}};
  }
  void save(const std::filesystem::path& path, const io::training_position& position, bool with_optimizer = true) {
    io::checkpoint_state<B> state;
    state.add_model(*net_);
    if (with_optimizer) state.add_optimizer(*adam_, "optimizer.");
    io::save_checkpoint(path, state, io::checkpoint_header{architecture(), metadata(), position, with_optimizer});
  }
  io::checkpoint_header load(const std::filesystem::path& path) {
    io::checkpoint_file file(path);
    const auto header = file.read_header();
    io::checkpoint_state<B> state;
    state.add_model(*net_);
    if (header.has_optimizer) state.add_optimizer(*adam_, "optimizer.");
    const auto h = file.load_into(state, architecture());
    const auto read = [&](const char* key) {
      std::vector<double> v;
      const auto& m = h.metadata;
      require(m.contains(key) && m.at(key).is_array() && m.at(key).size() == static_cast<std::size_t>(channels_), path.string(),
              std::string("checkpoint metadata '") + key + "' must hold one number per channel");
      for (const auto& x : m.at(key)) {
        require(x.is_number() && std::isfinite(x.template get<double>()), path.string(), std::string("checkpoint '") + key + "' is not a finite number");
        v.push_back(x.template get<double>());
      }
      return v;
    };
    mean_ = read("mean");
    std_ = read("std");
    for (double s : std_) require(s > 0, path.string(), "checkpoint 'std' must be positive");
    return h;
  }

 private:
  void check_channels(const xt::xtensor<float, 3>& im) const {
    require(static_cast<index_t>(im.shape()[0]) == channels_, "noise2void",
            "image has " + std::to_string(im.shape()[0]) + " channel(s), the model has " + std::to_string(channels_));
  }
  [[nodiscard]] xt::xtensor<float, 3> affine(const xt::xtensor<float, 3>& im, bool inverse) const {
    check_channels(im);
    xt::xtensor<float, 3> out = im;  // [C, H, W]
    const std::size_t plane = im.shape()[1] * im.shape()[2];
    for (std::size_t c = 0; c < mean_.size(); ++c) {
      const double m = mean_[c], s = std_[c];
      float* p = out.data() + c * plane;
      for (std::size_t i = 0; i < plane; ++i) p[i] = static_cast<float>(inverse ? p[i] * s + m : (p[i] - m) / s);
    }
    return out;
  }
  // Input, target and mask tensors [N, C, P, P] of a batch.
  std::tuple<tensor<float, B>, tensor<float, B>, tensor<float, B>> tensors_of(std::span<const noise2void_example> batch) const {
    require(!batch.empty(), "noise2void", "empty batch");
    const auto& first = batch.front().target;
    const std::size_t n = first.size();
    const shape s{static_cast<index_t>(batch.size()), static_cast<index_t>(first.shape()[0]), static_cast<index_t>(first.shape()[1]),
                  static_cast<index_t>(first.shape()[2])};
    std::vector<float> x(batch.size() * n), t(batch.size() * n), m(batch.size() * n);  // host [N, C, P, P]
    for (std::size_t i = 0; i < batch.size(); ++i) {
      const auto& e = batch[i];
      require(e.target.shape() == first.shape() && e.masked.input.shape() == first.shape() && e.masked.mask.shape() == first.shape(),
              "noise2void", "examples of a batch differ in shape");
      std::copy(e.masked.input.begin(), e.masked.input.end(), x.begin() + static_cast<std::ptrdiff_t>(i * n));
      std::copy(e.target.begin(), e.target.end(), t.begin() + static_cast<std::ptrdiff_t>(i * n));
      std::copy(e.masked.mask.begin(), e.masked.mask.end(), m.begin() + static_cast<std::ptrdiff_t>(i * n));
    }
    tensor<float, B> tx(s), tt(s), tm(s);
    tx.upload(x.data());
    tt.upload(t.data());
    tm.upload(m.data());
    return {std::move(tx), std::move(tt), std::move(tm)};
  }

  noise2void_options o_;
  index_t channels_;
  std::vector<double> mean_, std_;
  std::unique_ptr<network_type> net_;
  std::unique_ptr<nn::adam<B>> adam_;
};

// ---- the training loop ------------------------------------------------------------------------------

// The counting trainer's options (checkpoints, resume, log, progress, on_epoch, max_epochs).
using noise2void_fit_options = training_options;

// Non-overlapping patch × patch tiles of every image ([C, H, W] each, already normalised), row-major.
inline std::vector<xt::xtensor<float, 3>> grid_tiles(std::span<const xt::xtensor<float, 3>> images, std::size_t patch) {
  std::vector<xt::xtensor<float, 3>> tiles;
  for (const auto& im : images) {
    const std::size_t c = im.shape()[0], h = im.shape()[1], w = im.shape()[2];
    for (std::size_t y0 = 0; y0 + patch <= h; y0 += patch)
      for (std::size_t x0 = 0; x0 + patch <= w; x0 += patch) {
        xt::xtensor<float, 3> t = xt::xtensor<float, 3>::from_shape({c, patch, patch});  // [C, P, P]
        for (std::size_t k = 0; k < c; ++k)
          for (std::size_t y = 0; y < patch; ++y)
            std::copy(im.data() + (k * h + y0 + y) * w + x0, im.data() + (k * h + y0 + y) * w + x0 + patch, t.data() + (k * patch + y) * patch);
        tiles.push_back(std::move(t));
      }
  }
  return tiles;
}

// Trains `model` on `images` ([C, H, W] each, the images' own units). With `resume` the normalisation,
// weights, Adam state, generator and history come from the checkpoint.
template <class M>
training_result fit_noise2void(M& model, std::span<const xt::xtensor<float, 3>> images, const noise2void_fit_options& fo = {}) {
  const noise2void_options& o = model.options();
  const auto say = [&](const std::string& line) { if (fo.log) fo.log(line); };
  require(!images.empty(), "noise2void", "no training images");

  training_result result;
  rng r(o.seed);
  io::training_position pos;
  if (fo.resume) resume_training(model, *fo.resume, result, pos, r, fo);  // also the normalisation of the interrupted run
  else model.fit_normalization(images);

  // Tiles: shuffled once with their own generator (the same on resume), the last share for validation.
  std::vector<xt::xtensor<float, 3>> normalized;
  for (const auto& im : images) normalized.push_back(model.normalize(im));
  auto tiles = grid_tiles(normalized, static_cast<std::size_t>(o.patch));
  require(!tiles.empty(), "noise2void",
          "no image holds a " + std::to_string(o.patch) + "×" + std::to_string(o.patch) + " training tile (use a smaller patch)");
  rng shuffle(o.seed ^ 0x6e3276ull);
  for (std::size_t i = tiles.size(); i > 1; --i) std::swap(tiles[i - 1], tiles[static_cast<std::size_t>(shuffle.below(i))]);
  const std::size_t n_val = tiles.size() < 2 ? 0 : std::min(tiles.size() - 1, static_cast<std::size_t>(std::lround(o.validation_share * static_cast<double>(tiles.size()))));
  const std::size_t n_train = tiles.size() - n_val;
  std::vector<noise2void_example> validation;
  for (std::size_t i = 0; i < n_val; ++i) validation.push_back(model.make_example(tiles[n_train + i], 0, shuffle));

  prepare_checkpoints(result, fo.checkpoints);
  const std::int64_t total_steps = o.epochs * o.steps_per_epoch;
  const nn::cosine_annealing_lr schedule{o.lr, total_steps, o.lr * 0.01};
  say("training " + M::architecture() + " (" + std::to_string(model.parameters()) + " parameters) on " + std::to_string(images.size()) +
      " image(s): " + std::to_string(n_train) + " training / " + std::to_string(n_val) + " validation tiles of " +
      std::to_string(o.patch) + "²; " + std::to_string(o.epochs) + " epochs × " + std::to_string(o.steps_per_epoch) + " steps of " +
      std::to_string(o.batch));

  const auto step = [&](std::int64_t, std::int64_t) {
    const double lr = schedule(std::min(pos.step, total_steps));
    model.set_learning_rate(lr);
    // Tile choices and per-example seeds from the run's generator; examples made in parallel.
    std::vector<std::size_t> pick(static_cast<std::size_t>(o.batch));
    std::vector<std::uint64_t> seeds(pick.size());
    for (std::size_t i = 0; i < pick.size(); ++i) {
      pick[i] = static_cast<std::size_t>(r.below(n_train));
      seeds[i] = r.next();
    }
    std::vector<noise2void_example> batch(pick.size());
    parallel_for(0, static_cast<std::int64_t>(pick.size()), [&](std::int64_t i) {
      const auto k = static_cast<std::size_t>(i);
      rng own(seeds[k]);
      const int turn = o.augment ? static_cast<int>(own.below(8)) : 0;
      batch[k] = model.make_example(tiles[pick[k]], turn, own);
    });
    return step_result{model.train_step(batch), lr};
  };
  const auto end_epoch = [&](epoch_record& rec) {
    epoch_summary summary;
    if (!validation.empty()) {
      double v = 0;
      for (std::size_t i = 0; i < validation.size(); i += static_cast<std::size_t>(o.batch)) {
        const std::size_t n = std::min<std::size_t>(static_cast<std::size_t>(o.batch), validation.size() - i);
        v += model.masked_loss(std::span<const noise2void_example>(validation.data() + i, n)) * static_cast<double>(n);
      }
      rec.val_loss = v / static_cast<double>(validation.size());
      summary.metric = rec.val_loss;
      char t[64];
      std::snprintf(t, sizeof t, "  val loss %.5g", rec.val_loss);
      summary.text = t;
    }
    rec.learning_rate = model.learning_rate();
    return summary;
  };
  const auto save = [&](bool improved) {
    pos.rng_state = r.state();
    pos.extra = {{"history", to_json(result.epochs)}};
    if (!fo.checkpoints.empty()) {
      if (improved) model.save(result.best_checkpoint, pos, false);
      model.save(result.latest_checkpoint, pos, true);
    }
  };
  run_epochs(result, pos, loop_settings{.epochs = o.epochs, .steps_per_epoch = o.steps_per_epoch, .metric = "validation loss"}, fo,
             step, end_epoch, save);
  return result;
}

}  // namespace microcount::train
