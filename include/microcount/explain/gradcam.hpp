#pragma once
// Grad-CAM (Selvaraju et al., ICCV 2017) for the seq-composed models of nn/models, with any head.
//
//   auto map = explain::gradcam_for_class(net, x, explain::head_kind::density, 0);   // [H, W] in [0, 1]
//   auto map = explain::gradcam(net, x, explain::score::sigmoid_sum{2}, {.layer = explain::target::decoder});
//   auto map = explain::gradcam_at<explain::path<0, 1, 0, 1>>(net, x, explain::score::count{1});
//
// For a target layer with output A [1, K, h, w] and a score s (a scalar function of the network output):
//   α_k = mean over (h, w) of ∂s/∂A_k,   cam = ReLU(Σ_k α_k·A_k)   [h, w],
// bilinearly upsampled (half-pixel centres, PyTorch's align_corners=False) to the input's H × W and, by
// default, scaled to [0, 1] ((cam − min) / (max − min); all zeros when the map is flat).
//
// The score is given by its gradient w.r.t. the network output: a callable
//   tensor_t<B> f(const tensor_t<B>& output)    // ∂score/∂output, output's shape
// so every head works (score:: below): density (sum of channel c), detection (sum of σ(channel c)),
// regression ([1, classes]: the count of class c).
//
// Target layer = a compile-time path into nested composites: path<I, J, ...> picks element I of the model's
// top-level seq, then element J of that (seq element index; 0 for the one inner layer of skip_concat /
// residual), and so on; A is that layer's output. The model runs once in nn::mode::inspection (the
// evaluation-mode function, see nn/layer.hpp) with A kept on the way; backward runs from the output only
// down to A (the layers before A are not back-propagated and run in evaluation mode, keeping nothing), and
// no parameter gradient is computed. The model's mode is restored afterwards, also when an error is thrown.
//
// Targets by name (target::), for the U-Net; for the count regressor all three are the trunk's output
// (the last conv block before global pooling, the layer the original method uses for pooled heads):
//   features (the default) — the decoder's last block, the input of the 1×1 head (full resolution). The
//              head is linear, so for the density head this map is ReLU(output_c − bias_c), scaled: class c's
//              positive evidence as the network outputs it (tests/explain/test_gradcam_unet.cpp checks the
//              closed form). It is the only U-Net target whose map marked the objects on both synthetic
//              blobs and real cells (tests/explain/test_gradcam_unet_trained.cpp).
//   decoder — one level below the top: the output of level Depth−1, the input of the last upsampling (1/2
//              resolution). Marks real cells, but on synthetic blobs its weights α were nearly all negative
//              and the map empty: there it carried background, not objects.
//   bottleneck — the deepest level (1/2^Depth), the classic Grad-CAM layer of encoders. Marks synthetic
//              blobs, but on real cells its map lit up the background instead of the cells.
// The deeper targets show what the deep path contributes, which in a U-Net with skips is often context;
// see docs/explain.md for the measurements.
#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <xtensor/xtensor.hpp>

#include "microcount/core/elementwise.hpp"
#include "microcount/core/tensor.hpp"
#include "microcount/nn/compose.hpp"
#include "microcount/nn/layer.hpp"
#include "microcount/nn/layers/merge.hpp"
#include "microcount/nn/ops_layers.hpp"

