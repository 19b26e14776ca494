#pragma once
// The cuda backend: hand-written CUDA kernels for every op of the network core. Include to use
// backend::cuda, from a .cu file compiled by nvcc (GPU), or from any C++ file with MICROCOUNT_CUDA_EMULATE
// defined (the host emulator: the same kernel bodies run on the CPU). See docs/cuda.md.
#include "microcount/backends/cuda/runtime.cuh"
#include "microcount/backends/cuda/launch.cuh"
#include "microcount/backends/cuda/conv.cuh"
#include "microcount/backends/cuda/activation.cuh"
#include "microcount/backends/cuda/misc.cuh"
#include "microcount/backends/cuda/norm.cuh"
#include "microcount/backends/cuda/pool.cuh"
#include "microcount/backends/cuda/resample.cuh"
