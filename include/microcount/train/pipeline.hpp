#pragma once
// A counting pipeline: a head, a model and a backend, fixed at compile time; every number run-time.
//
//   using cell_counter = train::pipeline<train::heads::density, nn::unet2d<>, backend::cpu>;
//   cell_counter p(hp, {"cell"}, /*channels*/ 1);       // builds the network for hp.patch² crops
//   double loss = p.train_step(samples);               // one optimizer step on a batch of crops
//   image_prediction r = p.predict(image);             // any size: tiled, stitched, decoded
//   p.save("model.mcm", position);  p.load("model.mcm");
//
// A head that needs maps (density, detection) takes a model that outputs maps (a U-Net); the
// regression head takes a model that outputs one vector per image (the count regressor). A wrong
// combination stops at compile time with one message naming both.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>
#include <xtensor/xtensor.hpp>

#include "microcount/core/backend.hpp"
#include "microcount/core/elementwise.hpp"
#include "microcount/core/error.hpp"
#include "microcount/core/rng.hpp"
#include "microcount/data/dataset.hpp"
#include "microcount/data/normalize.hpp"
#include "microcount/infer/predict.hpp"
#include "microcount/io/checkpoint.hpp"
#include "microcount/io/image.hpp"
#include "microcount/nn/models/regressor.hpp"
#include "microcount/nn/models/unet.hpp"
#include "microcount/nn/optim.hpp"
#include "microcount/train/heads.hpp"
#include "microcount/train/hyperparameters.hpp"

namespace microcount::train {

// Which models output maps and which output vectors.
template <class Spec>
struct model_traits {
  static constexpr bool known = false;
};
template <int D, class Norm, class Up, int Depth>
struct model_traits<nn::unet<D, Norm, Up, Depth>> {
  static constexpr bool known = true, dense = true;
  static typename nn::unet<D, Norm, Up, Depth>::config config(const hyperparameters& hp, index_t channels, index_t classes) {
    return {.in_channels = channels, .out_channels = classes, .base_width = hp.base_width};
  }
};
template <int D, class Norm, int Depth>
struct model_traits<nn::count_regressor<D, Norm, Depth>> {
  static constexpr bool known = true, dense = false;
  static typename nn::count_regressor<D, Norm, Depth>::config config(const hyperparameters& hp, index_t channels, index_t classes) {
    typename nn::count_regressor<D, Norm, Depth>::config c;
    c.in_channels = channels;
    c.classes = classes;
    c.base_width = hp.base_width;
    c.reference_pixels = static_cast<double>(hp.patch * hp.patch);
    return c;
  }
};

namespace pipeline_detail {
// a ← a + (1 − d)·(w − a): the weight average's update. At namespace scope, because nvcc does not take
// a class's private nested type as a kernel's template argument.
struct lerp_body {
  float keep;
  template <class V>
  MICROCOUNT_HOST_DEVICE void operator()(V& a, const V& w) const { a = a + (V(1.0f) - V(keep)) * (w - a); }
};
}  // namespace pipeline_detail

template <counting_head Head, class Spec, backend_tag B = backend::cpu>
class pipeline {
  static_assert(model_traits<Spec>::known, "microcount: pipeline<Head, Spec, B>: Spec is not a model of nn/models (unet, count_regressor)");
  static_assert(model_traits<Spec>::dense == Head::dense,
                "microcount: pipeline<Head, Spec, B>: this head and this model do not fit: density and detection heads need a "
                "model that outputs maps (nn::unet), the regression head one that outputs a vector (nn::count_regressor)");

 public:
  using head_type = Head;
  using spec_type = Spec;
  using backend_type = B;
  using network_type = typename Spec::template network<B>;

  pipeline(const hyperparameters& hp, std::vector<std::string> labels, index_t channels)
      : hp_(hp), labels_(std::move(labels)), channels_(channels) {
    validate(hp_);
    require(!labels_.empty(), "pipeline", "no class labels");
    require(channels_ >= 1 && channels_ <= 16, "pipeline", "images must have 1 to 16 channels, got " + std::to_string(channels_));
    const auto cfg = model_traits<Spec>::config(hp_, channels_, classes());
    net_ = std::make_unique<network_type>(Spec::template make<B>(cfg));
    rng r(hp_.seed);
    net_->build({hp_.batch, channels_, hp_.patch, hp_.patch}, r);
    make_optimizer();
  }

  // "density/unet2d<batch,transposed,3>": what checkpoints must match.
  static std::string architecture() { return std::string(Head::name) + "/" + Spec::name(); }

