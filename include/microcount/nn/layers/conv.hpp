#pragma once
// Convolution layers (2D / 3D), with optional bias; transposed convolutions share the same layer
// (layers/conv_transpose.hpp). The layer owns weight and bias; the arithmetic is the backend's kernel.
#include <cmath>
#include <string>
#include <vector>

#include "microcount/nn/layer.hpp"
#include "microcount/nn/op.hpp"
#include "microcount/nn/ops.hpp"

namespace microcount::nn {

namespace detail {
// Uniform(−bound, bound) initialisation, bound = gain·sqrt(3 / fan_in) (He/Kaiming uniform for ReLU nets
// with gain √2). Filled on the host; device backends copy.
template <class B>
void init_uniform(tensor_t<B>& t, double bound, rng& r) {
  std::vector<scalar_t<B>> host(static_cast<std::size_t>(t.size()));  // the same draws on every backend
  for (auto& v : host) v = static_cast<scalar_t<B>>(r.uniform(-bound, bound));
  t.upload(host.data());
}
}  // namespace detail

// The weight layout of a convolution op: conv [OC, IC, k...], conv_transpose [IC, OC, k...] (PyTorch's).
template <class Op>
struct conv_traits;
template <int Dims>
struct conv_traits<ops::conv<Dims>> {
  static constexpr std::string_view kind = Dims == 2 ? "conv2d" : "conv3d";
  static constexpr std::array<int, Dims> default_kernel = ops::conv<Dims>::filled(3);
  static shape weight_shape(index_t in, index_t out) { return {out, in}; }
};
template <int Dims>
struct conv_traits<ops::conv_transpose<Dims>> {
  static constexpr std::string_view kind = Dims == 2 ? "conv_transpose2d" : "conv_transpose3d";
  static constexpr std::array<int, Dims> default_kernel = ops::conv<Dims>::filled(2);
  static shape weight_shape(index_t in, index_t out) { return {in, out}; }
};

// A convolution or transposed convolution with optional bias; the arithmetic is kernel<Op, B>.
//   conv:           x [N, IC, (D,) H, W] -> y [N, OC, (OD,) OH, OW], w [OC, IC, k...], b [OC]
//   conv_transpose: x [N, IC, (D,) H, W] -> y [N, OC, (OD,) OH, OW], w [IC, OC, k...], b [OC]
// Weights start He/Kaiming-uniform (bound sqrt(6 / fan_in), fan_in = w's extents after the first, as
// PyTorch counts them for both), biases at 0.
template <class Op, class B>
struct weighted_conv_layer : layer_base<B> {
  static constexpr int dims = Op::dims;
  static constexpr int rank = dims + 2;
  static constexpr std::string_view kind = conv_traits<Op>::kind;
  using op_t = Op;
  using kernel_t = kernel<op_t, B>;

  index_t out_channels = 0;
  std::array<int, dims> kernel_size = conv_traits<Op>::default_kernel;
  op_t op{};
  bool has_bias = true;

  tensor_t<B> weight, bias, weight_grad, bias_grad;
  tensor_t<B> input;  // kept for backward in training and inspection mode
  bool parameter_gradients = true;  // false after an inspection-mode forward: backward computes dx only

  weighted_conv_layer() = default;
  weighted_conv_layer(index_t out, std::array<int, dims> k, op_t o = {}, bool bias_on = true)
      : out_channels(out), kernel_size(k), op(o), has_bias(bias_on) {}

  shape build(const shape& in, rng& r) {
    require_op<op_t, B>();
    require(in.rank == rank, std::string(kind), "expects input of rank " + std::to_string(rank) + ", got " + in.str());
    require(out_channels >= 1, std::string(kind), "needs at least one output channel");
    shape w = conv_traits<Op>::weight_shape(in[1], out_channels);
    w.rank = rank;
    for (int a = 0; a < dims; ++a) w[2 + a] = kernel_size[a];
    const shape out = op.output_shape(in, w);
    weight = tensor_t<B>(w);
    weight_grad = tensor_t<B>::zeros(w);
    detail::init_uniform(weight, std::sqrt(6.0 / static_cast<double>(w.size_from(1))), r);
    if (has_bias) {
      bias = tensor_t<B>::zeros(shape{out_channels});
      bias_grad = tensor_t<B>::zeros(shape{out_channels});
    }
    return out;
  }

  tensor_t<B> forward(const tensor_t<B>& x) {
    tensor_t<B> y(op.output_shape(x.shape(), weight.shape()));
    kernel_t::forward(op, x.template view<rank>(), weight.template view<rank>(), has_bias ? bias.data() : nullptr,
                      y.template view<rank>());
    input = this->keeps_for_backward() ? x.share() : tensor_t<B>();  // evaluation keeps nothing
    parameter_gradients = !this->inspecting();
    return y;
  }

  tensor_t<B> backward(const tensor_t<B>& dy) {
    require(input.rank() > 0, std::string(kind), "backward called without a training-mode forward (or an inspection-mode one)");
    require(dy.shape() == op.output_shape(input.shape(), weight.shape()), std::string(kind),
            "dy has shape " + dy.shape().str() + ", which is not this layer's output shape");
    tensor_t<B> dx(input.shape());
    if (parameter_gradients)
      kernel_t::backward_weights(op, input.template view<rank>(), dy.template view<rank>(),
                                 weight_grad.template view<rank>(), has_bias ? bias_grad.data() : nullptr);
    kernel_t::backward_data(op, dy.template view<rank>(), weight.template view<rank>(), dx.template view<rank>());
    return dx;
  }

  template <class F>
  void for_each_parameter(F&& f) {
    f(parameter<B>{"weight", &weight, &weight_grad, true});
    if (has_bias) f(parameter<B>{"bias", &bias, &bias_grad, false});
  }
};

template <int Dims, class B>
using conv_layer = weighted_conv_layer<ops::conv<Dims>, B>;

template <class B>
using conv2d = conv_layer<2, B>;
template <class B>
using conv3d = conv_layer<3, B>;

}  // namespace microcount::nn
