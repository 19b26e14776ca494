#pragma once
// The cpu backend: xsimd + Eigen + OpenMP kernels. Include to use backend::cpu.
#include "microcount/backends/reference.hpp"
#include "microcount/backends/cpu/simd.hpp"  // before anything that includes xsimd or Eigen: see simd.hpp
#include "microcount/backends/cpu/launch.hpp"
#include "microcount/backends/cpu/loss.hpp"
#include "microcount/backends/cpu/conv.hpp"
#include "microcount/backends/cpu/activation.hpp"
#include "microcount/backends/cpu/misc.hpp"
#include "microcount/backends/cpu/norm.hpp"
#include "microcount/backends/cpu/pool.hpp"
#include "microcount/backends/cpu/resample.hpp"
