#pragma once
// Flat, structural composition of layers:
//   seq<L...>           y = L_n(…L_2(L_1(x)))
//   skip_concat<Inner>  y = concat_channels(x, Inner(x))           (the U-Net skip: skip first)
//   residual<Inner>     y = x + Inner(x)
// A U-Net level is seq<block, skip_concat<seq<pool, Inner, up>>, block>: template depth grows with the
// number of levels, not of layers. Parameter names are paths ("1.0.2.weight") so checkpoints are stable.
#include <string>
#include <tuple>
#include <utility>

#include "microcount/core/elementwise.hpp"
#include "microcount/nn/layer.hpp"
#include "microcount/nn/layers/merge.hpp"

namespace microcount::nn {

namespace detail {

template <class F, class B>
struct prefixed_visitor {
  std::string prefix;
  F& f;
  void operator()(const parameter<B>& p) const {
    parameter<B> q = p;
    q.name = prefix + p.name;
    f(q);
  }
  void operator()(std::string_view name, tensor_t<B>& t) const { f(prefix + std::string(name), t); }
};

}  // namespace detail

// ---- seq ------------------------------------------------------------------------------------------
template <class... L>
struct seq {
  static_assert(sizeof...(L) >= 1, "microcount: seq<> needs at least one layer");
  static_assert((layer<L> && ...), "microcount: every seq<> element must satisfy nn::layer (build/forward/backward/set_mode/kind)");
  using backend_type = typename std::tuple_element_t<0, std::tuple<L...>>::backend_type;
  static_assert((std::is_same_v<typename L::backend_type, backend_type> && ...),
                "microcount: all layers of a seq<> must use the same backend");
  using B = backend_type;
  static constexpr std::string_view kind = "seq";

  std::tuple<L...> layers;
  mode current_mode = mode::training;

  seq() = default;
  explicit seq(L... l) : layers(std::move(l)...) {}

  template <std::size_t I>
  auto& get() { return std::get<I>(layers); }

  shape build(const shape& in, rng& r) {
    shape s = in;
    std::apply([&](auto&... l) { ((s = l.build(s, r)), ...); }, layers);
    return s;
  }
  tensor_t<B> forward(const tensor_t<B>& x) {
    return forward_from<0>(x);
  }
  tensor_t<B> backward(const tensor_t<B>& dy) {
    return backward_from<sizeof...(L) - 1>(dy);
  }
  // Every layer gets the mode (training / evaluation / inspection, see layer.hpp); get_mode() is the last one set.
  void set_mode(mode m) {
    current_mode = m;
    std::apply([&](auto&... l) { (l.set_mode(m), ...); }, layers);
  }
  [[nodiscard]] mode get_mode() const { return current_mode; }
  template <class F>
  void for_each_parameter(F&& f) {
    visit_indexed([&](auto& l, std::size_t i) { l.for_each_parameter(detail::prefixed_visitor<F, B>{std::to_string(i) + ".", f}); });
  }
  template <class F>
  void for_each_buffer(F&& f) {
    visit_indexed([&](auto& l, std::size_t i) { l.for_each_buffer(detail::prefixed_visitor<F, B>{std::to_string(i) + ".", f}); });
  }
  // Architecture signature: kinds in order, e.g. "seq(conv2d,batchnorm,relu)".
  template <class F>
  void for_each_layer(F&& f) {
    std::apply([&](auto&... l) { (f(l), ...); }, layers);
  }

