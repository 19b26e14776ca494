#pragma once
// Activations. The elementwise ones (relu, leaky_relu, sigmoid) are one body each (nn/ops_layers.hpp) run by
// the backend's for_each launcher: body_kernels::activation<Op, B> is the kernel of every host backend.
// Softmax over channels is a reduction across the channel axis: plain loops here, SIMD in backends/cpu.
#include <algorithm>
#include <cmath>

#include "microcount/backends/reference/launch.hpp"
#include "microcount/core/elementwise.hpp"
#include "microcount/core/tensor.hpp"
#include "microcount/nn/op.hpp"
#include "microcount/nn/ops_layers.hpp"

namespace microcount::body_kernels {

// Kernels written entirely as elementwise bodies: the same code on every backend that has a launcher.
template <class Op, class B>
struct activation {
  using op = Op;
  using T = scalar_t<B>;
  // y = f(x) over n elements.
  static void forward(const op& p, index_t n, const T* x, T* y) { for_each<B>(n, p.template forward<T>(), y, x); }
  // dx = dy · f'(·) where `saved` is y when Op::saves_output, else x.
  static void backward(const op& p, index_t n, const T* saved, const T* dy, T* dx) {
    for_each<B>(n, p.template backward<T>(), dx, dy, saved);
  }
};

}  // namespace microcount::body_kernels

namespace microcount::reference_detail {

template <class T>
struct softmax_kernel {
  using op = ops::softmax;
  using in_view = tensor_view<const T, 3>;  // [N, C, S]
  using out_view = tensor_view<T, 3>;

  static void forward(const op&, in_view x, out_view y) {
    for (index_t i = 0; i < x.extent[0]; ++i)
      for (index_t j = 0; j < x.extent[2]; ++j) {
        double largest = x(i, 0, j), sum = 0;
        for (index_t c = 1; c < x.extent[1]; ++c) largest = std::max<double>(largest, x(i, c, j));
        for (index_t c = 0; c < x.extent[1]; ++c) sum += std::exp(double(x(i, c, j)) - largest);
        for (index_t c = 0; c < x.extent[1]; ++c) y(i, c, j) = T(std::exp(double(x(i, c, j)) - largest) / sum);
      }
  }

  // dx = y ⊙ (dy − Σ_c dy·y): the Jacobian diag(y) − y·yᵀ applied to dy.
  static void backward(const op&, in_view y, in_view dy, out_view dx) {
    for (index_t i = 0; i < y.extent[0]; ++i)
      for (index_t j = 0; j < y.extent[2]; ++j) {
        double dot = 0;
        for (index_t c = 0; c < y.extent[1]; ++c) dot += double(dy(i, c, j)) * y(i, c, j);
        for (index_t c = 0; c < y.extent[1]; ++c) dx(i, c, j) = T(y(i, c, j) * (dy(i, c, j) - dot));
      }
  }
};

}  // namespace microcount::reference_detail

namespace microcount {

template <>
struct kernel<ops::relu, backend::reference> : body_kernels::activation<ops::relu, backend::reference> {};
template <>
struct kernel<ops::relu, backend::reference_f64> : body_kernels::activation<ops::relu, backend::reference_f64> {};
template <>
struct kernel<ops::leaky_relu, backend::reference> : body_kernels::activation<ops::leaky_relu, backend::reference> {};
template <>
struct kernel<ops::leaky_relu, backend::reference_f64>
    : body_kernels::activation<ops::leaky_relu, backend::reference_f64> {};
template <>
struct kernel<ops::sigmoid, backend::reference> : body_kernels::activation<ops::sigmoid, backend::reference> {};
template <>
struct kernel<ops::sigmoid, backend::reference_f64> : body_kernels::activation<ops::sigmoid, backend::reference_f64> {};
template <>
struct kernel<ops::softmax, backend::reference> : reference_detail::softmax_kernel<float> {};
template <>
struct kernel<ops::softmax, backend::reference_f64> : reference_detail::softmax_kernel<double> {};

}  // namespace microcount
