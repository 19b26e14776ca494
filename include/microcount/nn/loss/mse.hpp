#pragma once
// Mean squared error, and its masked form (the Noise2Void loss).
//   L = 1/M Σ_i (p_i − t_i)²                         over all M elements
//   L = 1/|K| Σ_{i∈K} (p_i − t_i)²,  K = {i : mask_i > 0}   (masked; 0 with zero gradient when K is empty)
// PyTorch: F.mse_loss(p, t); masked: F.mse_loss(p[mask > 0], t[mask > 0]).
#include <string_view>

#include "microcount/nn/loss/common.hpp"

namespace microcount::nn {

namespace loss_detail {
template <class T>
struct squared_error_body {  // d = p − t;  e = d²;  g = (2/M)·d
  T scale;
  template <class V>
  MICROCOUNT_HOST_DEVICE void operator()(V& g, V& e, const V& p, const V& t) const {
    const V d = p - t;
    e = d * d;
    g = V(scale) * d;
  }
};
struct mask_weight_body {  // w = [mask > 0]
  template <class V>
  MICROCOUNT_HOST_DEVICE void operator()(V& w, const V& mask) const {
    using namespace microcount::math;
    w = select(mask > V(0), V(1), V(0));
  }
};
template <class T>
struct masked_squared_error_body {  // w = [mask > 0];  d = w·(p − t);  e = d²;  g = (2/|K|)·d
  T scale;
  template <class V>
  MICROCOUNT_HOST_DEVICE void operator()(V& g, V& e, const V& p, const V& t, const V& mask) const {
    using namespace microcount::math;
    const V d = select(mask > V(0), p - t, V(0));
    e = d * d;
    g = V(scale) * d;
  }
};
}  // namespace loss_detail

struct mse_loss {
  static constexpr std::string_view kind = "mse";

  template <class T, class B>
  loss_result<T, B> evaluate(const tensor<T, B>& prediction, const tensor<T, B>& target) const {
    loss_detail::require_same_shape(prediction.shape(), target.shape(), kind, "target");
    const index_t m = prediction.size();
    loss_result<T, B> r{0.0, tensor<T, B>(prediction.shape())};
    if (m == 0) return r;
    tensor<T, B> squares(prediction.shape());  // per-element (p − t)²
    for_each<B>(m, loss_detail::squared_error_body<T>{static_cast<T>(2.0 / static_cast<double>(m))}, r.gradient.data(),
                squares.data(), prediction.data(), target.data());
    r.value = loss_detail::total_sum(squares) / static_cast<double>(m);
    return r;
  }

  // Masked MSE: the mean over the elements whose mask is > 0. mask has the prediction's shape.
  template <class T, class B>
  loss_result<T, B> evaluate(const tensor<T, B>& prediction, const tensor<T, B>& target, const tensor<T, B>& mask) const {
    loss_detail::require_same_shape(prediction.shape(), target.shape(), "masked mse", "target");
    loss_detail::require_same_shape(prediction.shape(), mask.shape(), "masked mse", "mask");
    const index_t m = prediction.size();
    loss_result<T, B> r{0.0, tensor<T, B>(prediction.shape())};
    tensor<T, B> squares(prediction.shape());  // first the mask weights, then per-element w·(p − t)²
    for_each<B>(m, loss_detail::mask_weight_body{}, squares.data(), mask.data());
    const double count = m ? loss_detail::total_sum(squares) : 0.0;
    if (count == 0) {
      r.gradient.fill_zero();
      return r;
    }
    for_each<B>(m, loss_detail::masked_squared_error_body<T>{static_cast<T>(2.0 / count)}, r.gradient.data(), squares.data(),
                prediction.data(), target.data(), mask.data());
    r.value = loss_detail::total_sum(squares) / count;
    return r;
  }

  template <class T, class B, class... Mask>
  double value(const tensor<T, B>& prediction, const tensor<T, B>& target, const Mask&... mask) const {
    return evaluate(prediction, target, mask...).value;
  }
  template <class T, class B, class... Mask>
  tensor<T, B> gradient(const tensor<T, B>& prediction, const tensor<T, B>& target, const Mask&... mask) const {
    return evaluate(prediction, target, mask...).gradient;
  }
};

}  // namespace microcount::nn
