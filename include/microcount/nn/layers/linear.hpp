#pragma once
// Fully connected layer (PyTorch's nn.Linear after a flatten): x [N, ...] is read as [N, in] with
// in = the product of x's trailing extents; y = x·wᵀ + b, w [out, in], b [out].
//   nn::linear<B> head(1);          // e.g. after global_avg_pool: [N, C] -> [N, 1]
#include <cmath>
#include <string>

#include "microcount/nn/layer.hpp"
#include "microcount/nn/layers/views.hpp"
#include "microcount/nn/layers/conv.hpp"
#include "microcount/nn/op.hpp"
#include "microcount/nn/ops_layers.hpp"

namespace microcount::nn {

template <class B>
struct linear : layer_base<B> {
  static constexpr std::string_view kind = "linear";
  using op_t = ops::linear;
  using kernel_t = kernel<op_t, B>;

  index_t out_features = 0, in_features = 0;
  bool has_bias = true;
  op_t op{};
  tensor_t<B> weight, bias, weight_grad, bias_grad;  // [out, in], [out]
  tensor_t<B> input;                                 // [N, in] alias of the training/inspection-mode input
  bool parameter_gradients = true;                   // false after an inspection-mode forward
  shape in_shape;

  linear() = default;
  explicit linear(index_t out, bool bias_on = true) : out_features(out), has_bias(bias_on) {}

  shape build(const shape& in, rng& r) {
    require_op<op_t, B>();
    require(in.rank >= 2 && out_features >= 1, std::string(kind),
            "expects input [N, features...] and at least one output, got " + in.str());
    in_features = in.size_from(1);
    weight = tensor_t<B>(shape{out_features, in_features});
    weight_grad = tensor_t<B>::zeros(weight.shape());
    // He/Kaiming uniform as for convolutions (bound sqrt(6 / fan_in)); bias 0.
    detail::init_uniform(weight, std::sqrt(6.0 / static_cast<double>(in_features)), r);
    if (has_bias) {
      bias = tensor_t<B>::zeros(shape{out_features});
      bias_grad = tensor_t<B>::zeros(shape{out_features});
    }
    return shape{in[0], out_features};
  }

  tensor_t<B> forward(const tensor_t<B>& x) {
    require(x.rank() >= 2 && x.shape().size_from(1) == in_features, std::string(kind),
            "built for " + std::to_string(in_features) + " input features, got input " + x.shape().str());
    tensor_t<B> flat = x.share();
    flat.reshape(shape{x.dim(0), in_features});
    tensor_t<B> y(shape{x.dim(0), out_features});
    kernel_t::forward(op, flat.template view<2>(), weight.template view<2>(), has_bias ? bias.data() : nullptr,
                      y.template view<2>());
    input = this->keeps_for_backward() ? std::move(flat) : tensor_t<B>();
    parameter_gradients = !this->inspecting();
    in_shape = x.shape();
    return y;
  }

  tensor_t<B> backward(const tensor_t<B>& dy) {
    require(detail::holds(input), std::string(kind), "backward called without a training-mode forward (or an inspection-mode one)");
    require(dy.shape() == shape{input.dim(0), out_features}, std::string(kind),
            "dy has shape " + dy.shape().str() + ", expected [" + std::to_string(input.dim(0)) + ", " +
                std::to_string(out_features) + "]");
    tensor_t<B> dx(input.shape());
    if (parameter_gradients)
      kernel_t::backward_weights(op, input.template view<2>(), dy.template view<2>(), weight_grad.template view<2>(),
                                 has_bias ? bias_grad.data() : nullptr);
    kernel_t::backward_data(op, dy.template view<2>(), weight.template view<2>(), dx.template view<2>());
    dx.reshape(in_shape);
    return dx;
  }

  template <class F>
  void for_each_parameter(F&& f) {
    f(parameter<B>{"weight", &weight, &weight_grad, true});
    if (has_bias) f(parameter<B>{"bias", &bias, &bias_grad, false});
  }
};

}  // namespace microcount::nn
