#pragma once
// Tversky loss (Salehi et al. 2017), per class, averaged over classes; Dice is alpha = beta = 0.5.
// It takes LOGITS by default and applies the activation itself, so its gradient is dL/dlogits:
//   softmax (default): classes are the channels of [N, C, ...], p = softmax(x) over axis 1; the target is a
//                      one-hot / soft map of the same shape or a class-index map [N, ...] / [N, 1, ...]
//                      (negative labels: pixels left out of every sum)
//   sigmoid:           each channel is its own binary class, p = σ(x); target of the same shape in [0, 1]
//   none:              the prediction already holds probabilities; the gradient is dL/dp
// Per class c, summed over the batch and all pixels (one batch-global score per class):
//   TP = Σ p·t,  FP = Σ p·(1 − t),  FN = Σ (1 − p)·t
//   TI_c = (TP + smooth) / (TP + alpha·FP + beta·FN + smooth),   L = 1 − (1/C) Σ_c TI_c
// alpha weighs false positives, beta false negatives (as in segmentation_models_pytorch's TverskyLoss).
// A class with TP + alpha·FP + beta·FN + smooth = 0 scores TI = 1 and contributes no gradient.
#include <string>
#include <string_view>
#include <vector>

#include "microcount/nn/loss/common.hpp"

namespace microcount::nn {

namespace loss_detail {
// dL/dp for one class: −(1/C)·(a·t + b)·valid, with a, b the class's constants (see tversky_loss::evaluate).
template <class T>
struct tversky_gradient_body {
  T a, b;
  template <class V>
  MICROCOUNT_HOST_DEVICE void operator()(V& g, const V& t) const { g = V(a) * t + V(b); }
};
}  // namespace loss_detail

struct tversky_loss {
  static constexpr std::string_view kind = "tversky";
  enum class activation { softmax, sigmoid, none };

  activation over = activation::softmax;
  double alpha = 0.5;   // weight of false positives
  double beta = 0.5;    // weight of false negatives
  double smooth = 1.0;  // added to numerator and denominator

  static tversky_loss dice(activation a = activation::softmax, double smooth = 1.0) { return {a, 0.5, 0.5, smooth}; }

  template <class T, class B>
  loss_result<T, B> evaluate(const tensor<T, B>& prediction, const tensor<T, B>& target) const {
    require(alpha >= 0 && beta >= 0 && smooth >= 0 && std::isfinite(alpha + beta + smooth), kind,
            "alpha, beta and smooth must be finite and ≥ 0");
    const auto l = loss_detail::channels_of(prediction.shape(), kind);
    if (over == activation::softmax)
      require(l.channels >= 2, kind, "softmax over channels needs at least 2 channels, got " + prediction.shape().str());
    loss_detail::one_hot_targets<T, B> labels;
    const tensor<T, B>* t = &target;
    if (over == activation::softmax && loss_detail::is_label_map(prediction.shape(), target.shape())) {
      labels = loss_detail::to_one_hot<B>(target, prediction.shape(), l, kind);
      t = &labels.one_hot;
    } else {
      loss_detail::require_same_shape(prediction.shape(), target.shape(), kind, "target");
    }
    const index_t m = prediction.size();
    loss_result<T, B> r{0.0, tensor<T, B>(prediction.shape())};
    if (m == 0) return r;

    // Probabilities.
    tensor<T, B> p_owned;
    const tensor<T, B>* p = &prediction;
    if (over == activation::softmax) {
      p_owned = loss_detail::softmax_over_channels<B>(prediction, l);
      p = &p_owned;
    } else if (over == activation::sigmoid) {
      p_owned = tensor<T, B>(prediction.shape());
      for_each<B>(m, loss_detail::sigmoid_body{}, p_owned.data(), prediction.data());
      p = &p_owned;
    }
    // Ignored pixels (label < 0) leave every sum: p is masked for the sums, t is already 0 there.
    tensor<T, B> p_masked;
    const tensor<T, B>* p_sum = p;
    if (labels.any_ignored) {
      p_masked = tensor<T, B>(prediction.shape());
      loss_detail::for_each_block(l, [&](index_t n, index_t c) {
        const index_t o = l.offset(n, c);
        for_each<B>(l.inner, loss_detail::multiply_body{}, p_masked.data() + o, p->data() + o,
                    static_cast<const T*>(labels.valid.data() + n * l.inner));
      });
      p_sum = &p_masked;
    }
    tensor<T, B> pt(prediction.shape());  // p·t
    for_each<B>(m, loss_detail::multiply_body{}, pt.data(), p_sum->data(), t->data());
    const std::vector<double> tp = loss_detail::channel_sums<B>(pt.data(), l);          // [C] Σ p·t
    const std::vector<double> sum_p = loss_detail::channel_sums<B>(p_sum->data(), l);   // [C] Σ p
    const std::vector<double> sum_t = loss_detail::channel_sums<B>(t->data(), l);       // [C] Σ t

    // TI = num/den, num = TP + s, den = TP + α(Σp − TP) + β(Σt − TP) + s. Per element
    //   ∂TI/∂p = t·(den − num(1 − α − β))/den² − num·α/den²,  so  dL/dp = −(1/C)(a_c·t + b_c).
    const double classes = static_cast<double>(l.channels);
    std::vector<double> a(l.channels), b(l.channels);
    double score = 0;
    for (index_t c = 0; c < l.channels; ++c) {
      const double num = tp[c] + smooth;
      const double den = tp[c] + alpha * (sum_p[c] - tp[c]) + beta * (sum_t[c] - tp[c]) + smooth;
      if (den <= 0) {  // an empty class with smooth = 0: a perfect (vacuous) score
        score += 1;
        a[c] = b[c] = 0;
        continue;
      }
      score += num / den;
      a[c] = -(den - num * (1 - alpha - beta)) / (den * den) / classes;
      b[c] = num * alpha / (den * den) / classes;
    }
    r.value = 1.0 - score / classes;

    loss_detail::for_each_block(l, [&](index_t n, index_t c) {
      const index_t o = l.offset(n, c);
      for_each<B>(l.inner, loss_detail::tversky_gradient_body<T>{static_cast<T>(a[c]), static_cast<T>(b[c])},
                  r.gradient.data() + o, t->data() + o);
      if (labels.any_ignored)
        for_each<B>(l.inner, loss_detail::scale_in_place_body{}, r.gradient.data() + o,
                    static_cast<const T*>(labels.valid.data() + n * l.inner));
    });
    if (over == activation::softmax) loss_detail::softmax_backward<B>(r.gradient, *p, l);
    if (over == activation::sigmoid) for_each<B>(m, loss_detail::sigmoid_backward_body{}, r.gradient.data(), p->data());
    return r;
  }

  template <class T, class B>
  double value(const tensor<T, B>& prediction, const tensor<T, B>& target) const {
    return evaluate(prediction, target).value;
  }
  template <class T, class B>
  tensor<T, B> gradient(const tensor<T, B>& prediction, const tensor<T, B>& target) const {
    return evaluate(prediction, target).gradient;
  }
};

}  // namespace microcount::nn
