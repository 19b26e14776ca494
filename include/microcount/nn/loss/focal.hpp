#pragma once
// Focal loss on logits (Lin et al. 2017), with soft targets, in two forms.
//
// sigmoid (binary, or independent per channel): prediction x and target t of the same shape, t ∈ [0, 1].
//   p = σ(x),  ce = max(x, 0) − x·t + log(1 + exp(−|x|)),  q = 1 − p_t = t·(1 − p) + (1 − t)·p
//   ℓ = α_t · ce · q^γ,   α_t = α·t + (1 − α)·(1 − t)  (α_t = 1 when alpha < 0)
//   L = mean over all elements.  PyTorch: torchvision.ops.sigmoid_focal_loss(x, t, alpha, gamma, "mean").
//
// softmax (multi-class over channel axis 1 of [N, C, ...], C ≥ 2), with either
//   - a target of the prediction's shape: a one-hot or soft distribution t_c per pixel, or
//   - a class-index map [N, ...] or [N, 1, ...] holding 0 … C−1 (negative = ignore the pixel).
//   p = softmax(x) over channels,  ℓ(pixel) = −Σ_c w_c · t_c · (1 − p_c)^γ · log p_c
//   L = mean over the pixels (N × spatial), ignored pixels left out.  w_c = class_weights (default 1).
//   γ = 0 and no weights: PyTorch F.cross_entropy(x, labels) or F.cross_entropy(x, probabilities).
#include <string>
#include <string_view>
#include <vector>

#include "microcount/nn/loss/common.hpp"

namespace microcount::nn {

namespace loss_detail {

// The smallest 1 − p_t fed to pow: keeps q^(γ−1) finite for 0 ≤ γ < 1 (the factor it multiplies vanishes
// there) and q^0 = 1 (a pow with a zero base is 0 in some SIMD libraries).
inline constexpr double focal_floor = 1e-30;

template <class T>
struct sigmoid_focal_body {
  T alpha, gamma, scale;
  bool weighted;  // alpha ≥ 0
  template <class V>
  MICROCOUNT_HOST_DEVICE void operator()(V& g, V& e, const V& x, const V& t) const {
    using namespace microcount::math;
    using namespace microcount::nn::loss_math;
    const V ex = exp(-abs(x));
    const V ce = max(x, V(0)) - x * t + log1p(ex);
    const V p = V(1) / (V(1) + exp(-x));         // σ(x)
    const V p_neg = V(1) / (V(1) + exp(x));      // σ(−x) = 1 − p, accurate when p → 1
    const V q = max(t * p_neg + (V(1) - t) * p, V(T(focal_floor)));
    const V modulator = pow(q, V(gamma));
    // dq/dx = −p(1 − p)(2t − 1);  d(q^γ)/dx = γ q^(γ−1) dq/dx
    const V dmodulator = V(gamma) * pow(q, V(gamma - T(1))) * (-(p * p_neg) * (V(2) * t - V(1)));
    const V weight = weighted ? V(alpha) * t + V(T(1) - alpha) * (V(1) - t) : V(1);
    e = weight * ce * modulator;
    g = V(scale) * weight * ((p - t) * modulator + ce * dmodulator);
  }
};

// Per class c of the softmax form, with lse the per-pixel log-sum-exp:
//   p = exp(x − lse), u_c = p_c·∂ℓ/∂p_c = w_c t_c [γ (1 − p_c)^(γ−1) p_c log p_c − (1 − p_c)^γ]
//   e += −w_c t_c (1 − p_c)^γ log p_c;  u_sum += u_c;  g_c = u_c (made dL/dx by softmax_focal_finish_body)
template <class T>
struct softmax_focal_body {
  T weight, gamma;
  template <class V>
  MICROCOUNT_HOST_DEVICE void operator()(V& u, V& e, V& u_sum, const V& x, const V& lse, const V& t) const {
    using namespace microcount::math;
    const V log_p = x - lse;
    const V p = exp(log_p);
    const V q = max(V(1) - p, V(T(focal_floor)));
    const V wt = V(weight) * t;
    const V modulator = pow(q, V(gamma));
    u = wt * (V(gamma) * pow(q, V(gamma - T(1))) * p * log_p - modulator);
    e = e - wt * modulator * log_p;
    u_sum = u_sum + u;
  }
};
// dL/dx_c = scale·(u_c − p_c Σ_k u_k)
template <class T>
struct softmax_focal_finish_body {
  T scale;
  template <class V>
  MICROCOUNT_HOST_DEVICE void operator()(V& g, const V& x, const V& lse, const V& u_sum) const {
    using namespace microcount::math;
    g = V(scale) * (g - exp(x - lse) * u_sum);
  }
};

}  // namespace loss_detail

struct focal_loss {
  static constexpr std::string_view kind = "focal";
  enum class activation { sigmoid, softmax };

