#pragma once
// (being written: kernels of the activation ops for backend::cuda)
#include "microcount/backends/cuda/launch.cuh"
