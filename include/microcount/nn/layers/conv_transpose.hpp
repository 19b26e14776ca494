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
using conv_transpose_layer = weighted_conv_layer<ops::conv_transpose<Dims>, B>;

template <class B>
using conv_transpose2d = conv_transpose_layer<2, B>;
template <class B>
using conv_transpose3d = conv_transpose_layer<3, B>;

}  // namespace microcount::nn
