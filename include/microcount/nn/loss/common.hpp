#pragma once
// What the losses share: the result type and the loss concepts, the deterministic per-channel sum every
// loss (and the optimizers' gradient norm) reduces with, the [N, C, S] reading of an NC… tensor, class-index
// targets turned into one-hot maps, and a numerically stable softmax / sigmoid over the channel axis with
// their backward passes. Everything per element is a ONE-BODY functor run by for_each<B>; the only
// backend kernel is the sum (kernel<ops::channel_sum, B>, in backends/<name>/loss.hpp).
#include <cmath>
#include <concepts>
#include <string>
#include <string_view>
#include <vector>

#include "microcount/core/elementwise.hpp"
#include "microcount/core/error.hpp"
#include "microcount/core/tensor.hpp"
#include "microcount/nn/op.hpp"

namespace microcount::ops {

// Σ over the outer and inner axes of x read as [outer, channels, inner], one double per channel
// (of x² when `squares`). Accumulated in double in a fixed order, so the result does not depend on
// the number of threads.
//   kernel<channel_sum, B>::run(const channel_sum&, const T* x, index_t outer, index_t channels,
//                               index_t inner, double* out /* [channels], host memory */)
struct channel_sum {
  bool squares = false;
};

}  // namespace microcount::ops

namespace microcount::nn {

// A loss value and dL/dprediction (same shape as the prediction).
template <class T, class B>
struct loss_result {
  double value = 0;
  tensor<T, B> gradient;
};

// A loss is a struct of run-time parameters whose evaluate(prediction, target) returns both the value
// and the gradient; `kind` names it in logs and hyper-parameter files.
template <class L, class B>
concept loss_function = requires(const L& l, const tensor<scalar_t<B>, B>& p) {
  { l.evaluate(p, p) } -> std::same_as<loss_result<scalar_t<B>, B>>;
  { L::kind } -> std::convertible_to<std::string_view>;
};

// Scalar helpers the bodies use next to microcount::math (xsimd's versions come in by ADL).
namespace loss_math {
MICROCOUNT_HOST_DEVICE MICROCOUNT_INLINE float log1p(float x) { return ::log1pf(x); }
MICROCOUNT_HOST_DEVICE MICROCOUNT_INLINE double log1p(double x) { return ::log1p(x); }
}  // namespace loss_math

namespace loss_detail {

// An NC… tensor as [outer = N, channels = C, inner = Π spatial].
struct channel_layout {
  index_t outer = 1, channels = 1, inner = 1;
  [[nodiscard]] index_t size() const { return outer * channels * inner; }
  // First element of channel c of sample n.
  [[nodiscard]] index_t offset(index_t n, index_t c) const { return (n * channels + c) * inner; }
};

inline channel_layout channels_of(const shape& s, std::string_view who) {
  require(s.rank >= 2, who, "expects a prediction [N, C, ...] of rank 2 to 5, got " + s.str());
  return {s[0], s[1], s.size_from(2)};
}
inline channel_layout flat_layout(index_t n) { return {1, 1, n}; }

inline void require_same_shape(const shape& prediction, const shape& other, std::string_view who,
                               std::string_view what) {
  require(prediction == other, who,
          "prediction " + prediction.str() + " and " + std::string(what) + " " + other.str() + " differ in shape");
}

// Per-channel sums of x read through layout l: [l.channels] doubles.
template <class B, class T>
std::vector<double> channel_sums(const T* x, const channel_layout& l, bool squares = false) {
  require_op<ops::channel_sum, B>();
  std::vector<double> out(static_cast<std::size_t>(l.channels), 0.0);
  if (l.size() > 0) kernel<ops::channel_sum, B>::run(ops::channel_sum{squares}, x, l.outer, l.channels, l.inner, out.data());
  return out;
}

template <class T, class B>
double total_sum(const tensor<T, B>& x) {
  return channel_sums<B>(x.data(), flat_layout(x.size()))[0];
}

// Calls f(n, c) for every (sample, channel) block of a layout, in order.
template <class F>
void for_each_block(const channel_layout& l, F&& f) {
  for (index_t n = 0; n < l.outer; ++n)
    for (index_t c = 0; c < l.channels; ++c) f(n, c);
}

// ---- one-body functors ---------------------------------------------------------------------------

struct copy_body {
  template <class V>
  MICROCOUNT_HOST_DEVICE void operator()(V& y, const V& x) const { y = x; }
};
struct running_max_body {
  template <class V>
  MICROCOUNT_HOST_DEVICE void operator()(V& m, const V& x) const {
    using namespace microcount::math;
    m = max(m, x);
  }
};
struct accumulate_exp_body {  // z += exp(x − m)
  template <class V>
  MICROCOUNT_HOST_DEVICE void operator()(V& z, const V& x, const V& m) const {
    using namespace microcount::math;
    z = z + exp(x - m);
  }
};
struct log_sum_exp_body {  // m ← m + log z  (m: channel maximum, z: Σ exp(x − m))
  template <class V>
  MICROCOUNT_HOST_DEVICE void operator()(V& m, const V& z) const {
    using namespace microcount::math;
    m = m + log(z);
  }
};
struct softmax_body {  // p = exp(x − lse)
  template <class V>
  MICROCOUNT_HOST_DEVICE void operator()(V& p, const V& x, const V& lse) const {
    using namespace microcount::math;
    p = exp(x - lse);
  }
};
struct sigmoid_body {  // p = 1 / (1 + exp(−x)); exp overflow gives exactly 0, never NaN
  template <class V>
  MICROCOUNT_HOST_DEVICE void operator()(V& p, const V& x) const {
    using namespace microcount::math;
    p = V(1) / (V(1) + exp(-x));
  }
};
struct accumulate_product_body {  // s += a·b
  template <class V>
  MICROCOUNT_HOST_DEVICE void operator()(V& s, const V& a, const V& b) const { s = s + a * b; }
};
struct multiply_body {  // y = a·b
  template <class V>
  MICROCOUNT_HOST_DEVICE void operator()(V& y, const V& a, const V& b) const { y = a * b; }
};
struct scale_in_place_body {  // y ← y·w
  template <class V>
  MICROCOUNT_HOST_DEVICE void operator()(V& y, const V& w) const { y = y * w; }
};
struct softmax_backward_body {  // g ← p·(g − Σ_c g_c p_c): dL/dx from dL/dp through a softmax
  template <class V>
  MICROCOUNT_HOST_DEVICE void operator()(V& g, const V& p, const V& dot) const { g = p * (g - dot); }
};
struct sigmoid_backward_body {  // g ← g·p·(1 − p)
  template <class V>
  MICROCOUNT_HOST_DEVICE void operator()(V& g, const V& p) const { g = g * p * (V(1) - p); }
};
template <class T>
struct one_hot_body {  // t = [label == c]
  T c;
  template <class V>
  MICROCOUNT_HOST_DEVICE void operator()(V& t, const V& label) const {
    using namespace microcount::math;
    t = select(label == V(c), V(1), V(0));
  }
};
struct ignored_label_body {  // w = [label < 0]
  template <class V>
  MICROCOUNT_HOST_DEVICE void operator()(V& w, const V& label) const {
    using namespace microcount::math;
    w = select(label < V(0), V(1), V(0));
  }
};
struct complement_body {  // w ← 1 − w
  template <class V>
  MICROCOUNT_HOST_DEVICE void operator()(V& w) const { w = V(1) - w; }
};

// ---- channel-axis passes -------------------------------------------------------------------------

// lse[n, s] = log Σ_c exp(x[n, c, s]), with the channel maximum subtracted first.   x [N, C, S] -> [N, S]
template <class B, class T>
tensor<T, B> log_sum_exp_over_channels(const tensor<T, B>& x, const channel_layout& l) {
  tensor<T, B> lse(shape{l.outer, l.inner});  // [N, S]: the maximum, then the log-sum-exp
  tensor<T, B> z = tensor<T, B>::zeros(shape{l.outer, l.inner});  // [N, S]: Σ exp(x − max)
  for (index_t n = 0; n < l.outer; ++n) {
    T* m = lse.data() + n * l.inner;
    for_each<B>(l.inner, copy_body{}, m, x.data() + l.offset(n, 0));
    for (index_t c = 1; c < l.channels; ++c) for_each<B>(l.inner, running_max_body{}, m, x.data() + l.offset(n, c));
    T* zn = z.data() + n * l.inner;
    for (index_t c = 0; c < l.channels; ++c)
      for_each<B>(l.inner, accumulate_exp_body{}, zn, x.data() + l.offset(n, c), static_cast<const T*>(m));
    for_each<B>(l.inner, log_sum_exp_body{}, m, static_cast<const T*>(zn));
  }
  return lse;
}

// Softmax over the channel axis.   x [N, C, ...] -> p [N, C, ...]
template <class B, class T>
tensor<T, B> softmax_over_channels(const tensor<T, B>& x, const channel_layout& l) {
  const tensor<T, B> lse = log_sum_exp_over_channels<B>(x, l);  // [N, S]
  tensor<T, B> p(x.shape());
  for_each_block(l, [&](index_t n, index_t c) {
    for_each<B>(l.inner, softmax_body{}, p.data() + l.offset(n, c), x.data() + l.offset(n, c), lse.data() + n * l.inner);
  });
  return p;
}

// g holds dL/dp for p = softmax(x) over channels; turns it, in place, into dL/dx.
template <class B, class T>
void softmax_backward(tensor<T, B>& g, const tensor<T, B>& p, const channel_layout& l) {
  tensor<T, B> dot = tensor<T, B>::zeros(shape{l.outer, l.inner});  // [N, S]: Σ_c g_c p_c
  for_each_block(l, [&](index_t n, index_t c) {
    for_each<B>(l.inner, accumulate_product_body{}, dot.data() + n * l.inner,
                static_cast<const T*>(g.data() + l.offset(n, c)), p.data() + l.offset(n, c));
  });
  for_each_block(l, [&](index_t n, index_t c) {
    for_each<B>(l.inner, softmax_backward_body{}, g.data() + l.offset(n, c), p.data() + l.offset(n, c),
                static_cast<const T*>(dot.data() + n * l.inner));
  });
}

// Class-index targets as one-hot maps. labels [N, S...] or [N, 1, S...] hold 0 … C−1 (as values of T);
// a negative label marks a pixel to ignore (its one-hot row is all zero).
template <class T, class B>
struct one_hot_targets {
  tensor<T, B> one_hot;   // [N, C, S...] like the prediction
  tensor<T, B> valid;     // [N, S]: 1 where the label is used, 0 where ignored (only when any_ignored)
  index_t used = 0;       // number of labelled (not ignored) pixels
  bool any_ignored = false;
};

// Whether `target` is a class-index map for `prediction` [N, C, S...] (rather than a same-shape map).
inline bool is_label_map(const shape& prediction, const shape& target) {
  if (target == prediction) return false;
  if (target.rank == prediction.rank && target[0] == prediction[0] && target[1] == 1) {
    for (int a = 2; a < target.rank; ++a)
      if (target[a] != prediction[a]) return false;
    return true;
  }
  if (target.rank + 1 == prediction.rank && target[0] == prediction[0]) {
    for (int a = 1; a < target.rank; ++a)
      if (target[a] != prediction[a + 1]) return false;
    return true;
  }
  return false;
}

template <class B, class T>
one_hot_targets<T, B> to_one_hot(const tensor<T, B>& labels, const shape& prediction, const channel_layout& l,
                                 std::string_view who) {
  one_hot_targets<T, B> out;
  out.one_hot = tensor<T, B>(prediction);
  for_each_block(l, [&](index_t n, index_t c) {
    for_each<B>(l.inner, one_hot_body<T>{static_cast<T>(c)}, out.one_hot.data() + l.offset(n, c),
                labels.data() + n * l.inner);
  });
  tensor<T, B> ignored(shape{l.outer, l.inner});  // [N, S]
  for_each<B>(ignored.size(), ignored_label_body{}, ignored.data(), labels.data());
  const double hits = total_sum(out.one_hot), skipped = total_sum(ignored);
  // Every label is either one class or negative; anything else (≥ C, fractional, NaN) is bad input.
  require(hits + skipped == static_cast<double>(l.outer * l.inner), who,
          "class labels must be integers in [0, " + std::to_string(l.channels) +
              ") or negative (ignored); " + std::to_string(static_cast<index_t>(l.outer * l.inner - hits - skipped)) +
              " pixels of the label map " + labels.shape().str() + " are not");
  out.used = static_cast<index_t>(hits);
  if (skipped > 0) {
    for_each<B>(ignored.size(), complement_body{}, ignored.data());
    out.valid = std::move(ignored);
    out.any_ignored = true;
  }
  return out;
}

}  // namespace loss_detail
}  // namespace microcount::nn
