#pragma once
// The cpu backend: xsimd + Eigen + OpenMP kernels. Include to use backend::cpu.
#include "microcount/backends/reference.hpp"
#include "microcount/backends/cpu/launch.hpp"
#include "microcount/backends/cpu/loss.hpp"
#include "microcount/backends/cpu/conv.hpp"
