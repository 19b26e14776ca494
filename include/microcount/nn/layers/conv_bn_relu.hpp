#pragma once
// conv → BatchNorm → ReLU as one layer: the unit every U-Net level is made of, fused for speed and memory.
//   Training:   y = conv(x) (no bias); z = max(BN_batch(y), 0). Keeps x, y, z (two activations where
//               separate layers keep three). Backward: ReLU mask from z, BN backward from y, conv backward.
//   Evaluation: BN is folded into the convolution (w' = w·γ/σ, b' = β − μ·γ/σ), then ReLU: one convolution
//               and no normalisation pass. On backends whose conv kernel has forward_fused, the BN
//               statistics (training) and the ReLU (evaluation) are computed in the convolution's store.
//               Keeps nothing.
//   Inspection: the evaluation forward, keeping x and z. Backward gives dx of that function:
//               dx = conv_backward_data(dz ⊙ [z > 0], w'); parameter gradients are not computed.
// Numerically the same function as seq<conv_layer, batch_norm_layer, relu> (tests/nn/test_conv_bn_relu.cpp);
// parameter names are "conv.weight", "bn.weight", "bn.bias", buffers "bn.running_mean", "bn.running_var".
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "microcount/nn/layer.hpp"
#include "microcount/nn/layers/conv.hpp"
#include "microcount/nn/layers/norm.hpp"
#include "microcount/nn/layers/views.hpp"
#include "microcount/nn/ops_layers.hpp"

namespace microcount::nn {

template <int Dims, class B>
struct conv_bn_relu : layer_base<B> {
  static constexpr std::string_view kind = Dims == 2 ? "conv_bn_relu2d" : "conv_bn_relu3d";
  static constexpr int rank = Dims + 2;
  using T = scalar_t<B>;
  using conv_kernel = kernel<ops::conv<Dims>, B>;
  using bn_kernel = kernel<ops::batch_norm, B>;
  using relu_op = ops::relu;

  conv_layer<Dims, B> conv;        // bias off: BN's shift replaces it
  batch_norm_layer<Dims, B> bn;    // holds γ, β, running statistics (its forward/backward are not used)
  tensor_t<B> input, conv_out, output;  // kept for backward (training: all three; inspection: input, output)
  tensor_t<B> folded_weight, folded_bias;  // evaluation: folded weights (or per-channel scale, shift)
  tensor_t<B> batch_var;                   // training on fused backends: the batch variance [C]

  conv_bn_relu() = default;
  conv_bn_relu(index_t out, std::array<int, Dims> k, ops::conv<Dims> o = {}, ops::batch_norm bn_op = {})
      : conv(out, k, o, false), bn(bn_op) {}

  shape build(const shape& in, rng& r) {
    require_op<ops::batch_norm, B>();
    const shape out = conv.build(in, r);
    bn.build(out, r);
    return out;
  }

  void set_mode(mode m) {
    this->current_mode = m;
    conv.set_mode(m);
    bn.set_mode(m);
  }

  // Backends whose conv kernel fuses an epilogue into its store (ops::conv_epilogue).
  static constexpr bool fused = requires(const ops::conv<Dims>& p, tensor_view<const T, rank> v, tensor_view<T, rank> o,
                                         const ops::conv_epilogue& e) { conv_kernel::forward_fused(p, v, v, nullptr, e, o); };

