#pragma once
// Normalisation layers: batch normalisation and group normalisation over [N, C, (D,) H, W].
//   batch_norm2d<B> bn;                        // PyTorch's BatchNorm2d(C) (eps 1e-5, momentum 0.1)
//   group_norm2d<B> gn(8);                     // PyTorch's GroupNorm(8, C)
// The channel count C is taken from the input shape at build().
#include <string>
#include <utility>
#include <vector>

#include "microcount/nn/layer.hpp"
#include "microcount/nn/layers/views.hpp"
#include "microcount/nn/op.hpp"
#include "microcount/nn/ops_layers.hpp"

namespace microcount::nn {

namespace detail {
template <class B>
tensor_t<B> filled(const shape& s, double value) {
  tensor_t<B> t(s);
  const std::vector<scalar_t<B>> host(static_cast<std::size_t>(t.size()), static_cast<scalar_t<B>>(value));
  t.upload(host.data());
  return t;
}
}  // namespace detail

// y = γ·(x − μ)/sqrt(σ² + eps) + β per channel; μ, σ² are the batch's statistics in training mode and the
// running statistics in evaluation mode. γ (weight) starts at 1, β (bias) at 0, neither is weight-decayed.
// Unlike most layers, backward also works after an evaluation-mode forward (the statistics are then
// constants): that is how a model is fine-tuned with frozen batch statistics. Inspection mode is the
// evaluation-mode function too; its backward gives dx = dy·γ/sqrt(running_var + eps) only.
template <int Dims, class B>
struct batch_norm_layer : layer_base<B> {
  static_assert(Dims >= 1 && Dims <= 3, "microcount: batch_norm supports 1, 2 or 3 spatial dimensions");
  static constexpr std::string_view kind = Dims == 1 ? "batch_norm1d" : Dims == 2 ? "batch_norm2d" : "batch_norm3d";
  using op_t = ops::batch_norm;
  using kernel_t = kernel<op_t, B>;
  static constexpr int rank = Dims + 2;

  op_t op{};
  index_t channels = 0;
  tensor_t<B> weight, bias, weight_grad, bias_grad;  // [C]
  tensor_t<B> running_mean, running_var;             // [C], buffers
  tensor_t<B> input, saved_mean, saved_invstd;       // kept by forward for backward
  mode forward_mode = mode::training;

  batch_norm_layer() = default;
  explicit batch_norm_layer(op_t o) : op(o) {}

  shape build(const shape& in, rng&) {
    require_op<op_t, B>();
    require(in.rank == rank, std::string(kind), "expects input of rank " + std::to_string(rank) + ", got " + in.str());
    require(op.eps > 0 && op.momentum >= 0 && op.momentum <= 1, std::string(kind), "needs eps > 0 and momentum in [0, 1]");
    channels = in[1];
    const shape c{channels};
    weight = detail::filled<B>(c, 1.0);
    bias = tensor_t<B>::zeros(c);
    weight_grad = tensor_t<B>::zeros(c);
    bias_grad = tensor_t<B>::zeros(c);
    running_mean = tensor_t<B>::zeros(c);
    running_var = detail::filled<B>(c, 1.0);
    saved_mean = tensor_t<B>(c);
    saved_invstd = tensor_t<B>(c);
    return in;
  }

  tensor_t<B> forward(const tensor_t<B>& x) {
    require(x.rank() == rank && x.dim(1) == channels, std::string(kind),
            "built for " + std::to_string(channels) + " channels (rank " + std::to_string(rank) + "), got input " +
                x.shape().str());
    tensor_t<B> y(x.shape());
    forward_mode = this->current_mode;
    if (this->training()) {
      require(x.dim(0) * x.shape().size_from(2) > 1, std::string(kind),
              "training needs more than one value per channel, got input " + x.shape().str());
      kernel_t::forward_training(op, detail::channel_view(x), weight.data(), bias.data(), detail::channel_view(y),
                                 saved_mean.data(), saved_invstd.data(), running_mean.data(), running_var.data());
    } else {
      kernel_t::forward_inference(op, detail::channel_view(x), weight.data(), bias.data(), running_mean.data(),
                                  running_var.data(), detail::channel_view(y));
    }
    input = x.share();
    return y;
  }

  tensor_t<B> backward(const tensor_t<B>& dy) {
    require(detail::holds(input), std::string(kind), "backward called before forward");
    detail::require_shape(dy.shape(), input.shape(), kind, "dy");
    tensor_t<B> dx(input.shape());
    const bool inspected = forward_mode == mode::inspection;  // dx only
    if (forward_mode == mode::training)
      kernel_t::backward_training(op, detail::channel_view(input), detail::channel_view(dy), weight.data(),
                                  saved_mean.data(), saved_invstd.data(), detail::channel_view(dx),
                                  weight_grad.data(), bias_grad.data());
    else
      kernel_t::backward_inference(op, detail::channel_view(input), detail::channel_view(dy), weight.data(),
                                   running_mean.data(), running_var.data(), detail::channel_view(dx),
                                   inspected ? nullptr : weight_grad.data(), inspected ? nullptr : bias_grad.data());
    return dx;
  }

