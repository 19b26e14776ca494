#pragma once
// Convolution layers (2D / 3D) and transposed convolution layers, with optional bias.
// The layer owns weight and bias; the arithmetic is kernel<ops::conv<D>, B> from the backend.
#include <cmath>
#include <string>

#include "microcount/nn/layer.hpp"
#include "microcount/nn/op.hpp"
#include "microcount/nn/ops.hpp"

namespace microcount::nn {

namespace detail {
// Uniform(−bound, bound) initialisation, bound = gain·sqrt(3 / fan_in) (He/Kaiming uniform for ReLU nets
// with gain √2). Filled on the host; device backends copy.
template <class B>
void init_uniform(tensor_t<B>& t, double bound, rng& r) {
  static_assert(B::host_memory, "microcount: device initialisation goes through a host tensor (not yet wired)");
  for (index_t i = 0; i < t.size(); ++i) t[i] = static_cast<scalar_t<B>>(r.uniform(-bound, bound));
}
}  // namespace detail

// y = conv(x, w) (+ b).  x [N, IC, (D,) H, W] -> y [N, OC, (OD,) OH, OW]; w [OC, IC, k...]; b [OC].
template <int Dims, class B>
struct conv_layer : layer_base<B> {
  static constexpr std::string_view kind = Dims == 2 ? "conv2d" : "conv3d";
  using op_t = ops::conv<Dims>;
  using kernel_t = kernel<op_t, B>;
  static constexpr int rank = Dims + 2;

  index_t out_channels = 0;
  std::array<int, Dims> kernel_size = op_t::filled(3);
  op_t op{};
  bool has_bias = true;

  tensor_t<B> weight, bias, weight_grad, bias_grad;
  tensor_t<B> input;  // kept for backward in training mode
  shape in_shape;

  conv_layer() = default;
  conv_layer(index_t out, std::array<int, Dims> k, op_t o = {}, bool bias_on = true)
      : out_channels(out), kernel_size(k), op(o), has_bias(bias_on) {}

  shape build(const shape& in, rng& r) {
    require_op<op_t, B>();
    require(in.rank == rank, std::string(kind), "expects input of rank " + std::to_string(rank) + ", got " + in.str());
    shape w{out_channels, in[1]};
    w.rank = rank;
    for (int a = 0; a < Dims; ++a) w[2 + a] = kernel_size[a];
    const shape out = op.output_shape(in, w);
    weight = tensor_t<B>(w);
    weight_grad = tensor_t<B>::zeros(w);
    const double fan_in = static_cast<double>(w.size_from(1));
    detail::init_uniform(weight, std::sqrt(2.0) * std::sqrt(3.0 / fan_in), r);
    if (has_bias) {
      bias = tensor_t<B>::zeros(shape{out_channels});
      bias_grad = tensor_t<B>::zeros(shape{out_channels});
    }
    in_shape = in;
    return out;
  }

  tensor_t<B> forward(const tensor_t<B>& x) {
    shape wshape = weight.shape();
    tensor_t<B> y(op.output_shape(x.shape(), wshape));
    kernel_t::forward(op, x.template view<rank>(), weight.template view<rank>(), has_bias ? bias.data() : nullptr,
                      y.template view<rank>());
    if (this->training()) input = x.share();
    return y;
  }

  tensor_t<B> backward(const tensor_t<B>& dy) {
    require(input.rank() > 0, std::string(kind), "backward called without a training-mode forward");
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
using conv2d = conv_layer<2, B>;
template <class B>
using conv3d = conv_layer<3, B>;

}  // namespace microcount::nn
