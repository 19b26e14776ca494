#pragma once
// Activation layers: relu, leaky_relu(slope), sigmoid (elementwise, any shape) and softmax over channels
// ([N, C, ...], axis 1). None has parameters; the output shape is the input shape.
//   nn::relu<B> r;   nn::leaky_relu<B> l(0.2);   nn::sigmoid<B> s;   nn::softmax<B> p;
#include <string>

#include "microcount/nn/layer.hpp"
#include "microcount/nn/layers/views.hpp"
#include "microcount/nn/op.hpp"
#include "microcount/nn/ops_layers.hpp"

namespace microcount::nn {

namespace detail {
template <class Op>
inline constexpr std::string_view activation_kind = "activation";
template <>
inline constexpr std::string_view activation_kind<ops::relu> = "relu";
template <>
inline constexpr std::string_view activation_kind<ops::leaky_relu> = "leaky_relu";
template <>
inline constexpr std::string_view activation_kind<ops::sigmoid> = "sigmoid";
}  // namespace detail

// y = f(x) elementwise. Keeps y (relu, sigmoid) or x (leaky_relu) for backward in training and inspection mode.
template <class Op, class B>
struct activation_layer : layer_base<B> {
  static constexpr std::string_view kind = detail::activation_kind<Op>;
  using op_t = Op;
  using kernel_t = kernel<op_t, B>;

  op_t op{};
  tensor_t<B> saved;  // y or x, as Op::saves_output says

  activation_layer() = default;
  explicit activation_layer(op_t o) : op(o) {}

  shape build(const shape& in, rng&) {
    require_op<op_t, B>();
    require(in.rank >= 1, std::string(kind), "expects a non-empty shape");
    return in;
  }

  tensor_t<B> forward(const tensor_t<B>& x) {
    tensor_t<B> y(x.shape());
    kernel_t::forward(op, x.size(), x.data(), y.data());
    // Evaluation keeps nothing (and drops what a training forward kept, so a stale backward cannot run).
    saved = !this->keeps_for_backward() ? tensor_t<B>() : Op::saves_output ? y.share() : x.share();
    return y;
  }

  tensor_t<B> backward(const tensor_t<B>& dy) {
    require(detail::holds(saved), std::string(kind), "backward called without a training-mode forward (or an inspection-mode one)");
    detail::require_shape(dy.shape(), saved.shape(), kind, "dy");
    tensor_t<B> dx(dy.shape());
    kernel_t::backward(op, dy.size(), saved.data(), dy.data(), dx.data());
    return dx;
  }
};

template <class B>
using relu = activation_layer<ops::relu, B>;
template <class B>
using sigmoid = activation_layer<ops::sigmoid, B>;

// max(x, 0) + slope·min(x, 0) (PyTorch's LeakyReLU, default slope 0.01).
template <class B>
struct leaky_relu : activation_layer<ops::leaky_relu, B> {
  leaky_relu() = default;
  explicit leaky_relu(double slope) : activation_layer<ops::leaky_relu, B>(ops::leaky_relu{slope}) {}
};

// Softmax over the channel axis (PyTorch's softmax(x, dim=1)): per position, the channels become
// probabilities that sum to 1.
template <class B>
struct softmax : layer_base<B> {
  static constexpr std::string_view kind = "softmax";
  using op_t = ops::softmax;
  using kernel_t = kernel<op_t, B>;

  op_t op{};
  tensor_t<B> output;  // kept for backward in training and inspection mode

  shape build(const shape& in, rng&) {
    require_op<op_t, B>();
    require(in.rank >= 2, std::string(kind), "expects [N, C, ...], got " + in.str());
    return in;
  }

  tensor_t<B> forward(const tensor_t<B>& x) {
    tensor_t<B> y(x.shape());
    kernel_t::forward(op, detail::channel_view(x), detail::channel_view(y));
    output = this->keeps_for_backward() ? y.share() : tensor_t<B>();
    return y;
  }

  tensor_t<B> backward(const tensor_t<B>& dy) {
    require(detail::holds(output), std::string(kind), "backward called without a training-mode forward (or an inspection-mode one)");
    detail::require_shape(dy.shape(), output.shape(), kind, "dy");
    tensor_t<B> dx(dy.shape());
    kernel_t::backward(op, detail::channel_view(output), detail::channel_view(dy), detail::channel_view(dx));
    return dx;
  }
};

}  // namespace microcount::nn