  activation over = activation::sigmoid;
  double alpha = 0.25;                // sigmoid form: weight of positives (torchvision); < 0 disables
  double gamma = 2.0;                 // focusing exponent, ≥ 0 (0 gives cross-entropy)
  std::vector<double> class_weights;  // softmax form: w_c per class; empty = all 1

  template <class T, class B>
  loss_result<T, B> evaluate(const tensor<T, B>& logits, const tensor<T, B>& target) const {
    require(gamma >= 0 && std::isfinite(gamma), kind, "gamma must be finite and ≥ 0");
    return over == activation::sigmoid ? evaluate_sigmoid(logits, target) : evaluate_softmax(logits, target);
  }
  template <class T, class B>
  double value(const tensor<T, B>& logits, const tensor<T, B>& target) const { return evaluate(logits, target).value; }
  template <class T, class B>
  tensor<T, B> gradient(const tensor<T, B>& logits, const tensor<T, B>& target) const {
    return evaluate(logits, target).gradient;
  }

 private:
  template <class T, class B>
  loss_result<T, B> evaluate_sigmoid(const tensor<T, B>& logits, const tensor<T, B>& target) const {
    loss_detail::require_same_shape(logits.shape(), target.shape(), "focal (sigmoid)", "target");
    const index_t m = logits.size();
    loss_result<T, B> r{0.0, tensor<T, B>(logits.shape())};
    if (m == 0) return r;
    tensor<T, B> losses(logits.shape());  // per-element ℓ
    const loss_detail::sigmoid_focal_body<T> body{static_cast<T>(alpha), static_cast<T>(gamma),
                                                 static_cast<T>(1.0 / static_cast<double>(m)), alpha >= 0};
    for_each<B>(m, body, r.gradient.data(), losses.data(), logits.data(), target.data());
    r.value = loss_detail::total_sum(losses) / static_cast<double>(m);
    return r;
  }

  template <class T, class B>
  loss_result<T, B> evaluate_softmax(const tensor<T, B>& logits, const tensor<T, B>& target) const {
    constexpr std::string_view who = "focal (softmax)";
    const auto l = loss_detail::channels_of(logits.shape(), who);
    require(l.channels >= 2, who, "needs at least 2 channels (classes), got " + logits.shape().str());
    require(class_weights.empty() || static_cast<index_t>(class_weights.size()) == l.channels, who,
            std::to_string(class_weights.size()) + " class weights for " + std::to_string(l.channels) + " classes");
    // The per-pixel target distribution, and how many pixels the mean runs over.
    loss_detail::one_hot_targets<T, B> labels;
    const tensor<T, B>* t = &target;
    index_t pixels = l.outer * l.inner;
    if (loss_detail::is_label_map(logits.shape(), target.shape())) {
      labels = loss_detail::to_one_hot<B>(target, logits.shape(), l, who);
      t = &labels.one_hot;
      pixels = labels.used;
    } else {
      loss_detail::require_same_shape(logits.shape(), target.shape(), who,
                                      "target (expected the same shape, or a class-index map [N, ...])");
    }
    loss_result<T, B> r{0.0, tensor<T, B>(logits.shape())};
    if (pixels == 0) {
      r.gradient.fill_zero();
      return r;
    }
    const tensor<T, B> lse = loss_detail::log_sum_exp_over_channels<B>(logits, l);  // [N, S]
    tensor<T, B> losses = tensor<T, B>::zeros(shape{l.outer, l.inner});             // [N, S] per-pixel ℓ
    tensor<T, B> u_sum = tensor<T, B>::zeros(shape{l.outer, l.inner});              // [N, S] Σ_c u_c
    loss_detail::for_each_block(l, [&](index_t n, index_t c) {
      const index_t o = l.offset(n, c), p = n * l.inner;
      const loss_detail::softmax_focal_body<T> body{static_cast<T>(class_weights.empty() ? 1.0 : class_weights[c]),
                                                   static_cast<T>(gamma)};
      for_each<B>(l.inner, body, r.gradient.data() + o, losses.data() + p, u_sum.data() + p, logits.data() + o,
                  lse.data() + p, t->data() + o);
    });
    const loss_detail::softmax_focal_finish_body<T> finish{static_cast<T>(1.0 / static_cast<double>(pixels))};
    loss_detail::for_each_block(l, [&](index_t n, index_t c) {
      const index_t o = l.offset(n, c), p = n * l.inner;
      for_each<B>(l.inner, finish, r.gradient.data() + o, logits.data() + o, lse.data() + p,
                  static_cast<const T*>(u_sum.data() + p));
    });
    r.value = loss_detail::total_sum(losses) / static_cast<double>(pixels);
    return r;
  }
};

}  // namespace microcount::nn
