#pragma once
// Upsampling by integer factors per spatial axis.
//   upsample2d<B> u;                                              // nearest ×2 (PyTorch's Upsample(scale_factor=2))
//   upsample2d<B> b({2, 2}, ops::upsample_mode::linear);          // bilinear, align_corners=False
//   upsample3d<B> t({1, 2, 2}, ops::upsample_mode::linear);       // bilinear per frame of [N, C, T, H, W]
//   upsample3d<B> v({2, 2, 2}, ops::upsample_mode::linear);       // trilinear
#include <string>

#include "microcount/nn/layer.hpp"
#include "microcount/nn/layers/views.hpp"
#include "microcount/nn/op.hpp"
#include "microcount/nn/ops_layers.hpp"

namespace microcount::nn {

template <int Dims, class B>
struct upsample_layer : layer_base<B> {
  static constexpr std::string_view kind = Dims == 2 ? "upsample2d" : "upsample3d";
  using op_t = ops::upsample<Dims>;
  using kernel_t = kernel<op_t, B>;
  static constexpr int rank = Dims + 2;

  op_t op{};
  shape in_shape;  // of the last forward (backward needs only the shape)

  upsample_layer() = default;
  explicit upsample_layer(std::array<int, Dims> scale, ops::upsample_mode mode = ops::upsample_mode::nearest)
      : op{scale, mode} {}

  shape build(const shape& in, rng&) {
    require_op<op_t, B>();
    return op.output_shape(in);
  }

  tensor_t<B> forward(const tensor_t<B>& x) {
    tensor_t<B> y(op.output_shape(x.shape()));
    kernel_t::forward(op, x.template view<rank>(), y.template view<rank>());
    in_shape = x.shape();
    return y;
  }

  tensor_t<B> backward(const tensor_t<B>& dy) {
    require(in_shape.rank > 0, std::string(kind), "backward called before forward");
    detail::require_shape(dy.shape(), op.output_shape(in_shape), kind, "dy");
    tensor_t<B> dx(in_shape);
    kernel_t::backward(op, dy.template view<rank>(), dx.template view<rank>());
    return dx;
  }
};

template <class B>
using upsample2d = upsample_layer<2, B>;
template <class B>
using upsample3d = upsample_layer<3, B>;

}  // namespace microcount::nn
