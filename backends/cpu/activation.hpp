#pragma once
// cpu activations: relu, leaky_relu and sigmoid are the shared one-body kernels on the SIMD launcher;
// softmax over channels runs SIMD across positions (contiguous) and loops over channels, in chunks of
// positions spread over threads.
#include "microcount/backends/cpu/simd.hpp"  // first: see simd.hpp
#include <algorithm>
#include <xsimd/xsimd.hpp>

#include "microcount/backends/cpu/launch.hpp"
#include "microcount/backends/cpu/reduce.hpp"
#include "microcount/backends/reference/activation.hpp"
#include "microcount/core/parallel.hpp"
#include "microcount/core/tensor.hpp"
#include "microcount/nn/op.hpp"
#include "microcount/nn/ops_layers.hpp"

namespace microcount::cpu_layer_detail {

struct softmax_cpu {
  using op = ops::softmax;
  using T = float;
  using in_view = tensor_view<const T, 3>;  // [N, C, S]
  using out_view = tensor_view<T, 3>;
  static constexpr index_t chunk = 4096;  // positions per task

  static void forward(const op&, in_view x, out_view y) {
    require(x.is_contiguous() && y.is_contiguous(), "softmax", "views must be contiguous");
    const index_t channels = x.extent[1], s = x.extent[2];
    for_chunks(x.extent[0], s, [&](index_t i, index_t begin, index_t end) {
      const T* xs = x.data + i * channels * s;
      T* ys = y.data + i * channels * s;
      simd_range<T>(begin, end, [&](auto v, index_t j) {
        using V = decltype(v);
        using namespace microcount::math;
        V largest = load_as<V>(xs + j);
        for (index_t c = 1; c < channels; ++c) largest = max(largest, load_as<V>(xs + c * s + j));
        V total(T(0));
        for (index_t c = 0; c < channels; ++c) {
          const V e = exp(load_as<V>(xs + c * s + j) - largest);
          store_at(ys + c * s + j, e);
          total = total + e;
        }
        const V inverse = V(T(1)) / total;
        for (index_t c = 0; c < channels; ++c) store_at(ys + c * s + j, load_as<V>(ys + c * s + j) * inverse);
      });
    });
  }

  // dx = y ⊙ (dy − Σ_c dy·y)
  static void backward(const op&, in_view y, in_view dy, out_view dx) {
    require(y.is_contiguous() && dy.is_contiguous() && dx.is_contiguous(), "softmax", "views must be contiguous");
    const index_t channels = y.extent[1], s = y.extent[2];
    for_chunks(y.extent[0], s, [&](index_t i, index_t begin, index_t end) {
      const index_t base = i * channels * s;
      simd_range<T>(begin, end, [&](auto v, index_t j) {
        using V = decltype(v);
        V dot(T(0));
        for (index_t c = 0; c < channels; ++c)
          dot = dot + load_as<V>(dy.data + base + c * s + j) * load_as<V>(y.data + base + c * s + j);
        for (index_t c = 0; c < channels; ++c) {
          const index_t at = base + c * s + j;
          store_at(dx.data + at, load_as<V>(y.data + at) * (load_as<V>(dy.data + at) - dot));
        }
      });
    });
  }

 private:
  // f(sample, begin, end) over position chunks of every sample.
  template <class F>
  static void for_chunks(index_t samples, index_t s, F&& f) {
    const index_t per_sample = (s + chunk - 1) / chunk;
    parallel_for(0, samples * per_sample, [&](index_t t) {
      const index_t i = t / per_sample, begin = (t % per_sample) * chunk;
      f(i, begin, std::min(s, begin + chunk));
    });
  }
};

}  // namespace microcount::cpu_layer_detail

namespace microcount {

template <>
struct kernel<ops::relu, backend::cpu> : body_kernels::activation<ops::relu, backend::cpu> {};
template <>
struct kernel<ops::leaky_relu, backend::cpu> : body_kernels::activation<ops::leaky_relu, backend::cpu> {};
template <>
struct kernel<ops::sigmoid, backend::cpu> : body_kernels::activation<ops::sigmoid, backend::cpu> {};
template <>
struct kernel<ops::softmax, backend::cpu> : cpu_layer_detail::softmax_cpu {};

}  // namespace microcount