  template <class F>
  void for_each_parameter(F&& f) {
    f(parameter<B>{"weight", &weight, &weight_grad, false});
    f(parameter<B>{"bias", &bias, &bias_grad, false});
  }
  template <class F>
  void for_each_buffer(F&& f) {
    f(std::string_view("running_mean"), running_mean);
    f(std::string_view("running_var"), running_var);
  }
};

template <class B>
using batch_norm1d = batch_norm_layer<1, B>;
template <class B>
using batch_norm2d = batch_norm_layer<2, B>;
template <class B>
using batch_norm3d = batch_norm_layer<3, B>;

// Per sample, channels split into `groups` consecutive groups, each normalised with its own statistics
// (the same in every mode; the mode only says what forward keeps and whether backward computes parameter
// gradients); optional per-channel γ, β (1 and 0).
template <int Dims, class B>
struct group_norm_layer : layer_base<B> {
  static_assert(Dims >= 1 && Dims <= 3, "microcount: group_norm supports 1, 2 or 3 spatial dimensions");
  static constexpr std::string_view kind = Dims == 1 ? "group_norm1d" : Dims == 2 ? "group_norm2d" : "group_norm3d";
  using op_t = ops::group_norm;
  using kernel_t = kernel<op_t, B>;
  static constexpr int rank = Dims + 2;

  op_t op{};
  bool affine = true;
  index_t channels = 0;
  tensor_t<B> weight, bias, weight_grad, bias_grad;  // [C] when affine
  tensor_t<B> input, saved_mean, saved_invstd;       // saved statistics [N·groups]
  bool parameter_gradients = true;                   // affine and not after an inspection-mode forward

  group_norm_layer() = default;
  explicit group_norm_layer(index_t groups, double eps = 1e-5, bool affine_on = true)
      : op{groups, eps}, affine(affine_on) {}

  shape build(const shape& in, rng&) {
    require_op<op_t, B>();
    require(in.rank == rank, std::string(kind), "expects input of rank " + std::to_string(rank) + ", got " + in.str());
    require(op.eps > 0, std::string(kind), "needs eps > 0");
    op.check(in);
    channels = in[1];
    if (affine) {
      weight = detail::filled<B>(shape{channels}, 1.0);
      bias = tensor_t<B>::zeros(shape{channels});
      weight_grad = tensor_t<B>::zeros(shape{channels});
      bias_grad = tensor_t<B>::zeros(shape{channels});
    }
    return in;
  }

  tensor_t<B> forward(const tensor_t<B>& x) {
    require(x.rank() == rank && x.dim(1) == channels, std::string(kind),
            "built for " + std::to_string(channels) + " channels (rank " + std::to_string(rank) + "), got input " +
                x.shape().str());
    tensor_t<B> y(x.shape());
    tensor_t<B> mean(shape{x.dim(0) * op.groups}), invstd(shape{x.dim(0) * op.groups});  // [N·groups]
    kernel_t::forward(op, detail::channel_view(x), affine ? weight.data() : nullptr, affine ? bias.data() : nullptr,
                      detail::channel_view(y), mean.data(), invstd.data());
    input = this->keeps_for_backward() ? x.share() : tensor_t<B>();
    if (this->keeps_for_backward()) {
      saved_mean = std::move(mean);
      saved_invstd = std::move(invstd);
    }
    parameter_gradients = affine && !this->inspecting();
    return y;
  }

  tensor_t<B> backward(const tensor_t<B>& dy) {
    require(detail::holds(input), std::string(kind), "backward called without a training-mode forward (or an inspection-mode one)");
    detail::require_shape(dy.shape(), input.shape(), kind, "dy");
    tensor_t<B> dx(input.shape());
    kernel_t::backward(op, detail::channel_view(input), detail::channel_view(dy), affine ? weight.data() : nullptr,
                       saved_mean.data(), saved_invstd.data(), detail::channel_view(dx),
                       parameter_gradients ? weight_grad.data() : nullptr,
                       parameter_gradients ? bias_grad.data() : nullptr);
    return dx;
  }

  template <class F>
  void for_each_parameter(F&& f) {
    if (!affine) return;
    f(parameter<B>{"weight", &weight, &weight_grad, false});
    f(parameter<B>{"bias", &bias, &bias_grad, false});
  }
};

template <class B>
using group_norm1d = group_norm_layer<1, B>;
template <class B>
using group_norm2d = group_norm_layer<2, B>;
template <class B>
using group_norm3d = group_norm_layer<3, B>;

}  // namespace microcount::nn
