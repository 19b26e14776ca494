#pragma once
// Views layers hand to kernels: any [N, C, spatial...] tensor seen as [N, C, S] (S = product of the spatial
// extents; 1 for [N, C]), and flat element ranges.
#include <string>

#include "microcount/core/tensor.hpp"

namespace microcount::nn::detail {

template <class T, class B>
tensor_view<const T, 3> channel_view(const tensor<T, B>& t) {
  require(t.rank() >= 2, "layer", "expects a tensor [N, C, ...], got " + t.shape().str());
  return tensor_view<const T, 3>::contiguous(t.data(), {t.dim(0), t.dim(1), t.shape().size_from(2)});
}
template <class T, class B>
tensor_view<T, 3> channel_view(tensor<T, B>& t) {
  require(t.rank() >= 2, "layer", "expects a tensor [N, C, ...], got " + t.shape().str());
  return tensor_view<T, 3>::contiguous(t.data(), {t.dim(0), t.dim(1), t.shape().size_from(2)});
}

// Whether a tensor kept for backward is set. (A default tensor has rank 0, and rank 0 means one
// element, so empty() cannot tell.)
template <class T, class B>
bool holds(const tensor<T, B>& t) {
  return t.rank() > 0;
}

// Throws "<layer>: <what> has shape X, expected Y" on a mismatch.
inline void require_shape(const shape& got, const shape& expected, std::string_view layer, const char* what) {
  require(got == expected, layer, std::string(what) + " has shape " + got.str() + ", expected " + expected.str());
}

}  // namespace microcount::nn::detail
