#pragma once
// SIMD sums over contiguous ranges for the cpu layer kernels. Each block of at most `block` elements is
// summed in SIMD registers of T, then added into a double: float stays accurate on planes of millions of
// elements, and the order is fixed by the data layout alone (deterministic for any thread count).
#include "microcount/backends/cpu/simd.hpp"  // first: see simd.hpp
#include <algorithm>
#include <xsimd/xsimd.hpp>

#include "microcount/core/config.hpp"
#include "microcount/core/shape.hpp"

namespace microcount::cpu_layer_detail {

inline constexpr index_t block = 2048;

// Loads a V (a batch, or the scalar T itself for tails) from p.
template <class V, class T>
MICROCOUNT_INLINE V load_as(const T* p) {
  if constexpr (std::is_same_v<V, T>) return *p;
  else return V::load_unaligned(p);
}
template <class V, class T>
MICROCOUNT_INLINE void store_at(T* p, const V& v) {
  if constexpr (std::is_same_v<V, T>) *p = v;
  else v.store_unaligned(p);
}

// Calls body(V, i) at i = begin, begin+W, ... with V = xsimd::batch<T> while a full batch fits, then with
// V = T for the tail; body sees the (vector or scalar) loads it does itself.
template <class T, class Body>
MICROCOUNT_INLINE void simd_range(index_t begin, index_t end, Body&& body) {
  using batch = xsimd::batch<T>;
  constexpr index_t width = batch::size;
  index_t i = begin;
  for (; i + width <= end; i += width) body(batch{}, i);
  for (; i < end; ++i) body(T{}, i);
}

// Σ (x − shift) and Σ (x − shift)² over n elements, added to sum and squares.
template <class T>
void add_moments(const T* x, index_t n, T shift, double& sum, double& squares) {
  using batch = xsimd::batch<T>;
  constexpr index_t width = batch::size;
  for (index_t b0 = 0; b0 < n; b0 += block) {
    const index_t b1 = std::min(n, b0 + block);
    batch s0(T(0)), s1(T(0)), q0(T(0)), q1(T(0));
    const batch k(shift);
    index_t i = b0;
    for (; i + 2 * width <= b1; i += 2 * width) {
      const batch a = batch::load_unaligned(x + i) - k, b = batch::load_unaligned(x + i + width) - k;
      s0 += a;
      s1 += b;
      q0 = xsimd::fma(a, a, q0);
      q1 = xsimd::fma(b, b, q1);
    }
    T tail_sum = 0, tail_squares = 0;
    for (; i < b1; ++i) {
      const T a = x[i] - shift;
      tail_sum += a;
      tail_squares += a * a;
    }
    sum += double(xsimd::hadd(s0 + s1)) + double(tail_sum);
    squares += double(xsimd::hadd(q0 + q1)) + double(tail_squares);
  }
}

// Σ dy and Σ dy·(x − center) over n elements, added to sum_dy and sum_dy_x.
template <class T>
void add_gradient_moments(const T* x, const T* dy, index_t n, T center, double& sum_dy, double& sum_dy_x) {
  using batch = xsimd::batch<T>;
  constexpr index_t width = batch::size;
  for (index_t b0 = 0; b0 < n; b0 += block) {
    const index_t b1 = std::min(n, b0 + block);
    batch s0(T(0)), s1(T(0)), p0(T(0)), p1(T(0));
    const batch k(center);
    index_t i = b0;
    for (; i + 2 * width <= b1; i += 2 * width) {
      const batch g0 = batch::load_unaligned(dy + i), g1 = batch::load_unaligned(dy + i + width);
      s0 += g0;
      s1 += g1;
      p0 = xsimd::fma(g0, batch::load_unaligned(x + i) - k, p0);
      p1 = xsimd::fma(g1, batch::load_unaligned(x + i + width) - k, p1);
    }
    T tail_dy = 0, tail_dy_x = 0;
    for (; i < b1; ++i) {
      tail_dy += dy[i];
      tail_dy_x += dy[i] * (x[i] - center);
    }
    sum_dy += double(xsimd::hadd(s0 + s1)) + double(tail_dy);
    sum_dy_x += double(xsimd::hadd(p0 + p1)) + double(tail_dy_x);
  }
}

// Σ x over n elements.
template <class T>
double sum(const T* x, index_t n) {
  using batch = xsimd::batch<T>;
  constexpr index_t width = batch::size;
  double total = 0;
  for (index_t b0 = 0; b0 < n; b0 += block) {
    const index_t b1 = std::min(n, b0 + block);
    batch s0(T(0)), s1(T(0));
    index_t i = b0;
    for (; i + 2 * width <= b1; i += 2 * width) {
      s0 += batch::load_unaligned(x + i);
      s1 += batch::load_unaligned(x + i + width);
    }
    T tail = 0;
    for (; i < b1; ++i) tail += x[i];
    total += double(xsimd::hadd(s0 + s1)) + double(tail);
  }
  return total;
}

}  // namespace microcount::cpu_layer_detail
