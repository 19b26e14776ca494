#pragma once
// Ops and their kernels.
//   An op is a small struct of parameters (ops::conv2d{...}).
//   Its implementation on a backend is a specialisation kernel<Op, Backend> under backends/<name>/,
//   which declares `using op = Op;` and static member functions taking tensor_views.
//   supports<Op, Backend> tells whether such a specialisation is visible.
//   require_op<Op, Backend>() fails the build with one readable line when it is not.
#include "microcount/core/backend.hpp"

namespace microcount {

template <class Op, class Backend>
struct kernel;  // specialised by each backend for each op it implements

template <class Op, class Backend>
concept supports = requires { typename kernel<Op, Backend>::op; };

// Instantiated where a layer binds an op to a backend. The compiler names Op and Backend in the
// "required from" line just above the message.
template <class Op, class Backend>
constexpr void require_op() {
  static_assert(supports<Op, Backend>,
                "microcount: backend has no kernel for this op (kernel<Op, Backend> is not specialised: "
                "include <microcount/backends/<name>.hpp> or pick a backend that implements the op)");
}

}  // namespace microcount
