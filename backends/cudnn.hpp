#pragma once
// The cudnn backend: cuDNN 9 for convolutions (2D/3D, transposed too) and batch normalisation, the cuda
// backend's hand-written kernels for every other op. Memory is the cuda backend's (a cudnn tensor is a cuda
// tensor). Include from a .cu file compiled by nvcc and link microcount::cudnn. See docs/cuda.md.
#if defined(MICROCOUNT_CUDA_EMULATE)
#error "microcount: backend::cudnn runs only on a GPU (cuDNN has no host emulation): compile this file with nvcc without MICROCOUNT_CUDA_EMULATE and link microcount::cudnn, or use backend::cuda (microcount::cuda_emulated) for emulated runs"
#endif
#include "microcount/backends/cuda.hpp"
#include "microcount/backends/cudnn/runtime.cuh"
#include "microcount/backends/cudnn/conv.cuh"
#include "microcount/backends/cudnn/norm.cuh"
#include "microcount/backends/cudnn/fallback.cuh"