  [[nodiscard]] const hyperparameters& hp() const { return hp_; }
  [[nodiscard]] const std::vector<std::string>& labels() const { return labels_; }
  [[nodiscard]] index_t classes() const { return static_cast<index_t>(labels_.size()); }
  [[nodiscard]] index_t channels() const { return channels_; }
  network_type& network() { return *net_; }

  // One optimizer step on samples (same size, already normalised and augmented). Returns the loss.
  double train_step(std::span<const data::sample> samples) {
    auto batch = batch_of(samples);
    net_->set_mode(nn::mode::training);
    auto out = net_->forward(batch.images);  // [N, K, H, W] or [N, K]
    auto loss = Head::loss(out, batch.density, hp_);
    require(std::isfinite(loss.value), "training", "the loss is " + std::to_string(loss.value) + " (diverged)");
    net_->backward(loss.gradient);
    std::visit([&](auto& o) {
      if (hp_.clip_grad_norm > 0) nn::clip_grad_norm(o.parameters(), hp_.clip_grad_norm);
      o.step();
    }, *opt_);
    update_average();
    return loss.value;
  }

  // The loss on one (normalised) sample of any size, in evaluation mode: the validation loss.
  double loss_on(const data::sample& s) {
    auto batch = batch_of(std::span<const data::sample>(&s, 1));
    net_->set_mode(nn::mode::evaluation);
    const averaged_weights use(*this);
    auto out = forward_any_size(batch.images);
    return Head::loss(out, batch.density, hp_).value;
  }

  void set_learning_rate(double lr) { std::visit([&](auto& o) { o.set_learning_rate(lr); }, *opt_); }
  [[nodiscard]] double learning_rate() const { return std::visit([](const auto& o) { return o.learning_rate(); }, *opt_); }

  // Percentile normalisation of one image, as in training.
  [[nodiscard]] data::sample normalized(const io::image& im, std::string name = {}) const {
    data::sample s{std::move(name), im, {}, labels_};
    data::normalize_percentile(s, hp_.normalize_low, hp_.normalize_high);
    return s;
  }

  // The network's raw output for one normalised image [C, H, W]: maps [K, H, W] (tiled, stitched) or
  // the count vector as [K, 1, 1].
  xt::xtensor<float, 3> raw_output(const xt::xtensor<float, 3>& image, const std::function<void(index_t, index_t)>& progress = nullptr) {
    require(static_cast<index_t>(image.shape()[0]) == channels_, "predict",
            "image has " + std::to_string(image.shape()[0]) + " channel(s), the model was trained on " + std::to_string(channels_));
    net_->set_mode(nn::mode::evaluation);
    const averaged_weights use(*this);
    if constexpr (Head::dense) {
      infer::predict_options<2> o;
      const auto cfg = model_traits<Spec>::config(hp_, channels_, classes());
      o.divisor = infer::size_divisor<Spec>(cfg);
      const auto radius = infer::receptive_radius<Spec>(cfg);
      for (int a = 0; a < 2; ++a) {
        o.margin[a] = std::min<index_t>(radius[a], 48);
        o.tile[a] = 256;
      }
      o.flips = hp_.tta ? infer::tta::flips : infer::tta::none;
      o.progress = progress;
      return infer::predict(*net_, image, o);
    } else {
      tensor<float, B> x({1, channels_, static_cast<index_t>(image.shape()[1]), static_cast<index_t>(image.shape()[2])});
      x.upload(image.data());
      auto y = net_->forward(x);  // [1, K]
      xt::xtensor<float, 3> out = xt::xtensor<float, 3>::from_shape({static_cast<std::size_t>(classes()), 1, 1});
      y.download(out.data());
      return out;
    }
  }

  // Counts, points and maps of one image (raw pixels: normalised here). Still images only.
  image_prediction predict(const io::image& im, const std::function<void(index_t, index_t)>& progress = nullptr) {
    require(im.frames() == 1, "predict", "a still image was expected, got " + std::to_string(im.frames()) + " frames");
    const data::sample s = normalized(im);
    return predict_normalized(s, progress);
  }
  image_prediction predict_normalized(const data::sample& s, const std::function<void(index_t, index_t)>& progress = nullptr) {
    const auto& px = s.image.pixels;  // [1, C, H, W]
    xt::xtensor<float, 3> image = xt::xtensor<float, 3>::from_shape({px.shape()[1], px.shape()[2], px.shape()[3]});
    std::copy(px.begin(), px.end(), image.begin());
    image_prediction r = Head::decode(raw_output(image, progress), hp_);
    if constexpr (Head::calibrated_counts)
      for (std::size_t k = 0; k < count_scale_.size() && k < r.counts.size(); ++k) r.counts[k] *= count_scale_[k];
    return r;
  }

