#pragma once
// (being written: kernels of the pool ops for backend::cuda)
#include "microcount/backends/cuda/launch.cuh"
