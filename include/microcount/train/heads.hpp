#pragma once
// The three counting heads. A head says what the network is trained to output and how that output
// becomes counts and points; the pipeline combines it with a model (nn::unet / nn::count_regressor)
// and a backend at compile time.
//
//   heads::density     target: unit-mass Gaussians × density_scale, one channel per class; MSE.
//                      count = sum of the map / density_scale; points = local maxima of the map.
//   heads::detection   target: peak-1 Gaussians per class (a heat map in [0, 1]); sigmoid focal loss
//                      on the logits. points = maxima of σ(logits) above peak_threshold; count = points.
//   heads::regression  target: the count vector of the crop; MSE on counts. count = the output (the
//                      count regressor scales it with the image area); no points (Grad-CAM shows where).
//
// Every head: `name`, `dense` (the model must output maps [N, K, H, W]; otherwise vectors [N, K]),
// target<B>(samples, hp, classes), loss(output, target, hp), decode(output of one image, hp, classes).
#include <cmath>
#include <numbers>
#include <span>
#include <string_view>
#include <vector>

#include <xtensor/xtensor.hpp>

#include "microcount/core/tensor.hpp"
#include "microcount/data/batch.hpp"
#include "microcount/io/annotations.hpp"
#include "microcount/nn/loss.hpp"
#include "microcount/post/peaks.hpp"
#include "microcount/target/gaussian.hpp"
#include "microcount/train/hyperparameters.hpp"

namespace microcount::train {

// What a pipeline reports for one image.
struct image_prediction {
  std::vector<double> counts;      // [K] per class
  std::vector<io::point> points;   // label = class index; empty for heads without points
  std::vector<float> scores;       // one per point (map value at the peak)
  xt::xtensor<float, 3> maps;      // [K, H, W] what the points were read from (density, probability); empty for regression
};

namespace heads {

namespace detail {

// [N, C, H, W]: the samples' pixels (all the same size).
template <backend_tag B>
tensor<float, B> stack_images(std::span<const data::sample> samples) {
  require(!samples.empty(), "batch", "no samples");
  const auto& first = samples[0];
  tensor<float, B> x({static_cast<index_t>(samples.size()), static_cast<index_t>(first.channels()),
                      static_cast<index_t>(first.height()), static_cast<index_t>(first.width())});
  const std::size_t values = first.channels() * first.height() * first.width();
  for (std::size_t i = 0; i < samples.size(); ++i) {
    require(samples[i].image.frames() == 1, samples[i].name, "a batch takes still images");
    require(samples[i].image.pixels.size() == values, samples[i].name, "differs in size from the batch's first sample");
    std::copy(samples[i].image.pixels.begin(), samples[i].image.pixels.end(), x.data() + i * values);
  }
  return x;
}

inline post::peak_options peak_options_of(const hyperparameters& hp, float threshold) {
  post::peak_options o;
  o.min_distance = static_cast<int>(hp.min_distance);
  o.threshold_abs = threshold;
  o.exclude_border = 0;  // objects touching the border count too
  return o;
}

inline void collect_peaks(image_prediction& out, const xt::xtensor<float, 3>& maps, const post::peak_options& o) {
  for (const auto& p : post::find_peaks_per_class(maps, o)) {
    out.points.push_back(p.point);
    out.scores.push_back(p.score);
  }
}

}  // namespace detail

struct density {
  static constexpr std::string_view name = "density";
  static constexpr bool dense = true;
  static constexpr bool calibrated_counts = true;  // counts are sums: a validation-fitted factor applies

  // [N, K, H, W]: unit-mass Gaussians × density_scale.
  template <backend_tag B>
  static data::training_batch<B> batch(std::span<const data::sample> samples, const hyperparameters& hp, std::size_t classes) {
    return data::make_batch<B>(samples, {.sigma = hp.sigma, .scale = hp.density_scale, .classes = classes});
  }
  template <class B>
  static nn::loss_result<float, B> loss(const tensor<float, B>& out, const tensor<float, B>& target, const hyperparameters&) {
    return nn::mse_loss{}.evaluate(out, target);
  }
  // output [K, H, W] of one image.
  static image_prediction decode(xt::xtensor<float, 3> out, const hyperparameters& hp) {
    image_prediction r;
    const std::size_t k = out.shape()[0];
    r.counts.assign(k, 0.0);
    const double inv = 1.0 / hp.density_scale;
    for (std::size_t c = 0; c < k; ++c) {
      double s = 0;
      const float* m = out.data() + c * out.shape()[1] * out.shape()[2];
      for (std::size_t i = 0; i < out.shape()[1] * out.shape()[2]; ++i) s += m[i];
      r.counts[c] = std::max(0.0, s * inv);
    }
    // A lone object's peak is density_scale / (2πσ²); peak_threshold is a fraction of it.
    const double peak = hp.density_scale / (2 * std::numbers::pi * hp.sigma * hp.sigma);
    detail::collect_peaks(r, out, detail::peak_options_of(hp, static_cast<float>(hp.peak_threshold * peak)));
    r.maps = std::move(out);
    return r;
  }
};

struct detection {
  static constexpr std::string_view name = "detection";
  static constexpr bool dense = true;
  static constexpr bool calibrated_counts = false;  // counts are numbers of points