 private:
  template <std::size_t I>
  tensor_t<B> forward_from(const tensor_t<B>& x) {
    auto y = std::get<I>(layers).forward(x);
    if constexpr (I + 1 < sizeof...(L)) return forward_from<I + 1>(y);
    else return y;
  }
  template <std::size_t I>
  tensor_t<B> backward_from(const tensor_t<B>& dy) {
    auto dx = std::get<I>(layers).backward(dy);
    if constexpr (I > 0) return backward_from<I - 1>(dx);
    else return dx;
  }
  template <class F>
  void visit_indexed(F&& f) {
    [&]<std::size_t... I>(std::index_sequence<I...>) { (f(std::get<I>(layers), I), ...); }(std::index_sequence_for<L...>{});
  }
};

// ---- one inner layer: what skip_concat and residual share ----------------------------------------
// Holds the inner layer and forwards mode and visitors to it; its parameters are named "inner.<name>".
template <class Inner>
struct wraps_one {
  static_assert(layer<Inner>, "microcount: skip_concat<Inner> / residual<Inner> need Inner to satisfy nn::layer");
  using backend_type = typename Inner::backend_type;
  using B = backend_type;

  Inner inner;
  mode current_mode = mode::training;

  wraps_one() = default;
  explicit wraps_one(Inner i) : inner(std::move(i)) {}

  void set_mode(mode m) {
    current_mode = m;
    inner.set_mode(m);
  }
  [[nodiscard]] mode get_mode() const { return current_mode; }
  template <class F>
  void for_each_parameter(F&& f) { inner.for_each_parameter(detail::prefixed_visitor<F, B>{"inner.", f}); }
  template <class F>
  void for_each_buffer(F&& f) { inner.for_each_buffer(detail::prefixed_visitor<F, B>{"inner.", f}); }
  template <class F>
  void for_each_layer(F&& f) { f(inner); }
};

// ---- skip_concat ----------------------------------------------------------------------------------
template <class Inner>
struct skip_concat : wraps_one<Inner> {
  using B = typename wraps_one<Inner>::B;
  using wraps_one<Inner>::wraps_one;
  using wraps_one<Inner>::inner;
  static constexpr std::string_view kind = "skip_concat";

  index_t skip_channels = 0, inner_channels = 0;

  shape build(const shape& in, rng& r) {
    const shape inner_out = inner.build(in, r);
    require(inner_out.rank == in.rank && inner_out[0] == in[0], "skip_concat",
            "inner output " + inner_out.str() + " cannot be concatenated with input " + in.str());
    for (int a = 2; a < in.rank; ++a)
      require(inner_out[a] == in[a], "skip_concat",
              "inner output " + inner_out.str() + " has another spatial size than the skip " + in.str() +
                  " (input size must be divisible by the pooling factors)");
    skip_channels = in[1];
    inner_channels = inner_out[1];
    shape out = in;
    out[1] = skip_channels + inner_channels;
    return out;
  }
  tensor_t<B> forward(const tensor_t<B>& x) { return concat_channels<B>(x, inner.forward(x)); }
  tensor_t<B> backward(const tensor_t<B>& dy) {
    tensor_t<B> d_skip, d_inner;
    split_channels<B>(dy, skip_channels, d_skip, d_inner);
    auto dx = inner.backward(d_inner);  // fresh, kept by no layer: safe to add into
    accumulate<B>(dx, d_skip);
    return dx;
  }
};

template <class Inner>
skip_concat(Inner) -> skip_concat<Inner>;

// ---- residual -------------------------------------------------------------------------------------
template <class Inner>
struct residual : wraps_one<Inner> {
  using B = typename wraps_one<Inner>::B;
  using wraps_one<Inner>::wraps_one;
  using wraps_one<Inner>::inner;
  static constexpr std::string_view kind = "residual";

  shape build(const shape& in, rng& r) {
    const shape out = inner.build(in, r);
    require(out == in, "residual", "inner output " + out.str() + " must have the input's shape " + in.str());
    return out;
  }
  // A new tensor: the inner layer may keep its output for backward (conv_bn_relu does), so it is not
  // written into.
  tensor_t<B> forward(const tensor_t<B>& x) { return add<B>(inner.forward(x), x); }
  tensor_t<B> backward(const tensor_t<B>& dy) {
    auto dx = inner.backward(dy);  // fresh, kept by no layer: safe to add into
    accumulate<B>(dx, dy);
    return dx;
  }
};

template <class Inner>
residual(Inner) -> residual<Inner>;

}  // namespace microcount::nn
