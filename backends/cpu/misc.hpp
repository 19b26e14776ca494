#pragma once
// cpu channel concatenation (threaded block copies), add and dropout (one-body kernels on the SIMD
// launcher; dropout masks hashed in parallel chunks) and the fully connected layer through Eigen's GEMM.
#include "microcount/backends/cpu/simd.hpp"  // first: see simd.hpp
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>
// GCC 12's AVX-512 headers make Eigen's GEMM kernels raise a false -Wmaybe-uninitialized (GCC bug 105593).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <Eigen/Core>
#pragma GCC diagnostic pop

#include "microcount/backends/cpu/launch.hpp"
#include "microcount/backends/reference/misc.hpp"
#include "microcount/core/parallel.hpp"
#include "microcount/core/tensor.hpp"
#include "microcount/nn/op.hpp"
#include "microcount/nn/ops_layers.hpp"

namespace microcount::cpu_layer_detail {

struct concat_cpu {
  using op = ops::concat;
  using T = float;
  static constexpr index_t piece = 1 << 15;  // elements per copy task

  template <int Rank>
  static void forward(const op&, std::type_identity_t<tensor_view<const T, Rank>> a,
                      std::type_identity_t<tensor_view<const T, Rank>> b, tensor_view<T, Rank> y) {
    reference_detail::concat_kernel<T>::check(a, b, y);
    const index_t block_a = a.size() / a.extent[0], block_b = b.size() / b.extent[0];
    copy_blocks(a.extent[0], block_a, block_b, [&](index_t i, bool second, index_t begin, index_t end) {
      const T* from = second ? b.data + i * block_b : a.data + i * block_a;
      T* to = y.data + i * (block_a + block_b) + (second ? block_a : 0);
      std::memcpy(to + begin, from + begin, sizeof(T) * std::size_t(end - begin));
    });
  }

  template <int Rank>
  static void backward(const op&, std::type_identity_t<tensor_view<const T, Rank>> dy, tensor_view<T, Rank> da,
                       tensor_view<T, Rank> db) {
    reference_detail::concat_kernel<T>::check(da, db, dy);
    const index_t block_a = da.size() / da.extent[0], block_b = db.size() / db.extent[0];
    copy_blocks(da.extent[0], block_a, block_b, [&](index_t i, bool second, index_t begin, index_t end) {
      const T* from = dy.data + i * (block_a + block_b) + (second ? block_a : 0);
      T* to = second ? db.data + i * block_b : da.data + i * block_a;
      std::memcpy(to + begin, from + begin, sizeof(T) * std::size_t(end - begin));
    });
  }

 private:
  // copy(sample, second block?, begin, end) over pieces of every sample's two blocks, in parallel.
  template <class F>
  static void copy_blocks(index_t samples, index_t block_a, index_t block_b, F&& copy) {
    const index_t pieces_a = (block_a + piece - 1) / piece, pieces_b = (block_b + piece - 1) / piece;
    parallel_for(0, samples * (pieces_a + pieces_b), [&](index_t t) {
      const index_t i = t / (pieces_a + pieces_b), k = t % (pieces_a + pieces_b);
      const bool second = k >= pieces_a;
      const index_t begin = (second ? k - pieces_a : k) * piece;
      copy(i, second, begin, std::min(second ? block_b : block_a, begin + piece));
    });
  }
};

struct dropout_cpu : body_kernels::dropout_apply<backend::cpu> {
  using op = ops::dropout;
  using T = float;
  static constexpr index_t chunk = 1 << 14;

  static void make_mask(const op& p, std::uint64_t key, index_t n, T* mask) {
    const std::uint32_t threshold = p.threshold();
    const T scale = p.template keep_scale<T>();
    parallel_for(0, (n + chunk - 1) / chunk, [&](index_t t) {
      const index_t end = std::min(n, (t + 1) * chunk);
      for (index_t i = t * chunk; i < end; ++i) mask[i] = op::kept(key, std::uint64_t(i), threshold) ? scale : T(0);
    });
  }
};

struct linear_cpu {
  using op = ops::linear;
  using T = float;
  using matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using in_map = Eigen::Map<const matrix>;
  using out_map = Eigen::Map<matrix>;

  // y [N, out] = x [N, in] · wᵀ + bias
  static void forward(const op&, tensor_view<const T, 2> x, tensor_view<const T, 2> w, const T* bias,
                      tensor_view<T, 2> y) {
    require(x.is_contiguous() && w.is_contiguous() && y.is_contiguous(), "linear", "views must be contiguous");
    in_map xm(x.data, x.extent[0], x.extent[1]), wm(w.data, w.extent[0], w.extent[1]);
    out_map ym(y.data, y.extent[0], y.extent[1]);
    ym.noalias() = xm * wm.transpose();
    if (bias) ym.rowwise() += Eigen::Map<const Eigen::Matrix<T, 1, Eigen::Dynamic>>(bias, w.extent[0]);
  }
  // dx [N, in] = dy [N, out] · w [out, in]
  static void backward_data(const op&, tensor_view<const T, 2> dy, tensor_view<const T, 2> w, tensor_view<T, 2> dx) {
    require(dy.is_contiguous() && w.is_contiguous() && dx.is_contiguous(), "linear", "views must be contiguous");
    out_map(dx.data, dx.extent[0], dx.extent[1]).noalias() =
        in_map(dy.data, dy.extent[0], dy.extent[1]) * in_map(w.data, w.extent[0], w.extent[1]);
  }
  // dw [out, in] = dyᵀ · x, dbias [out] = column sums of dy
  static void backward_weights(const op&, tensor_view<const T, 2> x, tensor_view<const T, 2> dy, tensor_view<T, 2> dw,
                               T* dbias) {
    require(x.is_contiguous() && dy.is_contiguous() && dw.is_contiguous(), "linear", "views must be contiguous");
    in_map dym(dy.data, dy.extent[0], dy.extent[1]);
    out_map(dw.data, dw.extent[0], dw.extent[1]).noalias() = dym.transpose() * in_map(x.data, x.extent[0], x.extent[1]);
    if (dbias) Eigen::Map<Eigen::Matrix<T, 1, Eigen::Dynamic>>(dbias, dy.extent[1]) = dym.colwise().sum();
  }
};

}  // namespace microcount::cpu_layer_detail

namespace microcount {

template <>
struct kernel<ops::concat, backend::cpu> : cpu_layer_detail::concat_cpu {};
template <>
struct kernel<ops::add, backend::cpu> : body_kernels::add<backend::cpu> {};
template <>
struct kernel<ops::dropout, backend::cpu> : cpu_layer_detail::dropout_cpu {};
template <>
struct kernel<ops::linear, backend::cpu> : cpu_layer_detail::linear_cpu {};

}  // namespace microcount
