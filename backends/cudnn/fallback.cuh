#pragma once
// Every op cuDNN does not do better: kernel<Op, backend::cudnn> is the cuda backend's kernel. Selected for
// any Op the cuda backend implements and cudnn has no specialisation of its own (conv.cuh, norm.cuh
// specialise fully, which wins over this partial specialisation).
#include "microcount/backends/cuda.hpp"
#include "microcount/nn/op.hpp"

namespace microcount {

template <class Op>
  requires supports<Op, backend::cuda>
struct kernel<Op, backend::cudnn> : kernel<Op, backend::cuda> {};

}  // namespace microcount
