#pragma once
// Pooling layers.
//   max_pool2d<B> p;                         // 2×2 windows, stride 2 (PyTorch's MaxPool2d(2))
//   max_pool3d<B> q({1, 2, 2});              // per-frame 2×2 on [N, C, T, H, W], time kept
//   max_pool3d<B> r({2, 2, 2}, {2, 2, 2});
//   global_avg_pool<B> g;                    // [N, C, ...] -> [N, C]
#include <cstdint>
#include <string>

#include "microcount/nn/layer.hpp"
#include "microcount/nn/layers/views.hpp"
#include "microcount/nn/op.hpp"
#include "microcount/nn/ops_layers.hpp"

namespace microcount::nn {

// Max over windows without padding; odd sizes floor (PyTorch's ceil_mode=False). In training and inspection
// mode the position of each maximum is kept (int32 offsets within the input plane) and backward routes dy
// there.
template <int Dims, class B>
struct max_pool_layer : layer_base<B> {
  static constexpr std::string_view kind = Dims == 2 ? "max_pool2d" : "max_pool3d";
  using op_t = ops::max_pool<Dims>;
  using kernel_t = kernel<op_t, B>;
  static constexpr int rank = Dims + 2;

  op_t op{};
  tensor<std::int32_t, B> argmax;  // [N, C, out...], training and inspection mode only
  shape in_shape;                  // of the last training- or inspection-mode forward

  max_pool_layer() = default;
  // Stride defaults to the window (non-overlapping windows).
  explicit max_pool_layer(std::array<int, Dims> window) : op{window, window} {}
  max_pool_layer(std::array<int, Dims> window, std::array<int, Dims> stride) : op{window, stride} {}

  shape build(const shape& in, rng&) {
    require_op<op_t, B>();
    return op.output_shape(in);
  }

  tensor_t<B> forward(const tensor_t<B>& x) {
    tensor_t<B> y(op.output_shape(x.shape()));
    if (this->keeps_for_backward()) {
      argmax.resize(y.shape());
      in_shape = x.shape();
    } else {
      argmax = tensor<std::int32_t, B>();  // evaluation keeps nothing for backward
    }
    kernel_t::forward(op, x.template view<rank>(), y.template view<rank>(),
                      this->keeps_for_backward() ? argmax.data() : nullptr);
    return y;
  }

  tensor_t<B> backward(const tensor_t<B>& dy) {
    require(detail::holds(argmax), std::string(kind), "backward called without a training-mode forward (or an inspection-mode one)");
    detail::require_shape(dy.shape(), argmax.shape(), kind, "dy");
    tensor_t<B> dx(in_shape);
    kernel_t::backward(op, dy.template view<rank>(), argmax.data(), dx.template view<rank>());
    return dx;
  }
};

template <class B>
using max_pool2d = max_pool_layer<2, B>;
template <class B>
using max_pool3d = max_pool_layer<3, B>;

// The mean of each channel over all spatial positions (PyTorch's AdaptiveAvgPool(1) + flatten):
// [N, C, ...] -> [N, C].
template <class B>
struct global_avg_pool : layer_base<B> {
  static constexpr std::string_view kind = "global_avg_pool";
  using op_t = ops::global_avg_pool;
  using kernel_t = kernel<op_t, B>;

  op_t op{};
  shape in_shape;  // of the last forward

  shape build(const shape& in, rng&) {
    require_op<op_t, B>();
    return op.output_shape(in);
  }

  tensor_t<B> forward(const tensor_t<B>& x) {
    tensor_t<B> y(op.output_shape(x.shape()));
    kernel_t::forward(op, detail::channel_view(x), y.template view<2>());
    in_shape = x.shape();
    return y;
  }

  tensor_t<B> backward(const tensor_t<B>& dy) {
    require(in_shape.rank > 0, std::string(kind), "backward called before forward");
    detail::require_shape(dy.shape(), op.output_shape(in_shape), kind, "dy");
    tensor_t<B> dx(in_shape);
    kernel_t::backward(op, dy.template view<2>(), detail::channel_view(dx));
    return dx;
  }
};

}  // namespace microcount::nn