  // Per-class factors on the counts, fitted on validation images after training (fit_count_scale in
  // trainer.hpp; empty = 1). Only heads whose counts are sums (density, regression) use them.
  [[nodiscard]] const std::vector<double>& count_scale() const { return count_scale_; }
  void set_count_scale(std::vector<double> s) { count_scale_ = std::move(s); }

  // ---- checkpoints -------------------------------------------------------------------------------
  // The metadata stored with the weights: enough to rebuild this pipeline from the file alone.
  [[nodiscard]] nlohmann::json metadata() const {
    return {{"hyperparameters", to_json(hp_)}, {"labels", labels_}, {"channels", channels_}, {"count_scale", count_scale_},
            {"head", std::string(Head::name)}, {"model", Spec::name()}};
  }
  // with_optimizer: everything to resume (raw weights, optimizer, the weight average); without: the
  // weights inference uses (the average when there is one) — what best_model.mcm holds.
  void save(const std::filesystem::path& path, const io::training_position& position, bool with_optimizer = true) {
    io::checkpoint_state<B> state;
    state.add_model(*net_);
    std::optional<averaged_weights> use;
    if (with_optimizer) {
      std::visit([&](auto& o) { state.add_optimizer(o, "optimizer."); }, *opt_);
      add_average(state);
    } else {
      use.emplace(*this);
    }
    io::checkpoint_header head{architecture(), metadata(), position, with_optimizer};
    io::save_checkpoint(path, state, head);
  }
  // Loads weights (and the optimizer state when the file has it). Returns the header (position).
  io::checkpoint_header load(const std::filesystem::path& path) {
    io::checkpoint_file file(path);
    const auto header = file.read_header();
    io::checkpoint_state<B> state;
    state.add_model(*net_);
    if (header.has_optimizer) {
      std::visit([&](auto& o) { state.add_optimizer(o, "optimizer."); }, *opt_);
      add_average(state);
    }
    const auto h = file.load_into(state, architecture());
    if (!header.has_optimizer) {
      average_.clear();  // inference weights: already the average
    } else if (!average_.empty()) {
      bool saved = false;  // a run saved without an average starts one from the loaded weights
      for (const auto& t : file.header.at("tensors")) saved = saved || t.at("name") == "average.0";
      if (!saved) {
        average_.clear();
        average_steps_ = 0;
        for (auto* t : averaged_targets()) average_.push_back(t->clone());
      }
    }
    count_scale_.clear();
    if (h.metadata.contains("count_scale") && h.metadata.at("count_scale").is_array())
      for (const nlohmann::json& v : h.metadata.at("count_scale")) {
        const double f = v.is_number() ? v.get<double>() : 0.0;
        if (std::isfinite(f) && f > 0) count_scale_.push_back(f);
      }
    const auto saved_labels = h.metadata.value("labels", nlohmann::json::array());
    require(saved_labels == nlohmann::json(labels_), path.string(),
            "checkpoint classes " + saved_labels.dump() + " differ from " + nlohmann::json(labels_).dump());
    return h;
  }

 private:
  // ---- the weight average (EMA): parameters and buffers, in for_each_parameter / for_each_buffer order ----
  std::vector<tensor<float, B>*> averaged_targets() {
    std::vector<tensor<float, B>*> t;
    net_->for_each_parameter([&](const nn::parameter<B>& q) { t.push_back(q.value); });
    net_->for_each_buffer([&](std::string_view, tensor<float, B>& b) { t.push_back(&b); });
    return t;
  }
  void update_average() {
    if (hp_.ema <= 0) return;
    const auto targets = averaged_targets();
    if (average_.empty())
      for (auto* t : targets) average_.push_back(t->clone());
    ++average_steps_;
    // Warm-up (as TensorFlow's ExponentialMovingAverage with num_updates): early averages forget fast.
    const double d = std::min(hp_.ema, (1.0 + static_cast<double>(average_steps_)) / (10.0 + static_cast<double>(average_steps_)));
    for (std::size_t i = 0; i < targets.size(); ++i)
      for_each<B>(targets[i]->size(), pipeline_detail::lerp_body{static_cast<float>(d)}, average_[i].data(), targets[i]->data());
  }
  void add_average(io::checkpoint_state<B>& state) {
    if (hp_.ema <= 0) return;
    const auto targets = averaged_targets();
    if (average_.empty())
      for (auto* t : targets) average_.push_back(t->clone());
    for (std::size_t i = 0; i < average_.size(); ++i) state.entries.push_back({"optimizer", "average." + std::to_string(i), &average_[i]});
    state.counters.emplace_back("average.steps", &average_steps_);
  }
  // While alive, the network holds the averaged weights (swapped in, swapped back out: no copies).
  struct averaged_weights {
    pipeline& p;
    bool swapped = false;
    explicit averaged_weights(pipeline& q) : p(q) { swap(); }
    ~averaged_weights() { swap(); }
    averaged_weights(const averaged_weights&) = delete;
    averaged_weights& operator=(const averaged_weights&) = delete;
    void swap() {
      if (p.average_.empty()) return;
      const auto targets = p.averaged_targets();
      for (std::size_t i = 0; i < targets.size(); ++i) std::swap(*targets[i], p.average_[i]);
    }
  };

