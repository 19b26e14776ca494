#pragma once
// (being written: kernels of the norm ops for backend::cuda)
#include "microcount/backends/cuda/launch.cuh"
