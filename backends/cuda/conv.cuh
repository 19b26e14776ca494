#pragma once
// (being written: kernels of the conv ops for backend::cuda)
#include "microcount/backends/cuda/launch.cuh"