  tensor_t<B> forward(const tensor_t<B>& x) {
    const auto w = conv.weight.template view<rank>();
    tensor_t<B> z(conv.op.output_shape(x.shape(), conv.weight.shape()));  // [N, C, spatial...]
    if (!this->training()) {
      if constexpr (fused) {
        // One pass: conv, then y·scale + shift and ReLU in the store.
        fold_scale_shift();
        ops::conv_epilogue e;
        e.scale = folded_weight.data();
        e.shift = folded_bias.data();
        e.relu = true;
        conv_kernel::forward_fused(conv.op, x.template view<rank>(), w, nullptr, e, z.template view<rank>());
      } else {
        fold(folded_weight, folded_bias);
        conv_kernel::forward(conv.op, x.template view<rank>(), folded_weight.template view<rank>(), folded_bias.data(),
                             z.template view<rank>());
        relu_in_place(z);
      }
      conv_out = tensor_t<B>();  // a stale training state must not be back-propagated
      input = this->inspecting() ? x.share() : tensor_t<B>();
      output = this->inspecting() ? z.share() : tensor_t<B>();
      return z;
    }
    tensor_t<B> y(z.shape());
    if constexpr (fused) {
      // The batch statistics come out of the convolution's store; one normalising pass follows.
      const index_t channels = y.dim(1);
      std::vector<double> sum(channels), squares(channels);
      ops::conv_epilogue e;
      e.sum = sum.data();
      e.sum_squares = squares.data();
      conv_kernel::forward_fused(conv.op, x.template view<rank>(), w, nullptr, e, y.template view<rank>());
      const double m = static_cast<double>(y.dim(0) * y.shape().size_from(2));
      for (index_t c = 0; c < channels; ++c) {
        const double mean = sum[c] / m, var = std::max(0.0, squares[c] / m - mean * mean);
        bn.saved_mean[c] = static_cast<T>(mean);
        bn.saved_invstd[c] = static_cast<T>(1.0 / std::sqrt(var + bn.op.eps));
        const double unbiased = m > 1 ? var * m / (m - 1) : var;
        bn.running_mean[c] = static_cast<T>((1 - bn.op.momentum) * bn.running_mean[c] + bn.op.momentum * mean);
        bn.running_var[c] = static_cast<T>((1 - bn.op.momentum) * bn.running_var[c] + bn.op.momentum * unbiased);
      }
      // z = γ·(y − mean)·invstd + β: the inference-form normalisation with the batch's statistics.
      batch_var.resize(shape{channels});
      for (index_t c = 0; c < channels; ++c) {
        const double invstd = bn.saved_invstd[c];
        batch_var[c] = static_cast<T>(1.0 / (invstd * invstd) - bn.op.eps);
      }
      bn_kernel::forward_inference(bn.op, detail::channel_view(y), bn.weight.data(), bn.bias.data(),
                                   bn.saved_mean.data(), batch_var.data(), detail::channel_view(z));
    } else {
      conv_kernel::forward(conv.op, x.template view<rank>(), w, nullptr, y.template view<rank>());
      bn_kernel::forward_training(bn.op, detail::channel_view(y), bn.weight.data(), bn.bias.data(),
                                  detail::channel_view(z), bn.saved_mean.data(), bn.saved_invstd.data(),
                                  bn.running_mean.data(), bn.running_var.data());
    }
    relu_in_place(z);
    input = x.share();
    conv_out = std::move(y);
    output = z.share();
    return z;
  }

  tensor_t<B> backward(const tensor_t<B>& dz) {
    require(detail::holds(output), std::string(kind), "backward needs a training-mode forward (or an inspection-mode one) first");
    detail::require_shape(dz.shape(), output.shape(), kind, "dz");
    tensor_t<B> g(dz.shape());  // dL/d BN-output: dz where z > 0
    for_each<B>(g.size(), relu_op::backward_body{}, g.data(), static_cast<const T*>(dz.data()),
                static_cast<const T*>(output.data()));
    if (!detail::holds(conv_out)) {
      // After an inspection forward: z = ReLU(conv(x, w') + b'), so dx = conv_backward_data(g, w').
      tensor_t<B> w_folded, b_folded;
      fold(w_folded, b_folded);
      tensor_t<B> dx(input.shape());
      conv_kernel::backward_data(conv.op, g.template view<rank>(), w_folded.template view<rank>(),
                                 dx.template view<rank>());
      return dx;
    }
    tensor_t<B> dy(dz.shape());
    bn_kernel::backward_training(bn.op, detail::channel_view(conv_out), detail::channel_view(g), bn.weight.data(),
                                 bn.saved_mean.data(), bn.saved_invstd.data(), detail::channel_view(dy),
                                 bn.weight_grad.data(), bn.bias_grad.data());
    g = tensor_t<B>();  // free before the convolution's backward allocates dx
    tensor_t<B> dx(input.shape());
    conv_kernel::backward_weights(conv.op, input.template view<rank>(), dy.template view<rank>(),
                                  conv.weight_grad.template view<rank>(), nullptr);
    conv_kernel::backward_data(conv.op, dy.template view<rank>(), conv.weight.template view<rank>(),
                               dx.template view<rank>());
    return dx;
  }