  // [N, K, H, W]: peak-1 Gaussians (max where they overlap), values in [0, 1].
  template <backend_tag B>
  static data::training_batch<B> batch(std::span<const data::sample> samples, const hyperparameters& hp, std::size_t classes) {
    // The images stacked as make_batch does, but only the peak-1 maps rasterised (not unit-mass ones too).
    data::training_batch<B> b;
    b.images = detail::stack_images<B>(samples);
    const auto h = static_cast<std::size_t>(b.images.dim(2)), w = static_cast<std::size_t>(b.images.dim(3));
    b.density = tensor<float, B>({b.images.dim(0), static_cast<index_t>(classes), b.images.dim(2), b.images.dim(3)});
    b.counts.resize(samples.size());
    target::gaussian_options g;
    g.sigma = hp.sigma;
    g.norm = target::normalization::peak_one;
    g.classes = classes;
    g.skip_outside = true;
    const std::size_t map_values = classes * h * w;
    for (std::size_t i = 0; i < samples.size(); ++i) {
      xt::xtensor<float, 3> d;  // [K, H, W]
      try {
        d = target::gaussian_density(samples[i].points, h, w, g);
      } catch (const error& e) {
        throw error(samples[i].name, e.what());
      }
      std::copy(d.begin(), d.end(), b.density.data() + i * map_values);
      b.counts[i] = samples[i].points.size();
    }
    return b;
  }
  template <class B>
  static nn::loss_result<float, B> loss(const tensor<float, B>& out, const tensor<float, B>& target, const hyperparameters& hp) {
    nn::focal_loss f;
    f.alpha = hp.focal_alpha;
    f.gamma = hp.focal_gamma;
    return f.evaluate(out, target);
  }
  static image_prediction decode(xt::xtensor<float, 3> out, const hyperparameters& hp) {
    for (auto& v : out) v = 1.0f / (1.0f + std::exp(-v));  // logits -> probabilities
    image_prediction r;
    detail::collect_peaks(r, out, detail::peak_options_of(hp, static_cast<float>(hp.peak_threshold)));
    r.counts.assign(out.shape()[0], 0.0);
    for (const auto& p : r.points) r.counts[static_cast<std::size_t>(p.label)] += 1;
    r.maps = std::move(out);
    return r;
  }
};

struct regression {
  static constexpr std::string_view name = "regression";
  static constexpr bool dense = false;
  static constexpr bool calibrated_counts = true;

  // density holds the count vector [N, K] of each crop.
  template <backend_tag B>
  static data::training_batch<B> batch(std::span<const data::sample> samples, const hyperparameters&, std::size_t classes) {
    data::training_batch<B> b;
    b.images = detail::stack_images<B>(samples);
    b.density = tensor<float, B>::zeros({static_cast<index_t>(samples.size()), static_cast<index_t>(classes)});
    b.counts.resize(samples.size());
    for (std::size_t i = 0; i < samples.size(); ++i) {
      for (const auto& p : samples[i].points)
        if (p.label >= 0 && static_cast<std::size_t>(p.label) < classes) b.density[static_cast<index_t>(i * classes) + p.label] += 1;
      b.counts[i] = samples[i].points.size();
    }
    return b;
  }
  template <class B>
  static nn::loss_result<float, B> loss(const tensor<float, B>& out, const tensor<float, B>& target, const hyperparameters&) {
    return nn::mse_loss{}.evaluate(out, target);
  }
  // output: [K] counts of one image (as [K, 1, 1]).
  static image_prediction decode(const xt::xtensor<float, 3>& out, const hyperparameters&) {
    image_prediction r;
    for (float v : out) r.counts.push_back(std::max(0.0, static_cast<double>(v)));
    return r;
  }
};

}  // namespace heads

template <class H>
concept counting_head = requires {
  { H::name } -> std::convertible_to<std::string_view>;
  { H::dense } -> std::convertible_to<bool>;
  { H::calibrated_counts } -> std::convertible_to<bool>;
};

}  // namespace microcount::train
