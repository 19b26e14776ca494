#pragma once
// Transposed convolution layers (2D / 3D), the U-Net's learned upsampling, with optional bias.
//   conv_transpose2d<B> up(64, {2, 2}, {.stride = {2, 2}});   // PyTorch's ConvTranspose2d(C, 64, 2, stride=2)
// x [N, IC, (D,) H, W] -> y [N, OC, (OD,) OH, OW], w [IC, OC, k...] (PyTorch's layout), b [OC];
// OH = (H − 1)·stride − 2·pad + dilation·(K − 1) + 1 + output_pad.
#include <cmath>
#include <string>

#include "microcount/nn/layer.hpp"
#include "microcount/nn/layers/views.hpp"
#include "microcount/nn/layers/conv.hpp"
#include "microcount/nn/op.hpp"
#include "microcount/nn/ops.hpp"

namespace microcount::nn {

template <int Dims, class B>
struct conv_transpose_layer : layer_base<B> {
  static constexpr std::string_view kind = Dims == 2 ? "conv_transpose2d" : "conv_transpose3d";
  using op_t = ops::conv_transpose<Dims>;
  using kernel_t = kernel<op_t, B>;
  static constexpr int rank = Dims + 2;

  index_t out_channels = 0;
  std::array<int, Dims> kernel_size = ops::conv<Dims>::filled(2);
  op_t op{};
  bool has_bias = true;

  tensor_t<B> weight, bias, weight_grad, bias_grad;
  tensor_t<B> input;  // kept for backward in training mode

  conv_transpose_layer() = default;
  conv_transpose_layer(index_t out, std::array<int, Dims> k, op_t o = {}, bool bias_on = true)
      : out_channels(out), kernel_size(k), op(o), has_bias(bias_on) {}

  shape build(const shape& in, rng& r) {
    require_op<op_t, B>();
    require(in.rank == rank, std::string(kind), "expects input of rank " + std::to_string(rank) + ", got " + in.str());
    require(out_channels >= 1, std::string(kind), "needs at least one output channel");
    shape w{in[1], out_channels};
    w.rank = rank;
    for (int a = 0; a < Dims; ++a) w[2 + a] = kernel_size[a];
    const shape out = op.output_shape(in, w);
    weight = tensor_t<B>(w);
    weight_grad = tensor_t<B>::zeros(w);
    // He/Kaiming uniform as conv_layer, with PyTorch's fan-in of a transposed weight: OC·prod(k).
    const double fan_in = static_cast<double>(w.size_from(1));
    detail::init_uniform(weight, std::sqrt(6.0 / fan_in), r);
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
    input = this->training() ? x.share() : tensor_t<B>();
    return y;
  }

  tensor_t<B> backward(const tensor_t<B>& dy) {
    require(detail::holds(input), std::string(kind), "backward called without a training-mode forward");
    require(dy.shape() == op.output_shape(input.shape(), weight.shape()), std::string(kind),
            "dy has shape " + dy.shape().str() + ", which is not this layer's output shape");
    tensor_t<B> dx(input.shape());
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

template <class B>
using conv_transpose2d = conv_transpose_layer<2, B>;
template <class B>
using conv_transpose3d = conv_transpose_layer<3, B>;

}  // namespace microcount::nn