namespace microcount::explain {

// A target layer: indices into nested seq / skip_concat / residual (see the header comment).
template <std::size_t... I>
struct path {
  static constexpr std::size_t depth = sizeof...(I);
  static std::string str() {
    std::string s;
    // Appended piece by piece: GCC 12 warns (-Wrestrict, falsely) on "." + std::to_string(i) here.
    const auto add = [&s](std::size_t i) {
      if (!s.empty()) s.push_back('.');
      s.append(std::to_string(i));
    };
    (add(I), ...);
    return s.empty() ? "<output>" : s;
  }
};

enum class target { features, decoder, bottleneck };
enum class head_kind { density, detection, regression };

struct gradcam_options {
  target layer = target::features;
  bool normalize = true;  // scale the upsampled map to [0, 1]
};

// ---- scores (their gradients w.r.t. the network output) --------------------------------------------
namespace score {

namespace detail {
template <class B>
void require_class(const nn::tensor_t<B>& output, index_t c, bool dense) {
  require(output.rank() >= 2 && output.dim(0) == 1, "gradcam", "expects one image's output [1, K, ...], got " + output.shape().str());
  require(dense ? output.rank() >= 3 : output.rank() == 2, "gradcam",
          std::string(dense ? "a dense head needs a map output [1, K, H, W], got "
                            : "the regression head needs a count output [1, K], got ") + output.shape().str());
  require(c >= 0 && c < output.dim(1), "gradcam",
          "class " + std::to_string(c) + " does not exist: the output has " + std::to_string(output.dim(1)) + " channels");
}

// g = σ'(o) = σ(o)·(1 − σ(o)), through the sigmoid layer's own forward body.
struct sigmoid_slope_body {
  template <class V>
  MICROCOUNT_HOST_DEVICE void operator()(V& g, const V& o) const {
    V s;
    ops::sigmoid::forward_body{}(s, o);
    g = s * (V(1) - s);
  }
};
// g = 1 whatever the output (the slope of a plain sum).
struct set_one_body {
  template <class V>
  MICROCOUNT_HOST_DEVICE void operator()(V& g, const V&) const { g = V(1); }
};

// ∂s/∂output of a dense head whose score sums class c's plane: zero but on that plane [H, W], where
// `slope` (g, o) gives each pixel's derivative from its output, run on the backend (device maps too).
template <class B, class Slope>
nn::tensor_t<B> plane_gradient(const nn::tensor_t<B>& output, index_t c, const Slope& slope) {
  require_class<B>(output, c, true);
  auto g = nn::tensor_t<B>::zeros(output.shape());  // [1, K, H, W]
  const index_t plane = output.shape().size_from(2);
  for_each<B>(plane, slope, g.data() + c * plane, static_cast<const scalar_t<B>*>(output.data() + c * plane));
  return g;
}
}  // namespace detail

// Density head: s = Σ_{h,w} output[0, c, h, w] (the predicted count of class c, up to density_scale).
struct channel_sum {
  index_t channel = 0;
  template <class B>
  nn::tensor_t<B> operator()(const nn::tensor_t<B>& output) const {
    return detail::plane_gradient<B>(output, channel, detail::set_one_body{});
  }
};

// Detection head: s = Σ_{h,w} σ(output[0, c, h, w]) (the heat map's mass of class c).
struct sigmoid_sum {
  index_t channel = 0;
  template <class B>
  nn::tensor_t<B> operator()(const nn::tensor_t<B>& output) const {
    return detail::plane_gradient<B>(output, channel, detail::sigmoid_slope_body{});
  }
};

// Regression head: s = output[0, c], the predicted count of class c.
struct count {
  index_t channel = 0;
  template <class B>
  nn::tensor_t<B> operator()(const nn::tensor_t<B>& output) const {
    detail::require_class<B>(output, channel, false);
    std::vector<scalar_t<B>> host(static_cast<std::size_t>(output.size()), scalar_t<B>(0));  // [1, K]
    host[static_cast<std::size_t>(channel)] = scalar_t<B>(1);
    nn::tensor_t<B> g(output.shape());
    g.upload(host.data());
    return g;
  }
};

}  // namespace score

// ---- the model walk ----------------------------------------------------------------------------------
namespace detail {

template <class... L>
nn::seq<L...>& as_seq(nn::seq<L...>& s) {
  return s;
}
template <class M>
concept seq_model = requires(M& m) { detail::as_seq(m); };
template <class M>
using seq_of = std::remove_reference_t<decltype(detail::as_seq(std::declval<M&>()))>;

// Whether a model derived from seq has its own forward (count_regressor sets its area factor there).
template <class M>
constexpr bool own_forward = !std::is_same_v<decltype(&M::forward), decltype(&seq_of<M>::forward)>;

template <class B>
struct capture {
  nn::tensor_t<B> activation;  // A
  nn::tensor_t<B> gradient;    // ∂score/∂A
};

// Forward with A kept: the layer at the end of the path.
template <class L, class B = typename L::backend_type>
nn::tensor_t<B> forward_at(L& layer, const nn::tensor_t<B>& x, capture<B>& c, path<>) {
  auto y = layer.forward(x);
  c.activation = y.clone();  // a copy: later layers may not write into it, but A must outlive the call
  return y;
}
// Layers before the target run in evaluation mode (the same function): backward never reaches them, so
// they need keep nothing.
template <class L, class B = typename L::backend_type>
nn::tensor_t<B> forward_keeping_nothing(L& layer, const nn::tensor_t<B>& x) {
  layer.set_mode(nn::mode::evaluation);
  auto y = layer.forward(x);
  layer.set_mode(nn::mode::inspection);
  return y;
}
template <std::size_t I, std::size_t J, std::size_t... Rest, class... L, class B>
nn::tensor_t<B> seq_forward_from(nn::seq<L...>& s, nn::tensor_t<B> x, capture<B>& c) {
  nn::tensor_t<B> y;
  if constexpr (J < I) y = forward_keeping_nothing(s.template get<J>(), x);
  else if constexpr (J == I) y = forward_at(s.template get<J>(), x, c, path<Rest...>{});
  else y = s.template get<J>().forward(x);
  if constexpr (J + 1 < sizeof...(L)) return seq_forward_from<I, J + 1, Rest...>(s, std::move(y), c);
  else return y;
}
template <class... L, std::size_t I, std::size_t... Rest, class B = typename nn::seq<L...>::backend_type>
nn::tensor_t<B> forward_at(nn::seq<L...>& s, const nn::tensor_t<B>& x, capture<B>& c, path<I, Rest...>) {
  static_assert(I < sizeof...(L), "microcount: gradcam path index past the end of a seq");
  return seq_forward_from<I, 0, Rest...>(s, x.share(), c);
}
template <class Inner, std::size_t I, std::size_t... Rest, class B = typename Inner::backend_type>
nn::tensor_t<B> forward_at(nn::skip_concat<Inner>& s, const nn::tensor_t<B>& x, capture<B>& c, path<I, Rest...>) {
  static_assert(I == 0, "microcount: skip_concat has one element (index 0, its inner layer)");
  return nn::concat_channels<B>(x, forward_at(s.inner, x, c, path<Rest...>{}));
}
template <class Inner, std::size_t I, std::size_t... Rest, class B = typename Inner::backend_type>
nn::tensor_t<B> forward_at(nn::residual<Inner>& s, const nn::tensor_t<B>& x, capture<B>& c, path<I, Rest...>) {
  static_assert(I == 0, "microcount: residual has one element (index 0, its inner layer)");
  return nn::add<B>(forward_at(s.inner, x, c, path<Rest...>{}), x);
}

// Backward from the output down to A only (what lies before A is not needed).
template <class L, class B = typename L::backend_type>
void backward_to(L&, const nn::tensor_t<B>& dy, capture<B>& c, path<>) {
  c.gradient = dy.clone();
}
template <std::size_t I, std::size_t J, std::size_t... Rest, class... L, class B>
void seq_backward_from(nn::seq<L...>& s, nn::tensor_t<B> dy, capture<B>& c) {
  if constexpr (J == I) backward_to(s.template get<J>(), dy, c, path<Rest...>{});
  else seq_backward_from<I, J - 1, Rest...>(s, s.template get<J>().backward(dy), c);
}
template <class... L, std::size_t I, std::size_t... Rest, class B = typename nn::seq<L...>::backend_type>
void backward_to(nn::seq<L...>& s, const nn::tensor_t<B>& dy, capture<B>& c, path<I, Rest...>) {
  seq_backward_from<I, sizeof...(L) - 1, Rest...>(s, dy.share(), c);
}
template <class Inner, std::size_t I, std::size_t... Rest, class B = typename Inner::backend_type>
void backward_to(nn::skip_concat<Inner>& s, const nn::tensor_t<B>& dy, capture<B>& c, path<I, Rest...>) {
  nn::tensor_t<B> d_skip, d_inner;  // the skip's share reaches x, which lies before A
  nn::split_channels<B>(dy, s.skip_channels, d_skip, d_inner);
  backward_to(s.inner, d_inner, c, path<Rest...>{});
}
template <class Inner, std::size_t I, std::size_t... Rest, class B = typename Inner::backend_type>
void backward_to(nn::residual<Inner>& s, const nn::tensor_t<B>& dy, capture<B>& c, path<I, Rest...>) {
  backward_to(s.inner, dy, c, path<Rest...>{});
}

// Path concatenation and the default targets.
template <class A, class B>
struct join;
template <std::size_t... I, std::size_t... J>
struct join<path<I...>, path<J...>> {
  using type = path<I..., J...>;
};
// Descends through U-Net levels seq<block, skip_concat<seq<pool, deeper, up>>, block> to the deepest one.
template <class L>
struct deepest_level {
  using type = path<>;
};
template <class Block, class Pool, class Deeper, class Up, class Block2>
struct deepest_level<nn::seq<Block, nn::skip_concat<nn::seq<Pool, Deeper, Up>>, Block2>> {
  using type = typename join<path<1, 0, 1>, typename deepest_level<Deeper>::type>::type;
};

// One level down: seq<block, skip_concat<seq<pool, deeper, up>>, block> -> the deeper level's output.
template <class L>
struct next_level {
  using type = path<>;
};
template <class Block, class Pool, class Deeper, class Up, class Block2>
struct next_level<nn::seq<Block, nn::skip_concat<nn::seq<Pool, Deeper, Up>>, Block2>> {
  using type = path<1, 0, 1>;
};

template <class Model>
struct mode_guard {
  Model& model;
  nn::mode saved;
  explicit mode_guard(Model& m) : model(m), saved(m.get_mode()) {}
  ~mode_guard() { model.set_mode(saved); }
  mode_guard(const mode_guard&) = delete;
  mode_guard& operator=(const mode_guard&) = delete;
};

}  // namespace detail

// The named targets of a seq-composed model: element 0 of the top-level seq is the body (U-Net levels,
// regressor trunk), the rest is the head.
template <class Model>
  requires detail::seq_model<Model>
struct targets {
  using body = std::tuple_element_t<0, decltype(detail::seq_of<Model>::layers)>;
  using features = path<0>;
  using decoder = typename detail::join<path<0>, typename detail::next_level<body>::type>::type;
  using bottleneck = typename detail::join<path<0>, typename detail::deepest_level<body>::type>::type;
};

// What the network computes at a target for one image, in inspection mode.
template <class B>
struct activation_gradient {
  nn::tensor_t<B> activation;  // A [1, K, h, w]
  nn::tensor_t<B> gradient;    // ∂score/∂A [1, K, h, w]
  nn::tensor_t<B> output;      // the network output (evaluation-mode function)
};

// Runs net on x [1, C, H, W] in inspection mode, keeps the output A of the layer at Path and returns
// A, ∂score/∂A (score given by its output gradient) and the output; restores the model's mode.
template <class Path, class Model, class ScoreGradient, class B = typename Model::backend_type>
  requires detail::seq_model<Model>
activation_gradient<B> activation_and_gradient(Model& net, const nn::tensor_t<B>& x, ScoreGradient&& score_gradient) {
  static_assert(std::is_invocable_r_v<nn::tensor_t<B>, ScoreGradient&, const nn::tensor_t<B>&>,
                "microcount: the score is given as f(output) -> d score / d output (same shape)");
  static_assert(Path::depth >= 1, "microcount: gradcam needs a target layer inside the model (a non-empty path)");
  require(x.rank() >= 3 && x.dim(0) == 1, "gradcam", "expects one image [1, C, H, W], got " + x.shape().str());
  detail::mode_guard<Model> guard(net);
  // A model with its own forward (e.g. per-input settings) runs it first, so the walk below sees them.
  if constexpr (detail::own_forward<Model>) {
    net.set_mode(nn::mode::evaluation);
    (void)net.forward(x);
  }
  net.set_mode(nn::mode::inspection);
  detail::capture<B> c;
  auto& as_seq = detail::as_seq(net);
  activation_gradient<B> out;
  out.output = detail::forward_at(as_seq, x, c, Path{});
  require(c.activation.rank() >= 3, "gradcam",
          "the target layer " + Path::str() + " has output " + c.activation.shape().str() +
              ", not a feature map [1, K, spatial...]");
  auto dy = score_gradient(out.output);
  require(dy.shape() == out.output.shape(), "gradcam",
          "the score gradient has shape " + dy.shape().str() + ", expected the output's " + out.output.shape().str());
  detail::backward_to(as_seq, dy, c, Path{});
  out.activation = std::move(c.activation);
  out.gradient = std::move(c.gradient);
  return out;
}

// The Grad-CAM of one activation / gradient pair.
struct gradcam_result {
  xt::xtensor<float, 2> map;     // [H, W] upsampled (and normalised if asked)
  xt::xtensor<float, 2> coarse;  // [h, w] ReLU(Σ α_k A_k) at the target's resolution, not normalised
  std::vector<double> alpha;     // [K] channel weights: spatial means of ∂score/∂A_k
};

// Bilinear resampling with half-pixel centres (PyTorch's interpolate(align_corners=False), OpenCV's resize).
inline xt::xtensor<float, 2> upsample_bilinear(const xt::xtensor<float, 2>& in, std::size_t height, std::size_t width) {
  const std::size_t h = in.shape(0), w = in.shape(1);
  xt::xtensor<float, 2> out = xt::zeros<float>({height, width});  // [H, W]
  auto source = [](std::size_t i, std::size_t n_in, std::size_t n_out, std::size_t& i0, std::size_t& i1, double& t) {
    const double s = std::max(0.0, (double(i) + 0.5) * double(n_in) / double(n_out) - 0.5);
    i0 = std::min(static_cast<std::size_t>(s), n_in - 1);
    i1 = std::min(i0 + 1, n_in - 1);
    t = s - double(i0);
  };
  for (std::size_t y = 0; y < height; ++y) {
    std::size_t y0, y1;
    double ty;
    source(y, h, height, y0, y1, ty);
    for (std::size_t x = 0; x < width; ++x) {
      std::size_t x0, x1;
      double tx;
      source(x, w, width, x0, x1, tx);
      const double top = (1 - tx) * in(y0, x0) + tx * in(y0, x1), bottom = (1 - tx) * in(y1, x0) + tx * in(y1, x1);
      out(y, x) = static_cast<float>((1 - ty) * top + ty * bottom);
    }
  }
  return out;
}

// α, the coarse map, and the map at height × width. A and dA are [1, K, h, w].
template <class B>
gradcam_result gradcam_from(const nn::tensor_t<B>& activation, const nn::tensor_t<B>& gradient, std::size_t height,
                            std::size_t width, bool normalize = true) {
  require(activation.rank() == 4 && activation.dim(0) == 1 && gradient.shape() == activation.shape(), "gradcam",
          "needs a 2D feature map A [1, K, h, w] and its gradient of the same shape, got " + activation.shape().str() +
              " and " + gradient.shape().str());
  const index_t channels = activation.dim(1), h = activation.dim(2), w = activation.dim(3), plane = h * w;
  const std::vector<scalar_t<B>> act = activation.to_vector(), grad = gradient.to_vector();  // [K·h·w] on the host
  gradcam_result r;
  r.alpha.assign(static_cast<std::size_t>(channels), 0.0);
  std::vector<double> cam(static_cast<std::size_t>(plane), 0.0);  // [h·w]
  for (index_t k = 0; k < channels; ++k) {
    double sum = 0;
    for (index_t i = 0; i < plane; ++i) sum += grad[static_cast<std::size_t>(k * plane + i)];
    const double a = sum / double(plane);
    r.alpha[static_cast<std::size_t>(k)] = a;
    for (index_t i = 0; i < plane; ++i) cam[static_cast<std::size_t>(i)] += a * act[static_cast<std::size_t>(k * plane + i)];
  }
  r.coarse = xt::zeros<float>({static_cast<std::size_t>(h), static_cast<std::size_t>(w)});  // [h, w]
  for (index_t i = 0; i < plane; ++i) r.coarse.data()[i] = static_cast<float>(std::max(0.0, cam[static_cast<std::size_t>(i)]));
  r.map = upsample_bilinear(r.coarse, height, width);  // [H, W]
  if (normalize) {
    const auto [lo, hi] = std::minmax_element(r.map.begin(), r.map.end());
    const float low = *lo, range = *hi - *lo;
    for (auto& v : r.map) v = range > 0 ? (v - low) / range : 0.0f;
  }
  return r;
}

// Grad-CAM at a compile-time target path; x is one image [1, C, H, W].
template <class Path, class Model, class ScoreGradient, class B = typename Model::backend_type>
  requires detail::seq_model<Model>
gradcam_result gradcam_at_details(Model& net, const nn::tensor_t<B>& x, ScoreGradient&& score_gradient, bool normalize = true) {
  require(x.rank() == 4, "gradcam", "maps are for 2D images [1, C, H, W], got " + x.shape().str());
  auto ag = activation_and_gradient<Path>(net, x, score_gradient);
  require(ag.activation.rank() == 4, "gradcam",
          "the target layer " + Path::str() + " gives " + ag.activation.shape().str() + ", not a 2D feature map");
  return gradcam_from<B>(ag.activation, ag.gradient, static_cast<std::size_t>(x.dim(2)),
                         static_cast<std::size_t>(x.dim(3)), normalize);
}
template <class Path, class Model, class ScoreGradient, class B = typename Model::backend_type>
  requires detail::seq_model<Model>
xt::xtensor<float, 2> gradcam_at(Model& net, const nn::tensor_t<B>& x, ScoreGradient&& score_gradient, bool normalize = true) {
  return gradcam_at_details<Path>(net, x, score_gradient, normalize).map;
}

// Grad-CAM at a named target (options.layer); the map is [H, W], in [0, 1] when options.normalize.
template <class Model, class ScoreGradient, class B = typename Model::backend_type>
  requires detail::seq_model<Model>
gradcam_result gradcam_details(Model& net, const nn::tensor_t<B>& x, ScoreGradient&& score_gradient, gradcam_options options = {}) {
  switch (options.layer) {
    case target::decoder: return gradcam_at_details<typename targets<Model>::decoder>(net, x, score_gradient, options.normalize);
    case target::bottleneck: return gradcam_at_details<typename targets<Model>::bottleneck>(net, x, score_gradient, options.normalize);
    case target::features: break;
  }
  return gradcam_at_details<typename targets<Model>::features>(net, x, score_gradient, options.normalize);
}
template <class Model, class ScoreGradient, class B = typename Model::backend_type>
  requires detail::seq_model<Model>
xt::xtensor<float, 2> gradcam(Model& net, const nn::tensor_t<B>& x, ScoreGradient&& score_gradient, gradcam_options options = {}) {
  return gradcam_details(net, x, score_gradient, options).map;
}

// Grad-CAM of class `class_index` for a head: density (sum of the map), detection (sum of σ(logits)),
// regression (the class's count).
template <class Model, class B = typename Model::backend_type>
  requires detail::seq_model<Model>
xt::xtensor<float, 2> gradcam_for_class(Model& net, const nn::tensor_t<B>& x, head_kind head, index_t class_index,
                                        gradcam_options options = {}) {
  switch (head) {
    case head_kind::density: return gradcam(net, x, score::channel_sum{class_index}, options);
    case head_kind::detection: return gradcam(net, x, score::sigmoid_sum{class_index}, options);
    case head_kind::regression: return gradcam(net, x, score::count{class_index}, options);
  }
  throw error("gradcam", "unknown head kind");
}

}  // namespace microcount::explain
