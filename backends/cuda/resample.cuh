#pragma once
// (being written: kernels of the resample ops for backend::cuda)
#include "microcount/backends/cuda/launch.cuh"
