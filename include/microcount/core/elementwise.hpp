#pragma once
// One body for elementwise ops on every backend.
//
// An elementwise body is a functor whose call operator is a template over the value type V:
//
//   struct relu_forward {
//     template <class V> MICROCOUNT_HOST_DEVICE void operator()(V& y, const V& x) const {
//       using namespace microcount::math;   // scalar overloads; xsimd's come in by ADL
//       y = max(x, V(0));
//     }
//   };
//
// and a backend runs it with  for_each<Backend>(n, body, y_ptr, x_ptr):
//   backend::reference   V = T, one element at a time;
//   backend::cpu         V = xsimd::batch<T> over full SIMD widths, then V = T for the tail;
//   backend::cuda        V = T, one thread per element through one generic __global__ entry.
// Arguments are pointers to n elements each; pointers to non-const are written back after the body,
// pointers to const only read. Per-op constants (learning rate, slope) are members of the body.
#include <cmath>
#include <cstdint>

#include "microcount/core/config.hpp"

namespace microcount::math {

// Scalar versions of the functions bodies use; for xsimd batches the same unqualified names resolve
// to xsimd's by argument-dependent lookup.
template <class T> MICROCOUNT_HOST_DEVICE MICROCOUNT_INLINE T max(T a, T b) { return a > b ? a : b; }
template <class T> MICROCOUNT_HOST_DEVICE MICROCOUNT_INLINE T min(T a, T b) { return a < b ? a : b; }
template <class T> MICROCOUNT_HOST_DEVICE MICROCOUNT_INLINE T select(bool c, T a, T b) { return c ? a : b; }
MICROCOUNT_HOST_DEVICE MICROCOUNT_INLINE float exp(float x) { return ::expf(x); }
MICROCOUNT_HOST_DEVICE MICROCOUNT_INLINE double exp(double x) { return ::exp(x); }
MICROCOUNT_HOST_DEVICE MICROCOUNT_INLINE float log(float x) { return ::logf(x); }
MICROCOUNT_HOST_DEVICE MICROCOUNT_INLINE double log(double x) { return ::log(x); }
MICROCOUNT_HOST_DEVICE MICROCOUNT_INLINE float sqrt(float x) { return ::sqrtf(x); }
MICROCOUNT_HOST_DEVICE MICROCOUNT_INLINE double sqrt(double x) { return ::sqrt(x); }
MICROCOUNT_HOST_DEVICE MICROCOUNT_INLINE float abs(float x) { return ::fabsf(x); }
MICROCOUNT_HOST_DEVICE MICROCOUNT_INLINE double abs(double x) { return ::fabs(x); }
MICROCOUNT_HOST_DEVICE MICROCOUNT_INLINE float tanh(float x) { return ::tanhf(x); }
MICROCOUNT_HOST_DEVICE MICROCOUNT_INLINE double tanh(double x) { return ::tanh(x); }
MICROCOUNT_HOST_DEVICE MICROCOUNT_INLINE float pow(float x, float y) { return ::powf(x, y); }
MICROCOUNT_HOST_DEVICE MICROCOUNT_INLINE double pow(double x, double y) { return ::pow(x, y); }

}  // namespace microcount::math

namespace microcount {

// Primary template: each backend specialises element_launcher<Backend>::run(n, body, ptrs...).
template <class Backend>
struct element_launcher;

// Runs `body` over n elements of each array on `Backend`.
template <class Backend, class Body, class... Ptr>
void for_each(std::int64_t n, const Body& body, Ptr... arrays) {
  static_assert(sizeof...(Ptr) >= 1, "microcount: for_each needs at least one array");
  static_assert((std::is_pointer_v<Ptr> && ...), "microcount: for_each takes raw pointers to the arrays");
  element_launcher<Backend>::run(n, body, arrays...);
}

}  // namespace microcount
