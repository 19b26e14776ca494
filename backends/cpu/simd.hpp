#pragma once
// xsimd, included with GCC 12's false -W(maybe-)uninitialized silenced: the AVX-512 intrinsics headers
// initialise their "undefined" pass-through registers from themselves (GCC bug 105593, fixed in 12.3), and
// every max/exp body that inlines them would warn. The pragma must wrap the first inclusion of the
// intrinsics, so cpu headers include this file before anything that includes xsimd or Eigen.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>
#include <xsimd/xsimd.hpp>
#pragma GCC diagnostic pop