  using optimizer_variant = std::variant<nn::adam<B>, nn::adamw<B>, nn::sgd<B>>;

  void make_optimizer() {
    auto params = nn::parameters_of(*net_);
    if (hp_.optimizer == "adamw")
      opt_ = std::make_unique<optimizer_variant>(std::in_place_index<1>, params, nn::adamw_options{.lr = hp_.lr, .weight_decay = hp_.weight_decay});
    else if (hp_.optimizer == "sgd")
      opt_ = std::make_unique<optimizer_variant>(std::in_place_index<2>, params,
                                                 nn::sgd_options{.lr = hp_.lr, .momentum = 0.9, .weight_decay = hp_.weight_decay});
    else
      opt_ = std::make_unique<optimizer_variant>(std::in_place_index<0>, params, nn::adam_options{.lr = hp_.lr, .weight_decay = hp_.weight_decay});
  }

  // A dense model needs sides divisible by its pooling; pad (reflect) up and crop back.
  tensor<float, B> forward_any_size(const tensor<float, B>& x) {
    if constexpr (!Head::dense) {
      return net_->forward(x);
    } else {
      const auto cfg = model_traits<Spec>::config(hp_, channels_, classes());
      const auto div = infer::size_divisor<Spec>(cfg);
      const index_t n = x.dim(0), c = x.dim(1), h = x.dim(2), w = x.dim(3);
      const index_t ph = (h + div[0] - 1) / div[0] * div[0], pw = (w + div[1] - 1) / div[1] * div[1];
      if (ph == h && pw == w) return net_->forward(x);
      // Padding and cropping are copies of rows, done in host memory (device backends: staged).
      using host_b = std::conditional_t<B::host_memory, B, backend::reference>;
      const tensor<float, host_b> x_host = transfer<host_b>(x);  // [N, C, h, w]
      tensor<float, host_b> padded = tensor<float, host_b>::zeros({n, c, ph, pw});
      for (index_t i = 0; i < n * c; ++i)
        for (index_t y = 0; y < h; ++y)
          std::copy(x_host.data() + (i * h + y) * w, x_host.data() + (i * h + y) * w + w, padded.data() + (i * ph + y) * pw);
      const tensor<float, host_b> out = transfer<host_b>(net_->forward(transfer<B>(padded)));  // [N, K, ph, pw]
      const index_t k = out.dim(1);
      tensor<float, host_b> cropped({n, k, h, w});
      for (index_t i = 0; i < n * k; ++i)
        for (index_t y = 0; y < h; ++y)
          std::copy(out.data() + (i * ph + y) * pw, out.data() + (i * ph + y) * pw + w, cropped.data() + (i * h + y) * w);
      return transfer<B>(cropped);
    }
  }

  // A batch in B's memory: heads build it on the host; device backends receive it in two uploads.
  data::training_batch<B> batch_of(std::span<const data::sample> samples) const {
    const auto k = static_cast<std::size_t>(classes());
    if constexpr (B::host_memory) {
      return Head::template batch<B>(samples, hp_, k);
    } else {
      auto host = Head::template batch<backend::reference>(samples, hp_, k);
      return {transfer<B>(host.images), transfer<B>(host.density), std::move(host.counts)};
    }
  }

  hyperparameters hp_;
  std::vector<std::string> labels_;
  index_t channels_;
  std::unique_ptr<network_type> net_;
  std::unique_ptr<optimizer_variant> opt_;
  std::vector<tensor<float, B>> average_;  // empty: no average (ema = 0, before the first step, or inference weights)
  std::int64_t average_steps_ = 0;
  std::vector<double> count_scale_;
};

}  // namespace microcount::train
