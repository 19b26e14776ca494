#pragma once
// Reference launcher for elementwise bodies: one element at a time, in order.
#include <type_traits>

#include "microcount/core/backend.hpp"
#include "microcount/core/elementwise.hpp"

namespace microcount {

namespace reference_detail {
struct scalar_launcher {
  template <class Body, class... Ptr>
  static void run(std::int64_t n, const Body& body, Ptr... arrays) {
    for (std::int64_t i = 0; i < n; ++i) body(arrays[i]...);
  }
};
}  // namespace reference_detail

template <>
struct element_launcher<backend::reference> : reference_detail::scalar_launcher {};
template <>
struct element_launcher<backend::reference_f64> : reference_detail::scalar_launcher {};

}  // namespace microcount
