#pragma once
// (being written: kernels of the misc ops for backend::cuda)
#include "microcount/backends/cuda/launch.cuh"
