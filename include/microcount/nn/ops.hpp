#pragma once
// Op parameter structs. Shapes follow NCHW / NCDHW:
//   conv<2>:           x [N, IC, H, W]      w [OC, IC, KH, KW]        -> y [N, OC, OH, OW]
//   conv<3>:           x [N, IC, D, H, W]   w [OC, IC, KD, KH, KW]    -> y [N, OC, OD, OH, OW]
//   conv_transpose<2>: x [N, IC, H, W]      w [IC, OC, KH, KW]        -> y [N, OC, OH, OW]   (PyTorch's weight layout)
// with, per spatial axis, OH = (H + 2·pad − dilation·(K − 1) − 1) / stride + 1 for conv and
// OH = (H − 1)·stride − 2·pad + dilation·(K − 1) + 1 + output_pad for conv_transpose.
#include <array>
#include <string>

#include "microcount/core/error.hpp"
#include "microcount/core/shape.hpp"

namespace microcount::ops {

template <int Dims>
struct conv {
  static_assert(Dims == 2 || Dims == 3, "microcount: conv supports 2 or 3 spatial dimensions");
  static constexpr int dims = Dims;
  std::array<int, Dims> stride = filled(1);
  std::array<int, Dims> pad = filled(0);
  std::array<int, Dims> dilation = filled(1);

  static constexpr std::array<int, Dims> filled(int v) {
    std::array<int, Dims> a{};
    for (auto& e : a) e = v;
    return a;
  }

  // Output shape for input `x` and weight `w`; throws a readable error on a mismatch.
  [[nodiscard]] shape output_shape(const shape& x, const shape& w) const {
    require(x.rank == Dims + 2 && w.rank == Dims + 2, "conv",
            "expects input and weight of rank " + std::to_string(Dims + 2) + ", got " + x.str() + " and " + w.str());
    require(x[1] == w[1], "conv", "input has " + std::to_string(x[1]) + " channels but the weight expects " +
                                      std::to_string(w[1]) + " (input " + x.str() + ", weight " + w.str() + ")");
    shape y = x;
    y[1] = w[0];
    for (int a = 0; a < Dims; ++a) {
      const index_t extent = x[2 + a] + 2 * pad[a] - dilation[a] * (w[2 + a] - 1) - 1;
      require(extent >= 0 && stride[a] >= 1, "conv", "kernel " + w.str() + " does not fit input " + x.str());
      y[2 + a] = extent / stride[a] + 1;
    }
    return y;
  }
};

// Optional work a backend may fuse into a convolution's store (kernel<ops::conv<D>, B>::forward_fused),
// per output channel c:
//   z = conv(x, w)[c] + bias[c]                                   (bias optional, as in forward)
//   sum[c] = Σ z,  sum_squares[c] = Σ z²  over batch and space    (BatchNorm statistics, training)
//   y = z · scale[c] + shift[c], then max(y, 0) when relu          (folded BatchNorm + ReLU, inference)
// Statistics are taken BEFORE scale/shift/ReLU. Every pointer may be null (skipped / identity).
struct conv_epilogue {
  const float* scale = nullptr;   // [OC]
  const float* shift = nullptr;   // [OC]
  bool relu = false;
  double* sum = nullptr;          // [OC], overwritten
  double* sum_squares = nullptr;  // [OC], overwritten

  [[nodiscard]] bool wants_statistics() const { return sum || sum_squares; }
  [[nodiscard]] bool transforms() const { return scale || shift || relu; }
};

template <int Dims>
struct conv_transpose {
  static_assert(Dims == 2 || Dims == 3, "microcount: conv_transpose supports 2 or 3 spatial dimensions");
  static constexpr int dims = Dims;
  std::array<int, Dims> stride = conv<Dims>::filled(1);
  std::array<int, Dims> pad = conv<Dims>::filled(0);
  std::array<int, Dims> dilation = conv<Dims>::filled(1);
  std::array<int, Dims> output_pad = conv<Dims>::filled(0);

  [[nodiscard]] shape output_shape(const shape& x, const shape& w) const {
    require(x.rank == Dims + 2 && w.rank == Dims + 2, "conv_transpose",
            "expects input and weight of rank " + std::to_string(Dims + 2) + ", got " + x.str() + " and " + w.str());
    require(x[1] == w[0], "conv_transpose", "input has " + std::to_string(x[1]) + " channels but the weight expects " +
                                                std::to_string(w[0]) + " (input " + x.str() + ", weight " + w.str() + ")");
    shape y = x;
    y[1] = w[1];
    for (int a = 0; a < Dims; ++a) {
      y[2 + a] = (x[2 + a] - 1) * stride[a] - 2 * pad[a] + dilation[a] * (w[2 + a] - 1) + 1 + output_pad[a];
      require(y[2 + a] > 0, "conv_transpose", "output would be empty for input " + x.str());
    }
    return y;
  }

  // The convolution this op is the transpose (adjoint) of.
  [[nodiscard]] conv<Dims> forward_conv() const { return {stride, pad, dilation}; }
};

}  // namespace microcount::ops
