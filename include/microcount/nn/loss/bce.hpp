#pragma once
// Binary cross-entropy on logits, numerically stable, with an optional weight on positives.
//   ℓ(x, t) = (1 − t)·x + w_t·softplus(−x),   w_t = 1 + (pos_weight − 1)·t,
//   softplus(−x) = max(−x, 0) + log(1 + exp(−|x|))
// which for pos_weight = 1 is max(x, 0) − x·t + log(1 + exp(−|x|)). L = mean over all elements.
//   dℓ/dx = (1 − t) − w_t·σ(−x)      (= σ(x) − t for pos_weight = 1)
// Targets may be soft (any value in [0, 1]). pos_weight: empty (all 1), one value, or one value per
// channel (axis 1). PyTorch: F.binary_cross_entropy_with_logits(x, t, pos_weight=w.view(C, 1, 1)).
#include <string>
#include <string_view>
#include <vector>

#include "microcount/nn/loss/common.hpp"

namespace microcount::nn {

namespace loss_detail {
template <class T>
struct bce_logits_body {
  T pos_weight, scale;
  template <class V>
  MICROCOUNT_HOST_DEVICE void operator()(V& g, V& e, const V& x, const V& t) const {
    using namespace microcount::math;
    using namespace microcount::nn::loss_math;
    const V softplus_neg = max(-x, V(0)) + log1p(exp(-abs(x)));  // log(1 + exp(−x)) without overflow
    const V weight = V(1) + (V(pos_weight) - V(1)) * t;
    const V sigmoid_neg = V(1) / (V(1) + exp(x));                  // σ(−x)
    e = (V(1) - t) * x + weight * softplus_neg;
    g = V(scale) * ((V(1) - t) - weight * sigmoid_neg);
  }
};
}  // namespace loss_detail

struct bce_with_logits_loss {
  static constexpr std::string_view kind = "bce_with_logits";
  std::vector<double> pos_weight;  // empty: 1; one value; or one per channel

  template <class T, class B>
  loss_result<T, B> evaluate(const tensor<T, B>& logits, const tensor<T, B>& target) const {
    loss_detail::require_same_shape(logits.shape(), target.shape(), kind, "target");
    for (double w : pos_weight) require(w >= 0 && std::isfinite(w), kind, "pos_weight must be finite and ≥ 0");
    const index_t m = logits.size();
    loss_result<T, B> r{0.0, tensor<T, B>(logits.shape())};
    if (m == 0) return r;
    tensor<T, B> losses(logits.shape());  // per-element ℓ
    const T scale = static_cast<T>(1.0 / static_cast<double>(m));
    if (pos_weight.size() <= 1) {
      const T w = static_cast<T>(pos_weight.empty() ? 1.0 : pos_weight[0]);
      for_each<B>(m, loss_detail::bce_logits_body<T>{w, scale}, r.gradient.data(), losses.data(), logits.data(),
                  target.data());
    } else {
      const auto l = loss_detail::channels_of(logits.shape(), kind);
      require(static_cast<index_t>(pos_weight.size()) == l.channels, kind,
              std::to_string(pos_weight.size()) + " pos_weight values for " + std::to_string(l.channels) + " channels");
      loss_detail::for_each_block(l, [&](index_t n, index_t c) {
        const index_t o = l.offset(n, c);
        for_each<B>(l.inner, loss_detail::bce_logits_body<T>{static_cast<T>(pos_weight[c]), scale}, r.gradient.data() + o,
                    losses.data() + o, logits.data() + o, target.data() + o);
      });
    }
    r.value = loss_detail::total_sum(losses) / static_cast<double>(m);
    return r;
  }

  template <class T, class B>
  double value(const tensor<T, B>& logits, const tensor<T, B>& target) const { return evaluate(logits, target).value; }
  template <class T, class B>
  tensor<T, B> gradient(const tensor<T, B>& logits, const tensor<T, B>& target) const {
    return evaluate(logits, target).gradient;
  }
};

}  // namespace microcount::nn
