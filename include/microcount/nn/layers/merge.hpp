#pragma once
// Tensor merges used by composite layers: channel concatenation (skip_concat) and elementwise sum (residual).
//   auto y = nn::concat_channels(skip, up);          // [N, Ca + Cb, ...]
//   nn::split_channels(dy, dskip, dup);              // the adjoint: dy's first Ca channels, then the rest
//   auto s = nn::add(x, inner);   nn::accumulate(dx, d_inner);
#include <string>

#include "microcount/nn/layer.hpp"
#include "microcount/nn/layers/views.hpp"
#include "microcount/nn/op.hpp"
#include "microcount/nn/ops_layers.hpp"

namespace microcount::nn {

// y = [a, b] along channels: a [N, Ca, ...], b [N, Cb, ...] -> [N, Ca + Cb, ...].
template <class B>
tensor_t<B> concat_channels(const tensor_t<B>& a, const tensor_t<B>& b) {
  require_op<ops::concat, B>();
  tensor_t<B> y(ops::concat{}.output_shape(a.shape(), b.shape()));
  kernel<ops::concat, B>::forward(ops::concat{}, detail::channel_view(a), detail::channel_view(b),
                                  detail::channel_view(y));
  return y;
}

// da, db = dy's first da.dim(1) channels and the remaining ones. da and db are (re)shaped here to
// [N, ca, ...] and [N, C − ca, ...].
template <class B>
void split_channels(const tensor_t<B>& dy, index_t ca, tensor_t<B>& da, tensor_t<B>& db) {
  require_op<ops::concat, B>();
  require(dy.rank() >= 2 && ca >= 0 && ca <= dy.dim(1), "concat",
          "cannot split " + std::to_string(ca) + " channels off " + dy.shape().str());
  shape sa = dy.shape(), sb = dy.shape();
  sa[1] = ca;
  sb[1] = dy.dim(1) - ca;
  da.resize(sa);
  db.resize(sb);
  kernel<ops::concat, B>::backward(ops::concat{}, detail::channel_view(dy), detail::channel_view(da),
                                   detail::channel_view(db));
}

// y = a + b (same shapes).
template <class B>
tensor_t<B> add(const tensor_t<B>& a, const tensor_t<B>& b) {
  require_op<ops::add, B>();
  detail::require_shape(b.shape(), a.shape(), "add", "second operand");
  tensor_t<B> y(a.shape());
  kernel<ops::add, B>::forward(ops::add{}, a.size(), a.data(), b.data(), y.data());
  return y;
}

// y += x (same shapes); y must not share memory with a tensor some layer keeps.
template <class B>
void accumulate(tensor_t<B>& y, const tensor_t<B>& x) {
  require_op<ops::add, B>();
  detail::require_shape(x.shape(), y.shape(), "add", "accumulated tensor");
  kernel<ops::add, B>::accumulate(ops::add{}, y.size(), x.data(), y.data());
}

}  // namespace microcount::nn
