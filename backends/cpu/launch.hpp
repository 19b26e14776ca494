#pragma once
// cpu launcher for elementwise bodies: the body runs on xsimd batches (the widest the build targets),
// the tail on scalars, and large arrays are split over threads in fixed chunks (deterministic).
#include <algorithm>
#include <tuple>
#include <type_traits>
// GCC 12.2's AVX-512 headers raise false -Wmaybe-uninitialized / -Wuninitialized warnings (the
// `__m512 __Y = __Y;` idiom, GCC bug 105593, fixed in 12.3) wherever xsimd's math (exp, log, pow) is
// instantiated; the warnings point into these headers, so silencing them around the include suffices.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include <xsimd/xsimd.hpp>
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

#include "microcount/core/backend.hpp"
#include "microcount/core/elementwise.hpp"
#include "microcount/core/parallel.hpp"

namespace microcount {

namespace cpu_detail {

template <class P>
using element_t = std::remove_const_t<std::remove_pointer_t<P>>;

// Loads a batch from p (a const or mutable pointer) at i.
template <class P>
MICROCOUNT_INLINE auto load(P p, std::int64_t i) {
  return xsimd::batch<element_t<P>>::load_unaligned(p + i);
}
template <class P, class V>
MICROCOUNT_INLINE void store_if_mutable(P p, std::int64_t i, const V& v) {
  if constexpr (!std::is_const_v<std::remove_pointer_t<P>>) v.store_unaligned(p + i);
}

template <class Body, class... Ptr>
MICROCOUNT_INLINE void run_range(std::int64_t begin, std::int64_t end, const Body& body, Ptr... arrays) {
  using first_t = element_t<std::tuple_element_t<0, std::tuple<Ptr...>>>;
  constexpr std::int64_t width = xsimd::batch<first_t>::size;
  std::int64_t i = begin;
  for (; i + width <= end; i += width) {
    auto values = std::make_tuple(load(arrays, i)...);
    std::apply([&](auto&... v) { body(v...); }, values);
    std::apply([&](const auto&... v) { (store_if_mutable(arrays, i, v), ...); }, values);
  }
  for (; i < end; ++i) body(arrays[i]...);
}

}  // namespace cpu_detail

template <>
struct element_launcher<backend::cpu> {
  static constexpr std::int64_t chunk = 1 << 14;  // elements per parallel task: big enough to amortise
  template <class Body, class... Ptr>
  static void run(std::int64_t n, const Body& body, Ptr... arrays) {
    const std::int64_t tasks = (n + chunk - 1) / chunk;
    if (tasks <= 1) {
      cpu_detail::run_range(0, n, body, arrays...);
      return;
    }
    parallel_for(0, tasks, [&](std::int64_t t) {
      cpu_detail::run_range(t * chunk, std::min(n, (t + 1) * chunk), body, arrays...);
    });
  }
};

}  // namespace microcount