  template <class F>
  void for_each_parameter(F&& f) {
    f(parameter<B>{"conv.weight", &conv.weight, &conv.weight_grad, true});
    f(parameter<B>{"bn.weight", &bn.weight, &bn.weight_grad, false});
    f(parameter<B>{"bn.bias", &bn.bias, &bn.bias_grad, false});
  }
  template <class F>
  void for_each_buffer(F&& f) {
    f(std::string_view("bn.running_mean"), bn.running_mean);
    f(std::string_view("bn.running_var"), bn.running_var);
  }

 private:
  // Evaluation: w'[o] = w[o]·γ[o]/sqrt(var[o] + eps), b'[o] = β[o] − mean[o]·γ[o]/sqrt(var[o] + eps).
  // Computed on the host from copies of the (small) parameters, so device backends fold alike.
  void fold(tensor_t<B>& w_folded, tensor_t<B>& b_folded) const {
    const index_t oc = conv.weight.dim(0), per = conv.weight.shape().size_from(1);
    std::vector<T> w = conv.weight.to_vector(), shift(static_cast<std::size_t>(oc));  // [OC, IC, k...], [OC]
    const std::vector<double> scale = folded_scale(shift);
    for (index_t o = 0; o < oc; ++o)
      for (index_t i = 0; i < per; ++i) w[o * per + i] = static_cast<T>(w[o * per + i] * scale[o]);
    w_folded.resize(conv.weight.shape());
    w_folded.upload(w.data());
    b_folded.resize(shape{oc});
    b_folded.upload(shift.data());
  }
  // Evaluation on fused backends: scale[o] = γ/sqrt(var + eps), shift[o] = β − mean·scale (kept in
  // folded_weight / folded_bias as [C] vectors).
  void fold_scale_shift() {
    const index_t oc = conv.weight.dim(0);
    std::vector<T> shift(static_cast<std::size_t>(oc));
    const std::vector<double> scale = folded_scale(shift);
    const std::vector<T> scale_t(scale.begin(), scale.end());
    folded_weight.resize(shape{oc});
    folded_weight.upload(scale_t.data());
    folded_bias.resize(shape{oc});
    folded_bias.upload(shift.data());
  }
  // scale[o] = γ[o]/sqrt(running_var[o] + eps); shift[o] = β[o] − running_mean[o]·scale[o].
  std::vector<double> folded_scale(std::vector<T>& shift) const {
    const std::vector<T> gamma = bn.weight.to_vector(), beta = bn.bias.to_vector();
    const std::vector<T> mean = bn.running_mean.to_vector(), var = bn.running_var.to_vector();
    std::vector<double> scale(gamma.size());
    for (std::size_t o = 0; o < gamma.size(); ++o) {
      scale[o] = double(gamma[o]) / std::sqrt(double(var[o]) + bn.op.eps);
      shift[o] = static_cast<T>(double(beta[o]) - double(mean[o]) * scale[o]);
    }
    return scale;
  }
  static void relu_in_place(tensor_t<B>& z) {
    // The body reads x then writes y; both are the same element, so running it in place is safe.
    for_each<B>(z.size(), relu_op::forward_body{}, z.data(), static_cast<const T*>(z.data()));
  }
};

}  // namespace microcount::nn
