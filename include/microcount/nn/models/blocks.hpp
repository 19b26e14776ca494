#pragma once
// The building blocks models share: normalisation and upsampling choices, and the conv-norm-ReLU unit.
//   conv_unit<Dims, Norm, B>   = conv_bn_relu (norm::batch), seq<conv, group_norm, relu>, seq<conv + bias, relu> (none)
//   conv_block<Dims, Norm, B>  = seq<conv_unit, conv_unit>
#include <algorithm>
#include <array>
#include <string_view>
#include <type_traits>

#include "microcount/nn/compose.hpp"
#include "microcount/nn/layers/activation.hpp"
#include "microcount/nn/layers/conv.hpp"
#include "microcount/nn/layers/conv_bn_relu.hpp"
#include "microcount/nn/layers/norm.hpp"

namespace microcount::nn {

namespace norm {
struct batch { static constexpr std::string_view name = "batch"; };
struct group { static constexpr std::string_view name = "group"; };
struct none { static constexpr std::string_view name = "none"; };
}  // namespace norm
namespace up {
struct transposed { static constexpr std::string_view name = "transposed"; };  // 2×2 transposed conv, stride 2
struct nearest { static constexpr std::string_view name = "nearest"; };        // nearest ×2, then 1×1 conv
struct bilinear { static constexpr std::string_view name = "bilinear"; };      // (bi/tri)linear ×2, then 1×1 conv
}  // namespace up

template <class N>
concept norm_choice = std::is_same_v<N, norm::batch> || std::is_same_v<N, norm::group> || std::is_same_v<N, norm::none>;
template <class U>
concept up_choice = std::is_same_v<U, up::transposed> || std::is_same_v<U, up::nearest> || std::is_same_v<U, up::bilinear>;

template <int Dims, class Norm, class B>
using norm_layer = std::conditional_t<std::is_same_v<Norm, norm::batch>, batch_norm_layer<Dims, B>, group_norm_layer<Dims, B>>;

// norm::batch uses the fused conv_bn_relu layer (same function, less memory, faster on cpu).
template <int Dims, class Norm, class B>
using conv_unit = std::conditional_t<
    std::is_same_v<Norm, norm::batch>, conv_bn_relu<Dims, B>,
    std::conditional_t<std::is_same_v<Norm, norm::none>, seq<conv_layer<Dims, B>, relu<B>>,
                       seq<conv_layer<Dims, B>, norm_layer<Dims, Norm, B>, relu<B>>>>;
template <int Dims, class Norm, class B>
using conv_block = seq<conv_unit<Dims, Norm, B>, conv_unit<Dims, Norm, B>>;

// A "same" convolution (padding k/2) with `width` outputs, then the normalisation, then ReLU.
// With norm::batch the convolution has no bias (the norm's shift replaces it); GroupNorm uses the largest
// group count <= `groups` that divides the width.
template <int Dims, class Norm, class B>
conv_unit<Dims, Norm, B> make_conv_unit(const std::array<int, Dims>& kernel_size, index_t width, index_t groups) {
  ops::conv<Dims> same;
  for (int a = 0; a < Dims; ++a) same.pad[a] = kernel_size[a] / 2;
  conv_layer<Dims, B> conv(width, kernel_size, same, std::is_same_v<Norm, norm::none>);
  if constexpr (std::is_same_v<Norm, norm::none>) {
    return conv_unit<Dims, Norm, B>(std::move(conv), relu<B>());
  } else if constexpr (std::is_same_v<Norm, norm::batch>) {
    return conv_bn_relu<Dims, B>(width, kernel_size, same);
  } else {
    index_t g = std::max<index_t>(1, std::min(groups, width));
    while (width % g != 0) --g;
    return conv_unit<Dims, Norm, B>(std::move(conv), norm_layer<Dims, Norm, B>(g), relu<B>());
  }
}

template <int Dims, class Norm, class B>
conv_block<Dims, Norm, B> make_conv_block(const std::array<int, Dims>& kernel_size, index_t width, index_t groups) {
  return conv_block<Dims, Norm, B>(make_conv_unit<Dims, Norm, B>(kernel_size, width, groups),
                                   make_conv_unit<Dims, Norm, B>(kernel_size, width, groups));
}

}  // namespace microcount::nn
