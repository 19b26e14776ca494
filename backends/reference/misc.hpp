#pragma once
// Reference channel concatenation, elementwise add, dropout and fully connected (linear) kernels.
// add and dropout's apply are one body each (body_kernels::*, shared with every host backend).
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <tuple>

#include "microcount/backends/reference/conv.hpp"
#include "microcount/backends/reference/launch.hpp"
#include "microcount/core/elementwise.hpp"
#include "microcount/core/tensor.hpp"
#include "microcount/nn/op.hpp"
#include "microcount/nn/ops_layers.hpp"

namespace microcount::body_kernels {

template <class B>
struct add {
  using op = ops::add;
  using T = scalar_t<B>;
  // y = a + b over n elements (y may alias a or b).
  static void forward(const op&, index_t n, const T* a, const T* b, T* y) {
    for_each<B>(n, op::forward_body{}, y, a, b);
  }
  // y += x over n elements.
  static void accumulate(const op&, index_t n, const T* x, T* y) { for_each<B>(n, op::accumulate_body{}, y, x); }
};

// dropout's mask application; mask generation is per backend (it needs the element index).
template <class B>
struct dropout_apply {
  using T = scalar_t<B>;
  // y = x · mask over n elements: the forward (x = input) and the backward (x = dy) alike.
  static void apply(const ops::dropout&, index_t n, const T* x, const T* mask, T* y) {
    for_each<B>(n, ops::dropout::apply_body{}, y, x, mask);
  }
};

}  // namespace microcount::body_kernels

namespace microcount::reference_detail {

// Channel concatenation of contiguous [N, C, ...] views of any rank >= 2.
template <class T>
struct concat_kernel {
  using op = ops::concat;

  // y = [a, b] along channels.
  template <int Rank>
  static void forward(const op&, std::type_identity_t<tensor_view<const T, Rank>> a,
                      std::type_identity_t<tensor_view<const T, Rank>> b, tensor_view<T, Rank> y) {
    check(a, b, y);
    const index_t block_a = a.size() / a.extent[0], block_b = b.size() / b.extent[0];
    for (index_t i = 0; i < a.extent[0]; ++i) {
      for (index_t j = 0; j < block_a; ++j) y.data[i * (block_a + block_b) + j] = a.data[i * block_a + j];
      for (index_t j = 0; j < block_b; ++j) y.data[i * (block_a + block_b) + block_a + j] = b.data[i * block_b + j];
    }
  }

  // da, db = the two channel ranges of dy (the adjoint of forward).
  template <int Rank>
  static void backward(const op&, std::type_identity_t<tensor_view<const T, Rank>> dy, tensor_view<T, Rank> da,
                       tensor_view<T, Rank> db) {
    check(da, db, dy);
    const index_t block_a = da.size() / da.extent[0], block_b = db.size() / db.extent[0];
    for (index_t i = 0; i < da.extent[0]; ++i) {
      for (index_t j = 0; j < block_a; ++j) da.data[i * block_a + j] = dy.data[i * (block_a + block_b) + j];
      for (index_t j = 0; j < block_b; ++j) db.data[i * block_b + j] = dy.data[i * (block_a + block_b) + block_a + j];
    }
  }

  // Throws unless y's extents are a's and b's concatenated along channels and all views are contiguous.
  template <class A, class Bv, class Y>
  static void check(const A& a, const Bv& b, const Y& y) {
    constexpr int rank = static_cast<int>(std::tuple_size_v<decltype(a.extent)>);
    static_assert(rank >= 2, "microcount: concat needs [N, C, ...] views");
    shape sa, sb, sy;
    sa.rank = sb.rank = sy.rank = rank;
    for (int k = 0; k < rank; ++k) {
      sa[k] = a.extent[k];
      sb[k] = b.extent[k];
      sy[k] = y.extent[k];
    }
    require(ops::concat{}.output_shape(sa, sb) == sy, "concat",
            "output " + sy.str() + " does not match inputs " + sa.str() + " and " + sb.str());
    require(a.is_contiguous() && b.is_contiguous() && y.is_contiguous(), "concat", "views must be contiguous");
  }
};

template <class B>
struct dropout_kernel : body_kernels::dropout_apply<B> {
  using op = ops::dropout;
  using T = scalar_t<B>;
  // mask[i] = 1/(1 − p) where element i is kept under `key`, else 0.
  static void make_mask(const op& p, std::uint64_t key, index_t n, T* mask) {
    const std::uint32_t threshold = p.threshold();
    const T scale = p.template keep_scale<T>();
    for (index_t i = 0; i < n; ++i) mask[i] = op::kept(key, std::uint64_t(i), threshold) ? scale : T(0);
  }
};

template <class T>
struct linear_kernel {
  using op = ops::linear;
  using in_view = tensor_view<const T, 2>;
  using out_view = tensor_view<T, 2>;

  // y [N, out] = x [N, in] · wᵀ [in, out] + bias [out] (bias may be null).
  static void forward(const op&, in_view x, in_view w, const T* bias, out_view y) {
    for (index_t i = 0; i < x.extent[0]; ++i)
      for (index_t o = 0; o < w.extent[0]; ++o) {
        double sum = bias ? double(bias[o]) : 0.0;
        for (index_t k = 0; k < x.extent[1]; ++k) sum += double(x(i, k)) * w(o, k);
        y(i, o) = T(sum);
      }
  }
  // dx [N, in] = dy [N, out] · w [out, in]
  static void backward_data(const op&, in_view dy, in_view w, out_view dx) {
    for (index_t i = 0; i < dx.extent[0]; ++i)
      for (index_t k = 0; k < dx.extent[1]; ++k) {
        double sum = 0;
        for (index_t o = 0; o < w.extent[0]; ++o) sum += double(dy(i, o)) * w(o, k);
        dx(i, k) = T(sum);
      }
  }
  // dw [out, in] = dyᵀ · x, dbias [out] = Σ_n dy (when non-null)
  static void backward_weights(const op&, in_view x, in_view dy, out_view dw, T* dbias) {
    for (index_t o = 0; o < dw.extent[0]; ++o) {
      for (index_t k = 0; k < dw.extent[1]; ++k) {
        double sum = 0;
        for (index_t i = 0; i < x.extent[0]; ++i) sum += double(dy(i, o)) * x(i, k);
        dw(o, k) = T(sum);
      }
      if (dbias) {
        double sum = 0;
        for (index_t i = 0; i < dy.extent[0]; ++i) sum += dy(i, o);
        dbias[o] = T(sum);
      }
    }
  }
};

}  // namespace microcount::reference_detail

namespace microcount {

template <>
struct kernel<ops::concat, backend::reference> : reference_detail::concat_kernel<float> {};
template <>
struct kernel<ops::concat, backend::reference_f64> : reference_detail::concat_kernel<double> {};
template <>
struct kernel<ops::add, backend::reference> : body_kernels::add<backend::reference> {};
template <>
struct kernel<ops::add, backend::reference_f64> : body_kernels::add<backend::reference_f64> {};
template <>
struct kernel<ops::dropout, backend::reference> : reference_detail::dropout_kernel<backend::reference> {};
template <>
struct kernel<ops::dropout, backend::reference_f64> : reference_detail::dropout_kernel<backend::reference_f64> {};
template <>
struct kernel<ops::linear, backend::reference> : reference_detail::linear_kernel<float> {};
template <>
struct kernel<ops::linear, backend::reference_f64> : reference_detail::linear_kernel<double> {};

}  // namespace microcount
